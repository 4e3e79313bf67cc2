#!/usr/bin/env bash
# `make stop`: stops the services `make run` started (not PostgreSQL or NATS).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ANP_HOME=${ANP_HOME:-$ROOT/.anp}
for pidfile in "$ANP_HOME"/pids/*; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "stopped $(basename "$pidfile")"
  fi
  rm -f "$pidfile"
done
