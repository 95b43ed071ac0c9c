"""One task whose result has the shape of a finished Midjourney job: the gallery shows it, and
the attack tests overwrite it through Airflow's REST API (as a user role may)."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="gallery_target", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def gallery_target() -> None:
    @task(task_id="imagine")
    def imagine() -> dict[str, object]:
        return {"job_id": "target", "status": "completed", "image_urls": []}

    imagine()


gallery_target()
