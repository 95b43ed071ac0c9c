"""Blend three images into a portrait. Local paths work too: they are uploaded as multipart."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_midjourney.operators import MidjourneyBlendOperator

POLL_INTERVAL = float(os.environ.get("MIDJOURNEY_POLL_INTERVAL", "5"))

with DAG(
    dag_id="midjourney_blend",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["midjourney", "example"],
) as dag:
    MidjourneyBlendOperator(
        task_id="blend",
        images=[
            "https://cdn.midjourney.com/5e1f2a8c-1111-4c2b-9a57-0b3c1d2e3f40/0_0.png",
            "https://cdn.midjourney.com/5e1f2a8c-2222-4c2b-9a57-0b3c1d2e3f40/0_1.png",
            "https://cdn.midjourney.com/5e1f2a8c-3333-4c2b-9a57-0b3c1d2e3f40/0_2.png",
        ],
        dimensions="Portrait",
        poll_interval=POLL_INTERVAL,
    )
