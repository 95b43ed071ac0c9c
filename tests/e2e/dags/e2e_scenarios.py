"""DAGs for the end-to-end fault scenarios (tests/e2e/test_e2e.py). Prompts carry a marker per
scenario so the emulator's log can be counted per scenario."""

from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG

from airflow_provider_midjourney.operators import MidjourneyImagineOperator
from airflow_provider_midjourney.retry import HttpRetry

FAST = {"poll_interval": 1.0}
START = datetime(2026, 1, 1)


class CrashAfterSubmitOperator(MidjourneyImagineOperator):
    """Kills its own task process right after the job id is recorded, on the first try only."""

    def _remember(self, context: Any, job_id: str, *args: Any, **kwargs: Any) -> None:
        super()._remember(context, job_id, *args, **kwargs)
        if context["ti"].try_number == 1:
            os.kill(os.getpid(), signal.SIGKILL)


def dag(dag_id: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["e2e"])


with dag("e2e_triggerer_restart") as triggerer_restart:
    MidjourneyImagineOperator.partial(task_id="imagine", **FAST).expand(prompt=[f"[restart] job {i}" for i in range(4)])

with dag("e2e_worker_crash") as worker_crash:
    CrashAfterSubmitOperator(
        task_id="imagine", prompt="[crash] survive me", retries=2, retry_delay=timedelta(seconds=1), **FAST
    )

with dag("e2e_busy") as busy:
    MidjourneyImagineOperator.partial(
        task_id="imagine", retry=HttpRetry(max_attempts=40, max_seconds=300, busy_wait=(2.0, 4.0)), **FAST
    ).expand(prompt=[f"[busy] job {i}" for i in range(4)])

with dag("e2e_flaky_polling") as flaky_polling:
    MidjourneyImagineOperator(task_id="below_bound", prompt="[flaky-below] ok", max_consecutive_errors=5, **FAST)

with dag("e2e_broken_polling") as broken_polling:
    MidjourneyImagineOperator(
        task_id="above_bound",
        prompt="[flaky-above] retried",
        max_consecutive_errors=2,
        retries=1,
        retry_delay=timedelta(seconds=1),
        **FAST,
    )

with dag("e2e_html_polls") as html_polls:
    MidjourneyImagineOperator(task_id="imagine", prompt="[html] proxy pages", retries=0, **FAST)

with dag("e2e_lost_answer") as lost_answer:
    MidjourneyImagineOperator.partial(task_id="imagine", retries=2, retry_delay=timedelta(seconds=1), **FAST).expand(
        prompt=["[lost] answer 502", "[lost] answer dropped"]
    )

with dag("e2e_locked") as locked:
    MidjourneyImagineOperator(
        task_id="imagine", prompt="[locked] blocked", retries=3, retry_delay=timedelta(seconds=1), **FAST
    )

with dag("e2e_moderated") as moderated:
    MidjourneyImagineOperator(
        task_id="imagine", prompt="[moderated] something forbidden", retries=3, retry_delay=timedelta(seconds=1), **FAST
    )

with dag("e2e_never_finishes") as never_finishes:
    MidjourneyImagineOperator(task_id="imagine", prompt="[timeout] neverending story", timeout=8, **FAST)

with dag("e2e_mark_failed") as mark_failed:
    MidjourneyImagineOperator(task_id="imagine", prompt="[kill] neverending please", timeout=600, **FAST)
