# One command from a fresh clone: `make test` builds its own virtualenv and runs lint, types and tests.
# Interpreters are found by version (.ci/find-python: PATH, then pyenv), never by path.
SHELL := bash
OLDEST_PY := 3.11
PY ?= $(OLDEST_PY)
PYTHON ?= $(shell .ci/find-python $(PY))
AIRFLOW_VERSION ?= 3.3.2
OLDEST_AIRFLOW ?= 3.0.6
VENVS ?= .venvs
# The oldest Python keeps the plain name (airflow-3.3.2), others add theirs (airflow-3.3.2-py3.13).
VENV := $(VENVS)/airflow-$(AIRFLOW_VERSION)$(if $(filter $(OLDEST_PY),$(PY)),,-py$(PY))
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Test processes (pytest-xdist), each with its own AIRFLOW_HOME: most of a test's time is waiting
# on loopback HTTP, so three share two cores well. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 3
# Frozen known-good resolve per Airflow version (.ci/constraints makes them; .ci/pins/ feeds it).
CONSTRAINTS := $(wildcard .ci/constraints-airflow-$(AIRFLOW_VERSION).txt)

# The matrix: the newest patch of every Airflow minor we claim, on the oldest and newest Python we
# claim (Airflow 3.0 stops at Python 3.12). Cells run MATRIX_JOBS side by side with MATRIX_WORKERS
# pytest-xdist workers each; every cell logs to $(MATRIX_LOGS)/<cell>.log, and a table sums them up.
# Longest cells first, so the last to start are the short ones.
MATRIX ?= 3.0.6@3.11 3.3.2@3.11 3.1.8@3.11 3.2.2@3.11 3.3.2@3.13
MATRIX_JOBS ?= 2
MATRIX_WORKERS ?= 2
MATRIX_LOGS ?= test-artifacts/matrix
cell_airflow = $(word 1,$(subst @, ,$(1)))
cell_py = $(word 2,$(subst @, ,$(1)))

.PHONY: test test-all test-fresh-copy lint tests venv demo emulator clean e2e e2e-older browser matrix matrix-venvs print-matrix docs ui

test: lint tests  ## lint + types + the whole suite on the newest Airflow

test-all:  ## lint + types, then the unit suite on every cell of MATRIX (Airflow x Python)
	$(MAKE) lint
	$(MAKE) matrix

matrix:  ## the unit suite on every Airflow x Python cell, MATRIX_JOBS at a time; logs and a summary table
	@mkdir -p $(MATRIX_LOGS) && rm -f $(MATRIX_LOGS)/*.log
	@status=0; $(MAKE) --no-print-directory -k -j$(MATRIX_JOBS) $(addprefix cell@,$(MATRIX)) || status=$$?; \
		.ci/matrix-summary $(MATRIX_LOGS) $(MATRIX); exit $$status

cell@%:
	@echo "[$*] start: Airflow $(call cell_airflow,$*), Python $(call cell_py,$*), $(MATRIX_WORKERS) xdist workers"
	@started=$$(date +%s); set -o pipefail; \
	$(MAKE) --no-print-directory tests AIRFLOW_VERSION=$(call cell_airflow,$*) PY=$(call cell_py,$*) \
		TEST_WORKERS=$(MATRIX_WORKERS) > $(MATRIX_LOGS)/$*.log 2>&1; status=$$?; \
	echo "wall $$(( $$(date +%s) - started )) s" >> $(MATRIX_LOGS)/$*.log; \
	echo "[$*] $$(grep -E '^=+ .*(passed|failed|error).* =+$$' $(MATRIX_LOGS)/$*.log | tail -1) exit $$status after $$(( $$(date +%s) - started )) s"; \
	if [ $$status -ne 0 ]; then tail -n 40 $(MATRIX_LOGS)/$*.log | sed 's/^/[$*] /'; fi; exit $$status

print-matrix:
	@echo $(MATRIX)

matrix-venvs:  ## build the virtualenv of every cell (MATRIX_JOBS at a time)
	$(MAKE) --no-print-directory -j$(MATRIX_JOBS) $(addprefix venv@,$(MATRIX))

venv@%:
	$(MAKE) --no-print-directory venv AIRFLOW_VERSION=$(call cell_airflow,$*) PY=$(call cell_py,$*)

test-fresh-copy:  ## `make test-all` in a copy of the repository alone in an empty temp folder (reuses .venvs)
	$(MAKE) matrix-venvs
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
	@test -n "$(PYTHON)" || { echo "no CPython $(PY): install it (pyenv install $(PY)) or pass PYTHON=/path"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev]" $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
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

ui: venv  ## a local Airflow (standalone) with the emulator as the backend and the example DAGs; prints URL and login
	$(BIN)/python -m airflow_provider_midjourney.testing.ui

wheel: venv  ## dist/airflow_provider_midjourney-<version>-py3-none-any.whl
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .

# The documentation site: its own small virtualenv (no Airflow), pinned in .ci/docs-requirements.txt.
DOCS_VENV := $(VENVS)/docs
$(DOCS_VENV)/.installed: .ci/docs-requirements.txt
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/python -m pip install --quiet -r .ci/docs-requirements.txt
	touch $@

docs: $(DOCS_VENV)/.installed  ## the docs site (MkDocs Material, warnings are errors) into test-artifacts/site/
	@started=$$(date +%s); NO_MKDOCS_2_WARNING=1 PYTHONWARNINGS=ignore $(DOCS_VENV)/bin/mkdocs build --strict --quiet -f docs/mkdocs.yml \
		&& echo "docs: built test-artifacts/site/ in $$(( $$(date +%s) - started )) s"

emulator: venv  ## run the API emulator on http://127.0.0.1:8765
	$(BIN)/python -m airflow_provider_midjourney.testing --port 8765

clean:
	rm -rf .venvs .pytest_cache .mypy_cache .ruff_cache

demo: venv  ## run midjourney_imagine_upscale end to end (emulator, or the real API with MIDJOURNEY_API_TOKEN)
	$(BIN)/python -m airflow_provider_midjourney.demo

e2e: venv browser  ## a real Airflow stack + fault scenarios + the gallery in headless Chromium
	$(BIN)/python -m pytest tests/e2e -m e2e -p no:randomly -rA $(PYTEST_ARGS)

# The gallery and the pick once on an older Airflow's real stack (the gallery's login fallback and
# the pick's trigger-based wait differ there); the whole e2e suite stays on the newest.
OLDER_AIRFLOW ?= 3.2.2
e2e-older:  ## the gallery and the pick in Chromium on a real Airflow $(OLDER_AIRFLOW) stack
	$(MAKE) e2e AIRFLOW_VERSION=$(OLDER_AIRFLOW) PYTEST_ARGS="tests/e2e/test_ui_browser.py -k 'pick_question or run_tab'"

CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

browser: venv  ## Debian's chromium (apt) and Playwright (PyPI) for the browser test; never downloads a browser
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }
	$(BIN)/pip install --quiet "playwright>=1.40"
