# The README's two commands are `make run` and `make test`; the rest are shortcuts.
.PHONY: run test test-fast test-postgres setup bench clean

run:
	scripts/run.sh

test: setup
	.venv/bin/pytest

# The tiers that need nothing but Python (tests/conftest.py explains the markers).
test-fast: setup
	.venv/bin/pytest -m "not (postgres or broker or browser or ops or slow)"

test-postgres: setup
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/atlas} .venv/bin/pytest

setup:
	scripts/setup.sh

clean:
	rm -rf var
