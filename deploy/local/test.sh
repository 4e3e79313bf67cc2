#!/usr/bin/env bash
# `make test`: PostgreSQL + NATS (see infra.sh), a build of every binary the
# tests start, then every test. Each test makes its own database and its own
# JetStream stream and subject prefix, so tests run in parallel.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cargo build --bins
export ANP_BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/debug
# Databases left by earlier runs that failed before cleaning up.
for db in $(psql "$ANP_PG_URL/postgres" -Atqc "select datname from pg_database where datname like 'anp_test_%'"); do
  psql "$ANP_PG_URL/postgres" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
done
cargo test --workspace --no-fail-fast "$@"
