# The two commands of the README:
#   make run    install, then `quadlens reproduce`: train the paper's pizza model (seed 0),
#               explain it, bound it, certify it and write runs/pizza-seed0/report/index.html
#   make test   install (with the dev, TransformerLens and Ray extras, and Debian's chromium for
#               the report's browser test), lint, run the tests
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install install-dev browser run test lint explore clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

install: $(BIN)/python
	$(PIP) -e .

install-dev: $(BIN)/python
	$(PIP) -e ".[dev,tl,ray]"

run: install
	$(BIN)/quadlens reproduce --seed 0 --out runs/pizza-seed0

# Debian's chromium and chromedriver for tests/test_report.py (needs root or sudo, as on CI)
SUDO := $(if $(filter 0,$(shell id -u)),,$(shell command -v sudo))
APT := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || \
	  $(APT) install -y -qq chromium chromium-driver >/dev/null || \
	  { $(APT) update -qq && $(APT) install -y -qq chromium chromium-driver >/dev/null; }

lint: install-dev
	$(BIN)/ruff check src tests benchmarks examples tools

test: lint browser
	$(BIN)/python -m pytest -q

# Not part of the test command: the property tests of the proofs with fresh random draws, 100
# times as many as `make test` draws (a search for counterexamples, ~6 minutes on 2 cores; run it
# after changing a bound; docs/certificates.md)
explore: install-dev
	QUADLENS_EXPLORE=100 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_bound.py \
	  tests/test_certify.py -k "never_below_truth or never_exceed or each_line"

clean:
	rm -rf $(VENV) runs .pytest_cache
