# smsrelay: `make demo` runs the whole system locally, `make test` runs every check, `make check`
# is the fast loop while coding (lint and the tests not marked slow).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Two test processes, a module per process (its module-scoped servers stay shared): about 30 %
# less wall time on 2 cores. PYTEST_WORKERS=0 runs every test in this process.
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

.PHONY: install test check unit fast lint demo local bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: install
	$(PYTEST)

fast: install
	$(PYTEST) -m "not slow"

# Lint and the fast tests: under 3 minutes on 2 cores. `make test` runs the slow ones too.
check: lint fast

# Everything CI runs: lint, template checks (cfn-lint, sam validate, checkov) and sam build, the tests, the demo.
test: lint sam-check unit demo

local: install
	$(BIN)/smsrelay local

demo: install
	$(BIN)/python -m smsrelay_local.demo

bench: install
	$(BIN)/python -m smsrelay_local.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-sam .pytest_cache .ruff_cache .hypothesis

include mk/sam.mk
