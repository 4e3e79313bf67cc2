#!/usr/bin/env bash
# `make run`: PostgreSQL + NATS (see infra.sh), a build, every service as its
# own process (logs in .anp/logs), a small demo, and the URL to open.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export ANP_HOME=${ANP_HOME:-$ROOT/.anp}
mkdir -p "$ANP_HOME/logs" "$ANP_HOME/pids" "$ANP_HOME/data"

bash deploy/local/infra.sh
set -a; . "$ANP_HOME/infra.env"; set +a

echo "building…"
cargo build --bins

bash deploy/local/stop.sh >/dev/null 2>&1 || true

DB=${ANP_DATABASE:-anp}
if [ "$(psql "$ANP_PG_URL/postgres" -Atqc "select 1 from pg_database where datname = '$DB'")" != 1 ]; then
  psql "$ANP_PG_URL/postgres" -qc "create database $DB" >/dev/null
fi

if [ ! -s "$ANP_HOME/ops-token" ]; then
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ANP_HOME/ops-token")
fi

# Session signing key (sites) and its public key (every service), made once.
if [ ! -s "$ANP_HOME/session.env" ]; then
  (umask 077; target/debug/anpctl keys generate >"$ANP_HOME/session.env")
fi
set -a; . "$ANP_HOME/session.env"; set +a

export ANP_DATABASE_URL=$ANP_PG_URL/$DB
export ANP_OPS_TOKEN=$(cat "$ANP_HOME/ops-token")
export ANP_INDEX_DIR=$ANP_HOME/data/index
export ANP_SITES_LISTEN=${ANP_SITES_LISTEN:-127.0.0.1:50051}
export ANP_CONTENT_LISTEN=${ANP_CONTENT_LISTEN:-127.0.0.1:50052}
export ANP_EVENTS_LISTEN=${ANP_EVENTS_LISTEN:-127.0.0.1:50054}
export ANP_AGGREGATOR_LISTEN=${ANP_AGGREGATOR_LISTEN:-127.0.0.1:50053}
export ANP_GATEWAY_LISTEN=${ANP_GATEWAY_LISTEN:-127.0.0.1:8080}
export ANP_AGGREGATOR_METRICS_LISTEN=${ANP_AGGREGATOR_METRICS_LISTEN:-127.0.0.1:9464}
export ANP_SITES_URL=http://$ANP_SITES_LISTEN
export ANP_CONTENT_URL=http://$ANP_CONTENT_LISTEN
export ANP_EVENTS_URL=http://$ANP_EVENTS_LISTEN
export ANP_AGGREGATOR_URL=http://$ANP_AGGREGATOR_LISTEN
export ANP_PUBLIC_URL=${ANP_PUBLIC_URL:-http://$ANP_GATEWAY_LISTEN}

port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

for addr in "$ANP_SITES_LISTEN" "$ANP_CONTENT_LISTEN" "$ANP_EVENTS_LISTEN" "$ANP_AGGREGATOR_LISTEN" "$ANP_GATEWAY_LISTEN" "$ANP_AGGREGATOR_METRICS_LISTEN"; do
  if port_open "$addr"; then
    echo "error: $addr is already in use; set ANP_*_LISTEN to free addresses" >&2
    exit 1
  fi
done

start() { # name listen-addr
  nohup "target/debug/anp-$1" >"$ANP_HOME/logs/$1.log" 2>&1 &
  echo $! >"$ANP_HOME/pids/$1"
  # A port held by a just-closed connection frees within a minute; the
  # services wait for it (anp_kit::bind).
  local deadline=$((SECONDS + 90))
  until port_open "$2"; do
    if ! kill -0 "$(cat "$ANP_HOME/pids/$1")" 2>/dev/null || ((SECONDS > deadline)); then
      echo "error: anp-$1 did not start; see $ANP_HOME/logs/$1.log" >&2
      tail -n 20 "$ANP_HOME/logs/$1.log" >&2
      exit 1
    fi
    sleep 0.2
  done
}

start sites "$ANP_SITES_LISTEN"
start content "$ANP_CONTENT_LISTEN"
start events "$ANP_EVENTS_LISTEN"
start aggregator "$ANP_AGGREGATOR_LISTEN"
start gateway "$ANP_GATEWAY_LISTEN"

# Client settings for anpctl in another shell: `set -a; . .anp/anpctl.env`.
cat >"$ANP_HOME/anpctl.env" <<ENV
ANP_SITES_URL=$ANP_SITES_URL
ANP_CONTENT_URL=$ANP_CONTENT_URL
ANP_EVENTS_URL=$ANP_EVENTS_URL
ANP_AGGREGATOR_URL=$ANP_AGGREGATOR_URL
ENV

bash deploy/local/seed.sh

cat <<MSG

ANP is running: $ANP_PUBLIC_URL/
  demo admins:     admin@climate-justice.example.org and admin@migrant-rights.example.org,
                   password: $(cat "$ANP_HOME/demo-password")
  operators' CLI:  target/debug/anpctl --help   (reads the token from .anp/ops-token)
  logs:            $ANP_HOME/logs/
  stop:            make stop
MSG
