# One command from a fresh clone: `make test` builds its own virtualenv and runs lint, types and tests.
PYTHON ?= python3
AIRFLOW_VERSION ?= 3.3.2
OLDEST_AIRFLOW ?= 3.0.6
VENVS ?= .venvs
VENV := $(VENVS)/airflow-$(AIRFLOW_VERSION)
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Test processes (pytest-xdist), each with its own AIRFLOW_HOME: most of a test's time is waiting
# on loopback HTTP, so three share two cores well. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 3
CONSTRAINTS := $(wildcard .ci/constraints-airflow-$(AIRFLOW_VERSION).txt)

.PHONY: test test-all test-fresh-copy lint tests venv demo emulator clean e2e browser

test: lint tests  ## lint + types + the whole suite on the newest Airflow

test-all:  ## the whole suite on the newest and on the oldest supported Airflow
	$(MAKE) test AIRFLOW_VERSION=$(AIRFLOW_VERSION)
	$(MAKE) tests AIRFLOW_VERSION=$(OLDEST_AIRFLOW)

test-fresh-copy:  ## `make test-all` in a copy of the repository alone in an empty temp folder (reuses .venvs)
	$(MAKE) venv AIRFLOW_VERSION=$(AIRFLOW_VERSION)
	$(MAKE) venv AIRFLOW_VERSION=$(OLDEST_AIRFLOW)
	.ci/fresh-copy $(MAKE) test-all VENVS=$(abspath $(VENVS)) REUSE_VENV=1

# REUSE_VENV=1: use the virtualenv in $(VENVS) as it is (test-fresh-copy borrows this checkout's);
# `tests` then checks that Python imports the provider from the current folder, not from elsewhere.
ifdef REUSE_VENV
venv:
	@test -x $(BIN)/python || { echo "REUSE_VENV: no virtualenv at $(VENV)"; exit 1; }
else
venv: $(VENV)/.installed
endif

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev]" $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	touch $@

lint: venv
	$(BIN)/ruff check airflow_provider_midjourney tests example_dags
	$(BIN)/mypy

tests: venv
ifdef REUSE_VENV
	$(BIN)/python -c 'import airflow_provider_midjourney as p, os, sys; \
		sys.exit(0 if p.__file__.startswith(os.getcwd() + os.sep) else f"imports {p.__file__}, not this folder")'
endif
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

emulator: venv  ## run the API emulator on http://127.0.0.1:8765
	$(BIN)/python -m airflow_provider_midjourney.testing --port 8765

clean:
	rm -rf .venvs .pytest_cache .mypy_cache .ruff_cache

demo: venv  ## run midjourney_imagine_upscale end to end (emulator, or the real API with MIDJOURNEY_API_TOKEN)
	$(BIN)/python -m airflow_provider_midjourney.demo

e2e: venv browser  ## a real Airflow stack + fault scenarios + the gallery in headless Chromium
	$(BIN)/python -m pytest tests/e2e -m e2e -p no:randomly -rA $(PYTEST_ARGS)

CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

browser: venv  ## Debian's chromium (apt) and Playwright (PyPI) for the browser test; never downloads a browser
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }
	$(BIN)/pip install --quiet "playwright>=1.40"
