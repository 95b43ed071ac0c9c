"""Imagine a grid, upscale all four images in parallel (dynamic task mapping), get the seed, and
keep the four images: PNG files plus a contact sheet (``index.html``) in a folder per day.

Run it with no account against the embedded emulator: ``make demo`` (see README).

The files go to ``$MIDJOURNEY_DESTINATION/<date>/`` (any URI Airflow's object storage or fsspec
knows: ``file://``, ``s3://``, ``gs://``...), by default ``$AIRFLOW_HOME/midjourney/<date>/``.
The destination is an Asset: a DAG with ``schedule=[Asset(<that URI>)]`` runs on new images.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_midjourney.operators import (
    MidjourneyButtonOperator,
    MidjourneyDownloadOperator,
    MidjourneyImagineOperator,
    MidjourneySeedOperator,
)

POLL_INTERVAL = float(os.environ.get("MIDJOURNEY_POLL_INTERVAL", "5"))
AIRFLOW_HOME = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
DESTINATION = os.environ.get("MIDJOURNEY_DESTINATION") or f"file://{os.path.abspath(AIRFLOW_HOME)}/midjourney"

with DAG(
    dag_id="midjourney_imagine_upscale",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"prompt": "a lighthouse on a cliff at dawn, oil painting --ar 3:2"},
    tags=["midjourney", "example"],
) as dag:
    imagine = MidjourneyImagineOperator(task_id="imagine", prompt="{{ params.prompt }}", poll_interval=POLL_INTERVAL)
    upscale = MidjourneyButtonOperator.partial(
        task_id="upscale", job_id=imagine.output["job_id"], poll_interval=POLL_INTERVAL
    ).expand(button=["U1", "U2", "U3", "U4"])
    # Not every API has seed (ImaginePro, the original midjourney-proxy): skip it there.
    seed = MidjourneySeedOperator(
        task_id="seed", job_id=imagine.output["job_id"], poll_interval=POLL_INTERVAL, if_unsupported="skip"
    )
    # run_after, not ds: a manual run may have no logical date.
    download = MidjourneyDownloadOperator(
        task_id="download",
        job_id=imagine.output["job_id"],
        destination=DESTINATION.rstrip("/") + "/{{ dag_run.run_after | ds }}/",
        contact_sheet=True,
    )
    imagine >> [upscale, seed, download]
