# Sourced by test.sh and bench.sh: PostgreSQL and NATS (see infra.sh), and
# their addresses exported for the test harness.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export ANP_HOME=${ANP_HOME:-$ROOT/.anp}
bash deploy/local/infra.sh
set -a; . "$ANP_HOME/infra.env"; set +a
export ANP_TEST_PG_URL=$ANP_PG_URL
export ANP_TEST_NATS_URL=$ANP_NATS_URL
