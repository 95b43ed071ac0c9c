"""Survive a vendor's outage or an empty account: three connections tried in order, one job in all.

``midjourney_primary`` → ``midjourney_backup`` → ``midjourney_selfhosted``: for example a TTAPI
connection, then a Legnext one, then your own midjourney-proxy (any backend type, in any order).
A connection is passed over only when it refuses the job in a way that proves none was created
(401/403, 402 no credits, connection refused, a capability it lacks); a timeout, a 5xx or a
moderated prompt end the task there. See docs/failover.md.

The upscales and the download follow the imagine job to whichever connection ran it: they take the
imagine task's whole result (``imagine.output``), whose ``conn_id`` names that connection. The
result's ``cost`` reports what the job cost or what the account has left, where the vendor says.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_midjourney.operators import (
    MidjourneyButtonOperator,
    MidjourneyDownloadOperator,
    MidjourneyImagineOperator,
)

POLL_INTERVAL = float(os.environ.get("MIDJOURNEY_POLL_INTERVAL", "5"))
AIRFLOW_HOME = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
DESTINATION = os.environ.get("MIDJOURNEY_DESTINATION") or f"file://{os.path.abspath(AIRFLOW_HOME)}/midjourney"

with DAG(
    dag_id="midjourney_failover",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"prompt": "a harbour at night, lanterns on the water --ar 3:2"},
    tags=["midjourney", "example"],
) as dag:
    imagine = MidjourneyImagineOperator(
        task_id="imagine",
        prompt="{{ params.prompt }}",
        midjourney_conn_id="midjourney_primary",
        fallback_conn_ids=["midjourney_backup", "midjourney_selfhosted"],
        poll_interval=POLL_INTERVAL,
    )
    upscale = MidjourneyButtonOperator.partial(
        task_id="upscale", job_id=imagine.output, poll_interval=POLL_INTERVAL
    ).expand(button=["U1", "U4"])
    download = MidjourneyDownloadOperator(
        task_id="download",
        job_id=imagine.output,
        kind="grid",
        destination=DESTINATION.rstrip("/") + "/{{ dag_run.run_after | ds }}/failover/",
    )
    imagine >> [upscale, download]
