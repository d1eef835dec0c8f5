# looml: the two commands a fresh machine needs.
#   make demo   installs looml into .venv and runs the bundled example pipeline end to end
#   make test   installs looml with its test tools into .venv, lints, and runs the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BASE   := $(VENV)/.installed-base
STAMP  := $(VENV)/.installed

.PHONY: demo test lint lock bench clean

# looml alone (what a user needs: `make demo`), then the test tools on top (`make test`).
# Every install takes its versions from requirements.lock (what CI tested); `make lock` refreshes it.
LOCKED := --quiet --constraint requirements.lock

$(BASE): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(LOCKED) --upgrade pip
	$(BIN)/python -m pip install $(LOCKED) -e .
	touch $(BASE)

$(STAMP): $(BASE)
	$(BIN)/python -m pip install $(LOCKED) -e ".[dev]"
	touch $(STAMP)

demo: $(BASE)
	cd examples/churn && ../../$(BIN)/looml run looml.yaml

lint: $(STAMP)
	$(BIN)/python scripts/lock.py check
	$(BIN)/ruff check src tests bench examples

lock:
	$(PYTHON) scripts/lock.py write

test: lint
	scripts/ensure-chromium.sh
	scripts/ensure-postgres.sh
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/profile.py
	$(BIN)/python bench/csv_read.py
	scripts/ensure-postgres.sh
	$(BIN)/python bench/ingest_sql.py
	$(BIN)/python -m pip install $(LOCKED) -e ".[dev,bench]"
	$(BIN)/python bench/tune_overhead.py
	$(BIN)/python bench/tune_budget.py
	$(BIN)/python bench/tune_quality.py

clean:
	rm -rf $(VENV) examples/churn/.looml
