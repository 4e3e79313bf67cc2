#!/usr/bin/env bash
# `make bench`: PostgreSQL + NATS (see infra.sh), then the pipeline benchmark
# in release mode. It prints each figure beside its baseline.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export ANP_HOME=${ANP_HOME:-$ROOT/.anp}
bash deploy/local/infra.sh
set -a; . "$ANP_HOME/infra.env"; set +a
export ANP_TEST_PG_URL=$ANP_PG_URL
export ANP_TEST_NATS_URL=$ANP_NATS_URL
cargo bench -p anp-integration-tests --bench pipeline
