"""Describe an image, then imagine a new one from Midjourney's first suggested prompt."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_midjourney.operators import MidjourneyDescribeOperator, MidjourneyImagineOperator

POLL_INTERVAL = float(os.environ.get("MIDJOURNEY_POLL_INTERVAL", "5"))

with DAG(
    dag_id="midjourney_describe_to_imagine",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"image": "https://cdn.midjourney.com/0f2c54c8-3c45-4b55-9e1e-3c2f9d1a7b10/0_0.png"},
    tags=["midjourney", "example"],
) as dag:
    describe = MidjourneyDescribeOperator(task_id="describe", image="{{ params.image }}", poll_interval=POLL_INTERVAL)
    imagine = MidjourneyImagineOperator(
        task_id="imagine_from_description",
        prompt="{{ ti.xcom_pull(task_ids='describe')['prompts'][0] }}",
        poll_interval=POLL_INTERVAL,
    )
    describe >> imagine
