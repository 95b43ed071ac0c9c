"""Waiting for a job without holding a worker: the trigger polls the job in the triggerer, on any backend."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_midjourney.exceptions import (
    MidjourneyAPIError,
    MidjourneyBusyError,
    MidjourneyError,
    MidjourneyJobFailedError,
    MidjourneyJobModeratedError,
    MidjourneyJobTimeoutError,
    MidjourneyServerError,
    MidjourneyTransportError,
)
from airflow_provider_midjourney.hooks.base import Capability, MidjourneyBackendHook, ahook_for_connection
from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.models import JobStatus
from airflow_provider_midjourney.retry import NO_RETRY
from airflow_provider_midjourney.triggers.watch import wait_for_turn

TRANSIENT_ERRORS = (MidjourneyServerError, MidjourneyTransportError, MidjourneyBusyError)
PROGRESS_LOG_EVERY = 30.0  # seconds between two "progress n%" lines of one trigger


class MidjourneyJobTrigger(BaseTrigger):
    """Poll one job until it is completed, failed or moderated, then yield exactly one event.

    Polling is read-only, so two copies of the trigger running at once (a triggerer hand-over)
    do no harm. The deadline is an absolute wall-clock time, so it survives serialisation and a
    move to another triggerer.

    :param job_id: the backend's job id.
    :param midjourney_conn_id: the connection (of any Midjourney backend type); the token is looked
        up in the triggerer, never serialised with the trigger.
    :param poll_interval: seconds between polls.
    :param deadline: epoch seconds after which the trigger yields ``timeout``.
    :param max_consecutive_errors: transient errors (5xx, dropped connections) tolerated in a row
        before the trigger gives up with ``error``.
    :param cancel_on_kill: cancel the job when a user kills the deferred task (Airflow >= 3.3).
    :param try_number: the deferring task's try, echoed in the event so a later try can tell a
        stale event (Airflow 3.0 may resume a retry with the previous try's event) from its own.
    """

    # Airflow redacts "eyJ..." (a JWT) in log lines, and "MidjournEYJobTrigger" matched: log under the module.
    _logger_name = "airflow_provider_midjourney.triggers.midjourney"

    def __init__(
        self,
        job_id: str,
        midjourney_conn_id: str = "midjourney_default",
        poll_interval: float = 5.0,
        deadline: float | None = None,
        max_consecutive_errors: int = 5,
        cancel_on_kill: bool = True,
        try_number: int | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.midjourney_conn_id = midjourney_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = float(deadline) if deadline is not None else time.time() + 30 * 60
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.cancel_on_kill = bool(cancel_on_kill)
        self.try_number = try_number
        self._progress_logged = -PROGRESS_LOG_EVERY  # time.monotonic() of the last progress line

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "midjourney_conn_id": self.midjourney_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "max_consecutive_errors": self.max_consecutive_errors,
                "cancel_on_kill": self.cancel_on_kill,
                "try_number": self.try_number,
            },
        )

    async def _hook(self) -> MidjourneyBackendHook:
        # The connection's type picks the backend. One request per poll: this loop counts and paces
        # transient errors itself. All triggers of a triggerer share one pooled HTTP client.
        return await ahook_for_connection(self.midjourney_conn_id, retry=NO_RETRY, shared_async_client=True)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            hook = await self._hook()
        except MidjourneyError as exc:
            event = _error(self.job_id, str(exc))
        else:
            async with hook:
                event = await self.wait(hook)
        yield TriggerEvent({**event, "try_number": self.try_number})

    async def wait(self, hook: MidjourneyBackendHook) -> dict[str, Any]:
        """The polling loop; returns the one event payload."""
        errors = 0
        last_progress: tuple[str, int | None] | None = None  # (status, percent) of the last answer
        while True:
            try:
                job = await hook.afetch_job(self.job_id)
            except TRANSIENT_ERRORS as exc:
                errors += 1
                self.log.warning("Polling %s failed (%d/%d): %s", self.job_id, errors, self.max_consecutive_errors, exc)
                if errors >= self.max_consecutive_errors:
                    return _error(self.job_id, f"{errors} consecutive errors while polling; last: {exc}")
            except MidjourneyAPIError as exc:  # 401, 402, 404, 410...: polling again cannot help
                return _error(self.job_id, str(exc))
            else:
                errors = 0
                progress = (str(job.status), job.progress_percent)
                if progress != last_progress:
                    last_progress = progress
                    self._log_progress(job)
                if job.is_terminal:
                    return job.to_event()
                # Nothing of an answer is kept while sleeping: a waiting trigger stays small, and
                # the garbage collector of a triggerer with thousands of them has less to walk.
                del job
            remaining = self.deadline - time.time()
            if remaining <= 0:
                return {
                    "status": "timeout",
                    "job_id": self.job_id,
                    "last_status": last_progress[0] if last_progress else None,
                    "progress_percent": last_progress[1] if last_progress else None,
                    "message": f"Job {self.job_id} did not finish before its deadline",
                }
            # Triggers of one connection share one "which jobs still run" call per interval where the
            # API has one; this returns when this job left that list (or its progress is due).
            await wait_for_turn(hook, self.job_id, self.poll_interval, remaining)

    def _log_progress(self, job: MidjourneyJob) -> None:
        if job.status == JobStatus.PROGRESS and job.progress_percent is not None:
            # A log line is a blocking write in the triggerer: percentages at most every 30 s.
            if time.monotonic() - self._progress_logged < PROGRESS_LOG_EVERY:
                return
            self._progress_logged = time.monotonic()
            self.log.info("Job %s: progress %d%%", job.job_id, job.progress_percent)
        else:
            self.log.info("Job %s: %s", job.job_id, job.status)

    async def on_kill(self) -> None:
        """Airflow >= 3.3 calls this only when a user kills the deferred task (not on restarts)."""
        if not self.cancel_on_kill:
            return
        async with await self._hook() as hook:
            if Capability.CANCEL not in hook.supported_capabilities():
                return
            job = await hook.afetch_job(self.job_id)
            if not job.is_terminal:
                await hook.acancel(self.job_id)
                self.log.info("Cancelled Midjourney job %s because the task was killed", self.job_id)


def _error(job_id: str, message: str) -> dict[str, Any]:
    return {"status": "error", "job_id": job_id, "message": message}


def result_from_event(event: Any) -> dict[str, Any]:
    """Check a trigger event and turn it into the task's result, or the matching exception."""
    if not isinstance(event, dict) or not isinstance(event.get("status"), str):
        raise MidjourneyError(f"Unexpected trigger event: {event!r}")
    status, job_id = event["status"], str(event.get("job_id", "?"))
    details: dict[str, Any] = {
        "job_id": job_id,
        "error": event.get("error"),
        "error_details": event.get("error_details"),
        "code": event.get("code"),
    }
    message = str(event.get("message") or f"Midjourney job {job_id} {status}")
    if status == "completed":
        result = event.get("result")
        if not isinstance(result, dict) or result.get("job_id") != job_id:
            raise MidjourneyError(f"Completed event for {job_id} carries no valid result: {event!r}")
        return result
    if status == "moderated":
        raise MidjourneyJobModeratedError(
            message + ". The prompt is not resubmitted: repeated moderated prompts get accounts banned.", **details
        )
    if status == "failed":
        raise MidjourneyJobFailedError(message, **details)
    if status == "timeout":
        raise MidjourneyJobTimeoutError(message, **details)
    if status == "error":
        raise MidjourneyError(message)
    raise MidjourneyError(f"Unknown trigger event status {status!r} for job {job_id}")
