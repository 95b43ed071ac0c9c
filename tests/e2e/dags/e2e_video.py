"""Video on the backends that have it (tests/e2e/test_e2e.py): imagine → animate picture 2 → download."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_midjourney.operators import (
    MidjourneyDownloadOperator,
    MidjourneyImagineOperator,
    MidjourneyVideoOperator,
)

BACKENDS = ("useapi_v3", "apiframe")
DESTINATION = os.environ.get("MIDJOURNEY_DESTINATION", "file:///tmp/midjourney-e2e")

for backend in BACKENDS:
    with DAG(
        dag_id=f"e2e_video_{backend}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["e2e", "video", backend],
    ) as dag:
        conn = {"midjourney_conn_id": f"mj_{backend}", "poll_interval": 1.0}
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt=f"[video {backend}] a red fox", **conn)
        animate = MidjourneyVideoOperator(
            task_id="animate", job_id=imagine.output["job_id"], index=2, prompt="it runs through snow", **conn
        )
        download = MidjourneyDownloadOperator(
            task_id="download",
            job_id=animate.output["job_id"],
            kind="videos",
            midjourney_conn_id=f"mj_{backend}",
            destination=f"{DESTINATION.rstrip('/')}/video/{backend}/",
            contact_sheet=True,
        )
        imagine >> animate >> download
    globals()[f"dag_{backend}"] = dag
