"""Shared fixtures: an isolated AIRFLOW_HOME, one emulator per session, a hook wired to it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

try:  # as tests.conftest or as conftest, the guard module is its sibling
    from tests._self_contained import install as _refuse_reads_beside_the_repository
except ImportError:
    from _self_contained import install as _refuse_reads_beside_the_repository  # type: ignore[no-redef]

_refuse_reads_beside_the_repository()

# Airflow reads its configuration at import time: point it at a throwaway home first.
# (conftest may be imported twice, as conftest and tests.conftest: both must agree on the home.)
_HOME = Path(os.environ.setdefault("MJ_TEST_AIRFLOW_HOME", tempfile.mkdtemp(prefix="mj-airflow-home-")))
if _WORKER := os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist (make tests runs the suite on several workers): a home and SQLite database per
    # worker, overriding what the controlling process put in the environment the workers inherit.
    _HOME = _HOME / _WORKER
    _HOME.mkdir(exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(_HOME)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_HOME / "dags")
os.environ.setdefault("AIRFLOW_HOME", str(_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_HOME / "dags"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("MIDJOURNEY_POLL_INTERVAL", "0.05")

from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook  # noqa: E402
from airflow_provider_midjourney.retry import HttpRetry  # noqa: E402
from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator  # noqa: E402
from airflow_provider_midjourney.testing.dag_test import (  # noqa: E402
    register_assets_for_dag_test,
    reuse_in_process_execution_api,
)

TOKEN = "test-token-7Hq2-do-not-log"
FAST_TIMINGS = JobTimings(start_after=0.02, progress_after=0.04, complete_after=0.15)
# Same rules as production, only the waits are short.
FAST_RETRY = HttpRetry(max_attempts=4, max_seconds=10, busy_wait=(0.01, 0.03), backoff_initial=0.01, backoff_max=0.05)


@pytest.fixture(scope="session")
def _emulator_session() -> Iterator[MidjourneyEmulator]:
    with MidjourneyEmulator(token=TOKEN, timings=FAST_TIMINGS) as emulator:
        yield emulator


@pytest.fixture
def emulator(_emulator_session: MidjourneyEmulator) -> Iterator[MidjourneyEmulator]:
    """The session's emulator, emptied and with default knobs for each test."""
    _emulator_session.reset()
    _emulator_session.timings = FAST_TIMINGS
    yield _emulator_session
    _emulator_session.reset()


def connection_json(base_url: str, token: str = TOKEN, **extra: object) -> str:
    return json.dumps({"conn_type": "midjourney", "host": base_url, "password": token, "extra": extra})


@pytest.fixture
def midjourney_conn(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """``midjourney_default`` pointing at the emulator, through the env-var secrets backend."""
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_DEFAULT", connection_json(emulator.base_url))
    return "midjourney_default"


@pytest.fixture
def hook(midjourney_conn: str) -> Iterator[UseapiV3Hook]:
    with UseapiV3Hook(midjourney_conn, retry=FAST_RETRY) as hook:
        yield hook


# -- Airflow metadata DB and DAG files, for dag.test() ------------------------------------------

DAGS_FOLDER = _HOME / "dags"
EXAMPLE_DAGS = Path(__file__).resolve().parents[1] / "example_dags"


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated SQLite metadata DB in the throwaway AIRFLOW_HOME (once per session)."""
    from airflow.utils import db

    db.initdb()
    reuse_in_process_execution_api()


def write_dag(name: str, source: str) -> Path:
    """Put a DAG file in the configured dags folder (``dag.test()`` refuses DAGs from elsewhere), alone:
    the first ``dag.test()`` of a DAG id parses and stores every file of the folder (Airflow 3.1+), so
    earlier tests' files would make each run slower than the last."""
    DAGS_FOLDER.mkdir(parents=True, exist_ok=True)
    for earlier in DAGS_FOLDER.glob("*.py"):
        earlier.unlink()
    path = DAGS_FOLDER / f"{name}.py"
    path.write_text(source)
    return path


def load_dag(path: Path, dag_id: str):
    import importlib.util
    import sys

    module_name = f"_mj_test_dag_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    dag = next(v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id and hasattr(v, "test"))
    register_assets_for_dag_test(dag)  # Airflow 3.0: dag.test() does not register Asset outlets
    return dag


def example_dag(dag_id: str):
    """An example DAG, copied into the dags folder so dag.test() accepts it."""
    source = (EXAMPLE_DAGS / f"{dag_id}.py").read_text()
    return load_dag(write_dag(dag_id, source), dag_id)
