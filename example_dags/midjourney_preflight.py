"""Check the account (info + settings), then run a batch of prompts through a pool.

The pool caps how many jobs run at once at the account's ``maxJobs`` (3 on Basic/Standard
plans). ``include_deferred`` makes deferred tasks hold their slot: a job waiting in the
triggerer still occupies a Midjourney job slot, so it must count. Create the pool once:

    airflow pools set midjourney 3 "Midjourney concurrent jobs (maxJobs)" --include-deferred
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_midjourney.operators import MidjourneyImagineOperator, MidjourneySettingsOperator

POLL_INTERVAL = float(os.environ.get("MIDJOURNEY_POLL_INTERVAL", "5"))
POOL = "midjourney"

with DAG(
    dag_id="midjourney_preflight",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["midjourney", "example"],
) as dag:
    info = MidjourneySettingsOperator(task_id="info", command="info", poll_interval=POLL_INTERVAL, pool=POOL)
    settings = MidjourneySettingsOperator(
        task_id="settings", command="settings", poll_interval=POLL_INTERVAL, pool=POOL
    )
    batch = MidjourneyImagineOperator.partial(task_id="batch", pool=POOL, poll_interval=POLL_INTERVAL).expand(
        prompt=[
            "a red fox in fresh snow, watercolor",
            "a brutalist library at night, cinematic",
            "a koi pond seen from above, ukiyo-e",
            "a paper boat on a rainy street, macro photo",
            "an astronaut tending a greenhouse on Mars",
        ]
    )
    info >> settings >> batch
