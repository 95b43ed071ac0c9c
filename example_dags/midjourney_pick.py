"""Imagine a grid, let a human pick which pictures to upscale, upscale those, keep the files.

``imagine → pick → upscale (one mapped task per chosen button) → download``. The pick waits in
Airflow's "Required actions" page (Airflow >= 3.1) with the four pictures and the prompt; answer
there, or through the REST API::

    PATCH /api/v2/dags/midjourney_pick/dagRuns/<run_id>/taskInstances/pick/-1/hitlDetails
    {"chosen_options": ["U1", "U3"], "params_input": {}}

Nobody answers within ``response_timeout`` (a day): U1 is taken. Each chosen upscale's picture is
stored under ``$MIDJOURNEY_DESTINATION/<date>/pick/`` with a contact sheet.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_midjourney.operators import (
    MidjourneyButtonOperator,
    MidjourneyDownloadOperator,
    MidjourneyImagineOperator,
    MidjourneyPickOperator,
)

POLL_INTERVAL = float(os.environ.get("MIDJOURNEY_POLL_INTERVAL", "5"))
AIRFLOW_HOME = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
DESTINATION = os.environ.get("MIDJOURNEY_DESTINATION") or f"file://{os.path.abspath(AIRFLOW_HOME)}/midjourney"

with DAG(
    dag_id="midjourney_pick",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"prompt": "a paper boat on a rainy street, watercolor --ar 1:1"},
    tags=["midjourney", "example", "human-in-the-loop"],
) as dag:
    imagine = MidjourneyImagineOperator(
        task_id="imagine",
        prompt="{{ params.prompt }}",
        midjourney_conn_id="midjourney_default",
        poll_interval=POLL_INTERVAL,
    )
    pick = MidjourneyPickOperator(
        task_id="pick", job=imagine.output, defaults=["U1"], response_timeout=timedelta(days=1)
    )
    # pick.output is a plain list such as ["U1", "U3"]: one upscale task per chosen button.
    # job_id=imagine.output (the whole result): the buttons are pressed on the connection that ran
    # the imagine job, also when it came from one of its fallback_conn_ids (docs/failover.md).
    upscale = MidjourneyButtonOperator.partial(
        task_id="upscale",
        job_id=imagine.output,
        midjourney_conn_id="midjourney_default",
        poll_interval=POLL_INTERVAL,
    ).expand(button=pick.output)
    download = MidjourneyDownloadOperator.partial(
        task_id="download",
        midjourney_conn_id="midjourney_default",
        destination=DESTINATION.rstrip("/") + "/{{ dag_run.run_after | ds }}/pick/",
        contact_sheet=False,
    ).expand(job_id=upscale.output)
    imagine >> pick >> upscale >> download
