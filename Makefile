# talktime: `make run` starts the service on SQLite; `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Runtime install; re-runs when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Runtime plus the dev extras (tests, linters, benchmark baselines).
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/talktime db upgrade
	$(BIN)/talktime run

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# Two test processes (pytest-xdist; each starts its own PostgreSQL cluster): the machines have two
# cores, and the suite spends much of its time waiting for fsyncs and servers.
PYTEST_WORKERS ?= 2
# The slowest tests are listed at the end of every run, to keep an eye on the suite's time.
PYTEST_ARGS ?= --durations=15

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(VENV)/.installed-dev
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
