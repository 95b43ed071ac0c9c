"""Where a task instance keeps the id of the job it submitted, so a retry never submits twice.

Each entry is the job id plus the *fingerprint* of the validated request that created it
(:meth:`~airflow_provider_midjourney.job_requests.JobOptions.fingerprint`). A later try, or a cleared
task, reattaches only when the fingerprint matches what it is about to send: same request, same
job; a changed prompt or a different parent job is submitted anew.

- Airflow >= 3.3: the task state store (``context["task_state_store"]``), which Airflow keeps
  per task instance (30 days), under the keys ``midjourney_job_id``, ``midjourney_job_fingerprint``,
  ``midjourney_job_conn_id`` (the connection that runs the job: with ``fallback_conn_ids`` it may not
  be the first one) and ``midjourney_job_submitted_at`` (epoch seconds, for the duration metric).
- Airflow 3.0-3.2 have no task state store: an Airflow Variable keyed by the task instance
  (``midjourney_job-<digest>``), written through the Task SDK, read by every try of the same task
  instance and deleted when the task succeeds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

STATE_KEY = "midjourney_job_id"
FINGERPRINT_KEY = "midjourney_job_fingerprint"
CONN_KEY = "midjourney_job_conn_id"
SUBMITTED_KEY = "midjourney_job_submitted_at"
VARIABLE_PREFIX = "midjourney_job-"  # no "/": the Task SDK puts the key in a URL path

__all__ = ["FINGERPRINT_KEY", "STATE_KEY", "JobStore", "StoredJob", "job_store_for"]


@dataclass(frozen=True)
class StoredJob:
    job_id: str
    #: None for an entry written before fingerprints existed (reattached as before, and logged).
    fingerprint: str | None
    #: The connection the job runs on; None for an entry written before failover existed (the
    #: operator's ``midjourney_conn_id`` then).
    conn_id: str | None = None
    #: When the job was submitted (epoch seconds), if known.
    submitted_at: float | None = None


class JobStore(Protocol):
    def get(self) -> StoredJob | None: ...

    def put(
        self, job_id: str, fingerprint: str, conn_id: str | None = None, submitted_at: float | None = None
    ) -> None: ...

    def clear(self) -> None: ...


class TaskStateJobStore:
    """Airflow >= 3.3: the task state store of the task instance."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def get(self) -> StoredJob | None:
        job_id = self.store.get(STATE_KEY)
        if not isinstance(job_id, str) or not job_id:
            return None
        fingerprint = self.store.get(FINGERPRINT_KEY)
        return StoredJob(
            job_id,
            fingerprint if isinstance(fingerprint, str) else None,
            _text(self.store.get(CONN_KEY)),
            _epoch(self.store.get(SUBMITTED_KEY)),
        )

    def put(self, job_id: str, fingerprint: str, conn_id: str | None = None, submitted_at: float | None = None) -> None:
        self.store.set(FINGERPRINT_KEY, fingerprint)
        self.store.set(CONN_KEY, conn_id or "")
        self.store.set(SUBMITTED_KEY, submitted_at)
        self.store.set(STATE_KEY, job_id)  # last: an entry with an id is complete

    def clear(self) -> None:
        """Kept: Airflow expires it, and a cleared task with the same request reattaches."""


def ti_key(ti: Any) -> str:
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{getattr(ti, 'map_index', -1)}"


class VariableJobStore:
    """Airflow 3.0-3.2: one Airflow Variable per task instance, deleted when the task succeeds.

    Reading or writing it can fail where no API server is reachable (a unit test calling
    ``execute`` by hand); that is logged and the task goes on without the record.
    """

    def __init__(self, ti: Any, log: logging.Logger) -> None:
        self.name = ti_key(ti)
        self.key = VARIABLE_PREFIX + hashlib.sha256(self.name.encode()).hexdigest()[:40]
        self.log = log

    def get(self) -> StoredJob | None:
        from airflow.sdk import Variable

        try:
            raw = Variable.get(self.key, default=None)
        except Exception as exc:
            self.log.warning("Could not read Variable %s (%s): no earlier job to reattach to", self.key, exc)
            return None
        if not raw:
            return None
        try:
            data = json.loads(raw) if isinstance(raw, str) else raw
            return StoredJob(
                str(data["job_id"]),
                str(data["fingerprint"]) if data.get("fingerprint") else None,
                _text(data.get("conn_id")),
                _epoch(data.get("submitted_at")),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            self.log.warning("Variable %s does not hold a job record; ignoring it", self.key)
            return None

    def put(self, job_id: str, fingerprint: str, conn_id: str | None = None, submitted_at: float | None = None) -> None:
        from airflow.sdk import Variable

        record = {"job_id": job_id, "fingerprint": fingerprint, "task_instance": self.name}
        value = json.dumps({**record, "conn_id": conn_id, "submitted_at": submitted_at})
        try:
            Variable.set(
                self.key,
                value,
                description=f"Midjourney job of {self.name} (airflow-provider-midjourney; deleted on success)",
            )
        except Exception as exc:
            self.log.warning("Could not store job %s in Variable %s (%s); a retry may miss it", job_id, self.key, exc)

    def clear(self) -> None:
        from airflow.sdk import Variable

        try:
            Variable.delete(self.key)
        except Exception as exc:
            self.log.warning("Could not delete Variable %s (%s)", self.key, exc)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1e11:
        return float(value)
    return None


def job_store_for(context: Any, log: logging.Logger) -> JobStore:
    """The task state store where Airflow has one (>= 3.3), else a Variable of the task instance."""
    store = context.get("task_state_store") if hasattr(context, "get") else None
    if store is not None:
        return TaskStateJobStore(store)
    return VariableJobStore(context["ti"], log)
