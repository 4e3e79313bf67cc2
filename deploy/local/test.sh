#!/usr/bin/env bash
# `make test`: PostgreSQL + NATS (see infra.sh), a build of every binary the
# tests start, then every test. Each test makes its own database and its own
# JetStream stream and subject prefix, so tests run in parallel.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# Every target at once: binaries and tests then share one build of each
# dependency (building `--bins` alone would resolve features without the
# dev-dependencies and build many crates twice).
cargo build --workspace --all-targets
export ANP_BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/debug
# Databases left by earlier runs that failed before cleaning up.
for db in $(psql "$ANP_PG_URL/postgres" -Atqc "select datname from pg_database where datname like 'anp_test_%'"); do
  psql "$ANP_PG_URL/postgres" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { for (i = 2; i <= NF; i++) { if ($i == "passed;") p += $(i-1); if ($i == "failed;") f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
