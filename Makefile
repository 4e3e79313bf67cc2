# Quick start: `make run` (start everything, seed a demo, print the URL),
# `make test` (all tests against real PostgreSQL and NATS).
.PHONY: run stop reset test lint bench fmt

run:
	bash deploy/local/run.sh

stop:
	bash deploy/local/stop.sh

test:
	bash deploy/local/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

bench:
	bash deploy/local/bench.sh

# Stops the services and deletes the local database and search index
# (PostgreSQL and NATS keep running).
reset:
	bash deploy/local/stop.sh
	bash deploy/local/infra.sh
	set -a; . .anp/infra.env; set +a; psql "$$ANP_PG_URL/postgres" -qc "drop database if exists $${ANP_DATABASE:-anp} with (force)"
	rm -rf .anp/data .anp/demo
