# billsync: every developer and CI entry point. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PIP_VERSION := 26.3

.DEFAULT_GOAL := help
.PHONY: help venv system-deps test soak bench check lint format typecheck demo screenshots sandbox lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with the pinned dependencies

system-deps:  ## apt-get install the Debian packages the tests need, when missing
	./scripts/system-deps.sh

test: venv system-deps  ## set up and run the whole default test suite
	$(BIN)/python -m pytest

soak: venv system-deps  ## 500 in-process fault schedules + 20 with worker processes (long)
	BILLSYNC_FAULT_SCHEDULES=$${BILLSYNC_FAULT_SCHEDULES:-500} \
	BILLSYNC_RELIABILITY_SCHEDULES=$${BILLSYNC_RELIABILITY_SCHEDULES:-20} \
	$(BIN)/python -m pytest -s tests/worker/test_exactly_once.py tests/integration/test_reliability.py -p no:cacheprovider

bench: venv  ## billsync bench --size $(SIZE) (default S; LATENCY_MS=N adds latency)
	$(BIN)/billsync bench --size $${SIZE:-S} --latency-ms $${LATENCY_MS:-0} --json bench-work/result.json

lint: venv  ## ruff lint + format check, import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: venv  ## mypy (strict)
	$(BIN)/mypy worker connectors sandbox schedules tests scripts

check: lint typecheck test  ## every check CI could run

demo: venv  ## set up and run the demo (sandbox + how to use it)
	$(BIN)/billsync --config examples/sandbox.toml demo

screenshots: venv system-deps  ## run the demo and save the dashboard's pages to docs/screenshots/
	$(BIN)/python -m scripts.screenshots

sandbox: venv  ## start the sandbox APIs on their default ports
	$(BIN)/billsync sandbox

lock:  ## re-resolve pyproject's ranges and rewrite requirements.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	{ head -n 2 requirements.lock; .lock-venv/bin/python -m pip freeze --exclude-editable | grep -iv '^billsync'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

clean:  ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
