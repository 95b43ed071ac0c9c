"""Running a DAG written in a test with ``dag.test()`` and reading what it left: one copy for every test module."""

from __future__ import annotations

import textwrap
from typing import Any

from airflow_provider_midjourney.testing.dag_test import xcom_value
from tests.conftest import load_dag, write_dag

HEADER = """
from datetime import datetime, timedelta
from airflow.sdk import DAG
from airflow_provider_midjourney.operators import *
from airflow_provider_midjourney.retry import HttpRetry
from airflow_provider_midjourney.sensors import MidjourneyJobSensor

C = {conn_id!r}
FAST = HttpRetry(max_attempts=4, max_seconds=10, busy_wait=(0.01, 0.03), backoff_initial=0.01, backoff_max=0.05)

with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         render_template_as_native_obj={native}) as dag:
"""


def run_dag(
    name: str, body: str, dag_id: str | None = None, *, conn_id: str = "midjourney_default", native: bool = False
) -> Any:
    """Write a DAG file (header + ``body``) to the dags folder, load it and ``dag.test()`` it.

    The body sees ``C`` (``conn_id``), ``FAST`` (a quick retry policy), ``datetime``, ``timedelta``,
    every operator and the sensor.
    """
    dag_id = dag_id or name
    source = HEADER.format(conn_id=conn_id, dag_id=dag_id, native=native) + textwrap.indent(
        textwrap.dedent(body), "    "
    )
    return load_dag(write_dag(name, source), dag_id).test()


def task_states(dr: Any) -> dict[str, str]:
    """Task id (``id[n]`` for a mapped one) → its state."""
    return {
        (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state)
        for ti in dr.get_task_instances()
    }


def xcom(dr: Any, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    """What a task of the run pushed under ``key`` (its result by default), or None."""
    return xcom_value(dr.dag_id, dr.run_id, task_id, map_index=map_index, key=key)


def without_airflow_mask_echo(text: str) -> str:
    """``text`` less the debug lines in which Airflow 3.0's in-process supervisor echoes a secret sent
    to its own masker (``MaskSecret(value=...)``): Airflow's line, on the very call that registers the
    secret for masking, and shown only at DEBUG. Every other line is checked as it is."""
    return "\n".join(line for line in text.splitlines() if "MaskSecret(value=" not in line)
