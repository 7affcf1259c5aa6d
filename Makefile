# One-command set-up: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export TREUE_DATABASE_URL ?= sqlite:///treue.db

.PHONY: install demo serve test test-fast lint bench bench-deps browser-deps clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/treue demo

serve: install
	$(BIN)/treue serve

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: lint browser-deps
	$(BIN)/python -m pytest -n 2 --dist loadgroup tests

test-fast: install
	$(BIN)/python -m pytest -x -q tests/unit

# Benchmarks need wrk (HTTP load) and pgbench (the raw-earn limit), both from Debian.
bench-deps:
	@command -v wrk >/dev/null || { (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null; }
	@command -v pgbench >/dev/null || { (apt-get update -qq && apt-get install -y -qq postgresql-client) >/dev/null; }

# The browser tests (tests/e2e/test_browser_*.py) drive Debian's Chromium through Playwright; never `playwright install`.
browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null; }

bench: install bench-deps
	$(BIN)/python benchmarks/earn_bench.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/rules_bench.py
	$(BIN)/python benchmarks/simulate_bench.py
	$(BIN)/python benchmarks/partner_bench.py
	$(BIN)/python benchmarks/kpi_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache treue.db*
