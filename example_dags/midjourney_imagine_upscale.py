"""Imagine a grid, upscale all four images in parallel (dynamic task mapping), get the seed.

Run it with no account against the embedded emulator: ``make demo`` (see README).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_midjourney.operators import (
    MidjourneyButtonOperator,
    MidjourneyImagineOperator,
    MidjourneySeedOperator,
)

POLL_INTERVAL = float(os.environ.get("MIDJOURNEY_POLL_INTERVAL", "5"))

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
    seed = MidjourneySeedOperator(task_id="seed", job_id=imagine.output["job_id"], poll_interval=POLL_INTERVAL)
    imagine >> [upscale, seed]
