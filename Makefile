# Quick start: `make run` (start everything, seed a demo, print the URL),
# `make test` (all tests against real PostgreSQL and NATS).
.PHONY: run stop test lint bench fmt

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
