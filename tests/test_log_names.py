"""Log lines of the trigger and the sensor read cleanly in Airflow's UI.

Airflow's log processor ``redact_jwt`` replaces anything matching ``eyJ[.A-Za-z0-9-_]*`` with
``eyJ***`` (``eyJ`` is ``{"`` in base64, the start of a JWT), in every string of a log event: the
logger name too. "Midjourn**eyJ**obTrigger" matched, so every trigger line showed its logger as
``...MidjourneyJ***``. The trigger and the sensor name their loggers after their modules instead.
These tests run real deferred tasks through ``dag.test()`` and read the lines Airflow printed.
"""

from __future__ import annotations

import re
import textwrap

import pytest
from airflow import __version__ as airflow_version

from tests.conftest import load_dag, write_dag

pytestmark = pytest.mark.usefixtures("airflow_db", "midjourney_conn")

MASKED = re.compile(r"eyJ\*\*\*")
TRIGGER_LOGGER = "[airflow_provider_midjourney.triggers.midjourney]"
SENSOR_LOGGER = "[airflow.task.operators.airflow_provider_midjourney.sensors.midjourney]"
AIRFLOW_VERSION = tuple(int(part) for part in airflow_version.split(".")[:2])


def test_trigger_and_sensor_lines_are_not_masked(emulator, capfd) -> None:
    source = textwrap.dedent(
        """
        from datetime import datetime
        from airflow.sdk import DAG
        from airflow_provider_midjourney.operators import MidjourneyImagineOperator
        from airflow_provider_midjourney.sensors import MidjourneyJobSensor

        with DAG(dag_id="log_names", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
            submit = MidjourneyImagineOperator(task_id="submit", prompt="logged", wait_for_completion=False)
            sense = MidjourneyJobSensor(task_id="sense", job_id=submit.output["job_id"], poll_interval=0.05)
            poke = MidjourneyJobSensor(task_id="poke", job_id=submit.output["job_id"], deferrable=False,
                                       poll_interval=0.05)
            fail = MidjourneyImagineOperator(task_id="fail", prompt="explode now", poll_interval=0.05)
            submit >> [sense, poke]
        """
    )
    dag = load_dag(write_dag("log_names", source), "log_names")
    capfd.readouterr()
    dag.test()
    out = "\n".join(capfd.readouterr())
    lines = out.splitlines()
    trigger_lines = [line for line in lines if "Job j" in line and (": progress" in line or ": failed" in line)]
    sensor_lines = [line for line in lines if "Job j" in line and ": completed 100%" in line]
    assert trigger_lines and sensor_lines, out[-3000:]  # the lines this test is about were printed
    assert not MASKED.findall(out), [line for line in lines if MASKED.search(line)][:5]
    # Airflow >= 3.1 prints structlog lines ending with the logger name, and redacts them; 3.0's
    # dag.test() prints stdlib lines without the name (and does not redact them).
    structured = [line for line in trigger_lines + sensor_lines if "] loc=" in line]
    assert structured or AIRFLOW_VERSION < (3, 1)
    for line in structured:
        assert TRIGGER_LOGGER in line or SENSOR_LOGGER in line, line
    # The failed job's exception keeps its name in the traceback (3.0's dag.test() prints none).
    failed = "airflow_provider_midjourney.exceptions.MidjourneyJobFailedError: Midjourney job"
    assert failed in out or AIRFLOW_VERSION < (3, 1)
