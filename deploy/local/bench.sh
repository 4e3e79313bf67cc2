#!/usr/bin/env bash
# `make bench`: PostgreSQL + NATS (see infra.sh), then the benchmarks in
# release mode; each prints its figures beside a baseline.
#   ANP_BENCH_NETWORKS=100 make bench   # a shorter onboarding run
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cargo build --release --bins
export ANP_BIN_DIR=$ROOT/target/release
cargo bench -p anp-integration-tests --bench pipeline
cargo bench -p anp-integration-tests --bench onboarding
cargo bench -p anp-integration-tests --bench indexing
cargo bench -p anp-integration-tests --bench search
