# One command from a fresh clone: `make test` builds its own virtualenv and runs lint, types and tests.
PYTHON ?= python3
AIRFLOW_VERSION ?= 3.3.2
OLDEST_AIRFLOW ?= 3.0.6
VENV := .venvs/airflow-$(AIRFLOW_VERSION)
BIN := $(VENV)/bin
PYTEST_ARGS ?=
CONSTRAINTS := $(wildcard .ci/constraints-airflow-$(AIRFLOW_VERSION).txt)

.PHONY: test test-all lint tests venv demo emulator clean

test: lint tests  ## lint + types + the whole suite on the newest Airflow

test-all:  ## the whole suite on the newest and on the oldest supported Airflow
	$(MAKE) test AIRFLOW_VERSION=$(AIRFLOW_VERSION)
	$(MAKE) tests AIRFLOW_VERSION=$(OLDEST_AIRFLOW)

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev]" $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	touch $@

lint: venv
	$(BIN)/ruff check airflow_provider_midjourney tests example_dags
	$(BIN)/mypy

tests: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

emulator: venv  ## run the API emulator on http://127.0.0.1:8765
	$(BIN)/python -m airflow_provider_midjourney.testing --port 8765

clean:
	rm -rf .venvs .pytest_cache .mypy_cache .ruff_cache

demo: venv  ## run midjourney_imagine_upscale end to end (emulator, or the real API with MIDJOURNEY_API_TOKEN)
	$(BIN)/python -m airflow_provider_midjourney.demo

e2e: venv  ## a real Airflow stack (scheduler, triggerer, dag-processor, api-server) + fault scenarios
	$(BIN)/python -m pytest tests/e2e -m e2e -p no:randomly -rA $(PYTEST_ARGS)
