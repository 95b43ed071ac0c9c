"""A DAG for tests/e2e/test_connection_button.py: deferred tasks whose trigger and sensor lines
(and a failed job's exception) are read back from the real triggerer's and workers' log files."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_midjourney.operators import MidjourneyImagineOperator
from airflow_provider_midjourney.sensors import MidjourneyJobSensor

with DAG(dag_id="e2e_logs", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["e2e"]) as dag:
    submit = MidjourneyImagineOperator(task_id="submit", prompt="[logs] a tidy log", wait_for_completion=False)
    MidjourneyJobSensor(task_id="sense", job_id=submit.output["job_id"], poll_interval=1.0)
    MidjourneyImagineOperator(task_id="explode", prompt="[logs] explode on purpose", poll_interval=1.0)
