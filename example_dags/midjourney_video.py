"""Imagine a grid, let a human pick one picture, animate it into clips, keep the MP4 files.

``imagine → pick → animate (the chosen picture) → download``. The pick waits in Airflow's "Required
actions" page (Airflow >= 3.1; nobody answers within a day: U1); answer there or through the REST API::

    PATCH /api/v2/dags/midjourney_video/dagRuns/<run_id>/taskInstances/pick/-1/hitlDetails
    {"chosen_options": ["U3"], "params_input": {}}

The animate step runs on any backend with video (useapi.net v3, ImaginePro from an upscale,
midjourney-proxy superset, TTAPI, Legnext, Apiframe); the clips and a contact sheet that plays them
go to ``$MIDJOURNEY_DESTINATION/<date>/video/``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_midjourney.operators import (
    MidjourneyDownloadOperator,
    MidjourneyImagineOperator,
    MidjourneyPickOperator,
    MidjourneyVideoOperator,
)

POLL_INTERVAL = float(os.environ.get("MIDJOURNEY_POLL_INTERVAL", "5"))
AIRFLOW_HOME = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
DESTINATION = os.environ.get("MIDJOURNEY_DESTINATION") or f"file://{os.path.abspath(AIRFLOW_HOME)}/midjourney"

with DAG(
    dag_id="midjourney_video",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "prompt": "a paper boat on a rainy street, watercolor --ar 16:9",
        "motion_prompt": "the boat drifts slowly down the street, rain falling",
        "motion": "low",
    },
    tags=["midjourney", "example", "video", "human-in-the-loop"],
) as dag:
    imagine = MidjourneyImagineOperator(task_id="imagine", prompt="{{ params.prompt }}", poll_interval=POLL_INTERVAL)
    pick = MidjourneyPickOperator(
        task_id="pick",
        job=imagine.output,
        multiple=False,
        defaults=["U1"],
        response_timeout=timedelta(days=1),
        subject="Which picture should move?",
    )
    # pick.output is a list with one button, e.g. ["U3"]: its number is the picture to animate.
    animate = MidjourneyVideoOperator(
        task_id="animate",
        job_id=imagine.output["job_id"],
        index="{{ ti.xcom_pull(task_ids='pick')[0][1:] }}",
        prompt="{{ params.motion_prompt }}",
        motion="{{ params.motion }}",
        poll_interval=POLL_INTERVAL,
        timeout=timedelta(hours=1),  # videos take longer than pictures
    )
    download = MidjourneyDownloadOperator(
        task_id="download",
        job_id=animate.output["job_id"],
        kind="videos",
        destination=DESTINATION.rstrip("/") + "/{{ dag_run.run_after | ds }}/video/",
        contact_sheet=True,
    )
    imagine >> pick >> animate >> download
