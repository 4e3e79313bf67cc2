#!/usr/bin/env bash
# `make test`: PostgreSQL + NATS (see infra.sh), a build of every binary the
# tests start, then every test. Each test makes its own database and its own
# JetStream stream and subject prefix, so tests run in parallel.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export ANP_HOME=${ANP_HOME:-$ROOT/.anp}
bash deploy/local/infra.sh
set -a; . "$ANP_HOME/infra.env"; set +a
export ANP_TEST_PG_URL=$ANP_PG_URL
export ANP_TEST_NATS_URL=$ANP_NATS_URL
cargo build --bins
export ANP_BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/debug
cargo test --workspace --no-fail-fast "$@"
