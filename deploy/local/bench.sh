#!/usr/bin/env bash
# `make bench`: PostgreSQL + NATS (see infra.sh), then the pipeline benchmark
# in release mode. It prints each figure beside its baseline.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cargo bench -p anp-integration-tests --bench pipeline
