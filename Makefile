# The two commands of the README:
#   make run    install, then train the paper's pizza model (seed 0) and print its accuracy
#   make test   install (with the dev, TransformerLens and Ray extras), lint, run the tests
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install install-dev run test lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

install: $(BIN)/python
	$(PIP) -e .

install-dev: $(BIN)/python
	$(PIP) -e ".[dev,tl,ray]"

run: install
	$(BIN)/quadlens train --preset pizza --seed 0 --out runs/pizza-seed0 --overwrite

lint: install-dev
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
