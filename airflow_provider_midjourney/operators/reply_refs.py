"""The reference a task sends with its job: stable across the tries of one task instance, and tied to
the request, so a lost creation answer can be found again (where the API keeps references)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import Context


def task_reply_ref(context: Context) -> str:
    """A replyRef that is stable across the tries of one task instance, and unique to it."""
    ti = context["ti"]
    key = f"airflow:{ti.dag_id}/{ti.run_id}/{ti.task_id}/{getattr(ti, 'map_index', -1)}"
    if len(key) > 1024:
        key = "airflow:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def with_fingerprint(reply_ref: str, fingerprint: str) -> str:
    """The task's replyRef plus the request's fingerprint: a lookup by replyRef then finds only a
    job made for *this* request, not one of an earlier try whose inputs were different."""
    from airflow_provider_midjourney.job_requests import MAX_REPLY_LENGTH

    ref = f"{reply_ref}~{fingerprint[:16]}"
    if len(ref) > MAX_REPLY_LENGTH:
        ref = "airflow:" + hashlib.sha256(reply_ref.encode()).hexdigest() + f"~{fingerprint[:16]}"
    return ref
