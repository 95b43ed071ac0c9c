"""The main job on every backend (tests/e2e/test_backends.py): imagine → U1..U4 → download.

One DAG per backend, each on its own connection (``mj_<backend>``, set by the test through
``AIRFLOW_CONN_*``): the same operators over useapi v3, ImaginePro, useapi v2, midjourney-proxy and Apiframe.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_midjourney.backends import BACKENDS as REGISTERED
from airflow_provider_midjourney.operators import (
    MidjourneyButtonOperator,
    MidjourneyDownloadOperator,
    MidjourneyImagineOperator,
)

BACKENDS = [backend.name for backend in REGISTERED]
DESTINATION = os.environ.get("MIDJOURNEY_DESTINATION", "file:///tmp/midjourney-e2e")

for backend in BACKENDS:
    with DAG(
        dag_id=f"e2e_main_{backend}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["e2e", backend],
    ) as dag:
        conn = {"midjourney_conn_id": f"mj_{backend}", "poll_interval": 1.0}
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt=f"[backend {backend}] a red fox", **conn)
        upscale = MidjourneyButtonOperator.partial(task_id="upscale", job_id=imagine.output["job_id"], **conn).expand(
            button=["U1", "U2", "U3", "U4"]
        )
        download = MidjourneyDownloadOperator(
            task_id="download",
            job_id=imagine.output["job_id"],
            midjourney_conn_id=f"mj_{backend}",
            destination=f"{DESTINATION.rstrip('/')}/{backend}/",
            contact_sheet=True,
        )
        imagine >> [upscale, download]
    globals()[f"dag_{backend}"] = dag
