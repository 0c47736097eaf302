# Two commands matter on a fresh clone: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DURATION ?= 120

.PHONY: setup test lint demo bench clean

setup: $(STAMP)

# Re-installs only when the dependency list changes: a second `make setup` is a no-op.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,gcs,s3,airflow]'
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two workers: most tests wait on sockets and subprocesses, so the 2 cores overlap well; the
# heavy ones share one worker (see tests/conftest.py).
test: lint
	$(BIN)/pytest -n 2 --dist loadgroup

demo: setup
	$(BIN)/upbit-pipeline demo --duration $(DURATION)

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
