"""Waiting for a job without holding a worker: the trigger polls the job in the triggerer, on any backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_midjourney import config
from airflow_provider_midjourney.backends import hook_class_for
from airflow_provider_midjourney.checks import DEFAULT_TRANSIENT_ERROR_TIMEOUT, check_seconds, check_trigger_numbers
from airflow_provider_midjourney.exceptions import (
    MidjourneyAPIError,
    MidjourneyBusyError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyJobFailedError,
    MidjourneyJobModeratedError,
    MidjourneyJobTimeoutError,
    MidjourneyPermanentError,
    MidjourneyPollingError,
    MidjourneyServerError,
    MidjourneyTransportError,
)
from airflow_provider_midjourney.hooks.base import Capability, MidjourneyBackendHook
from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.redaction import redact, redact_value
from airflow_provider_midjourney.retry import NO_RETRY
from airflow_provider_midjourney.triggers.watch import shared_connection, wait_for_turn
from airflow_provider_midjourney.vocabulary import JobStatus

# MidjourneyMalformedAnswerError (an HTML page, JSON of the wrong shape) is a MidjourneyTransportError.
TRANSIENT_ERRORS = (MidjourneyServerError, MidjourneyTransportError, MidjourneyBusyError)
# What a backend's own parsing may raise on an answer of the wrong shape: transient, like the above.
MALFORMED_ANSWER_ERRORS = (ValueError, KeyError, TypeError, AttributeError, IndexError)
#: Longest pause between polls while errors repeat (the pause doubles from ``poll_interval``).
MAX_ERROR_BACKOFF = 60.0
#: ``on_kill``'s cancel is one attempt bounded by this many seconds.
CANCEL_SECONDS = 10.0


PROGRESS_LOG_EVERY = 30.0  # the default of [midjourney] progress_log_interval (config.py)


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
    :param max_consecutive_errors: optional bound on transient errors (5xx, dropped connections,
        malformed answers) in a row; None (default): only ``transient_error_timeout`` bounds them.
    :param cancel_on_kill: cancel the job when a user kills the deferred task (Airflow >= 3.3).
    :param try_number: the deferring task's try, echoed in the event so a later try can tell a
        stale event (Airflow 3.0 may resume a retry with the previous try's event) from its own.
    :param transient_error_timeout: seconds of transient errors in a row after which the trigger
        gives up with ``error``; meanwhile the pause between polls doubles (up to 60 s).
    """

    # Airflow redacts "eyJ..." (a JWT) in log lines, and "MidjournEYJobTrigger" matched: log under the module.
    _logger_name = "airflow_provider_midjourney.triggers.midjourney"

    def __init__(
        self,
        job_id: str,
        midjourney_conn_id: str = "midjourney_default",
        poll_interval: float = 5.0,
        deadline: float | None = None,
        max_consecutive_errors: int | None = None,
        cancel_on_kill: bool = True,
        try_number: int | None = None,
        transient_error_timeout: float = DEFAULT_TRANSIENT_ERROR_TIMEOUT,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.midjourney_conn_id = midjourney_conn_id
        self.poll_interval, self.max_consecutive_errors, self.transient_error_timeout = check_trigger_numbers(
            poll_interval, max_consecutive_errors, transient_error_timeout
        )
        if deadline is not None:
            deadline = check_seconds(deadline, "deadline (epoch seconds)", minimum=0, maximum=1e11)
        self.deadline = float(deadline) if deadline is not None else time.time() + 30 * 60
        self.cancel_on_kill = bool(cancel_on_kill)
        self.try_number = try_number
        self._progress_every = config.progress_log_interval()
        self._progress_logged = -self._progress_every  # time.monotonic() of the last progress line

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
                "transient_error_timeout": self.transient_error_timeout,
            },
        )

    async def _hook(self) -> MidjourneyBackendHook:
        # The connection's type picks the backend. One request per poll: this loop counts and paces
        # transient errors itself. All triggers of a triggerer share one pooled HTTP client.
        # The lookup itself is shared by the triggers of a connection (triggers/watch.py).
        conn = await shared_connection(self.midjourney_conn_id)
        hook_class = hook_class_for(conn.conn_type, self.midjourney_conn_id)
        return hook_class(self.midjourney_conn_id, connection=conn, retry=NO_RETRY, shared_async_client=True)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            hook = await self._hook()
        except MidjourneyError as exc:
            event = _error(self.job_id, str(exc), fatal=isinstance(exc, MidjourneyInvalidRequestError))
        except Exception as exc:
            event = _error(self.job_id, f"Could not set up polling: {type(exc).__name__}: {exc}")
        else:
            async with hook:
                event = await self.safe_wait(hook)
        # The connection goes with the event: with fallbacks it may not be the operator's first one.
        yield TriggerEvent(redact_value({**event, "try_number": self.try_number, "conn_id": self.midjourney_conn_id}))

    async def safe_wait(self, hook: MidjourneyBackendHook) -> dict[str, Any]:
        """:meth:`wait`, turning any unexpected exception into an ``error`` event (never a raw
        "Trigger failure"), with every secret redacted."""
        try:
            event = await self.wait(hook)
        except Exception as exc:
            self.log.exception("Polling job %s broke off", self.job_id)
            event = _error(self.job_id, f"Polling broke off: {type(exc).__name__}: {exc}")
        return dict(redact_value(event))

    async def wait(self, hook: MidjourneyBackendHook) -> dict[str, Any]:
        """The polling loop; returns the one event payload."""
        errors, first_error_at = 0, 0.0
        last_progress: tuple[str, int | None] | None = None  # (status, percent) of the last answer
        while True:
            try:
                job = await hook.afetch_job(self.job_id)
                if not isinstance(job, MidjourneyJob):
                    raise TypeError(f"the backend returned {type(job).__name__}, not a job")
            except MidjourneyPermanentError as exc:  # 401, 402, 404, 410...: no poll or retry can help
                return _error(self.job_id, str(exc), fatal=True, code=exc.status_code)
            except TRANSIENT_ERRORS + MALFORMED_ANSWER_ERRORS as exc:
                if isinstance(exc, MidjourneyError) and not isinstance(exc, TRANSIENT_ERRORS):
                    return _error(self.job_id, str(exc), fatal=True)  # bad input (also a ValueError)
                # 5xx, 429, no answer, or an answer of the wrong shape: bounded by time, backing off.
                errors += 1
                now = time.monotonic()
                first_error_at = first_error_at if errors > 1 else now
                reason = str(exc) if isinstance(exc, MidjourneyError) else f"malformed answer ({type(exc).__name__})"
                self.log.warning("Polling %s failed (%d in a row): %s", self.job_id, errors, redact(reason))
                over_count = self.max_consecutive_errors is not None and errors >= self.max_consecutive_errors
                if over_count or now - first_error_at >= self.transient_error_timeout:
                    return _error(
                        self.job_id,
                        f"{errors} consecutive errors while polling over {now - first_error_at:.0f} s; last: {reason}",
                    )
            except MidjourneyAPIError as exc:
                return _error(self.job_id, str(exc))
            except MidjourneyError as exc:
                return _error(self.job_id, str(exc), fatal=True)
            else:
                errors = 0
                progress = (str(job.status), job.progress_percent)
                if progress != last_progress:
                    last_progress = progress
                    if self._log_due(job):
                        # Off the event loop: in Airflow 3's triggerer a log line is a blocking write to
                        # the supervisor, and stalls the loop whenever the supervisor is busy.
                        await asyncio.to_thread(self._log_progress, job)
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
            if errors:  # back off: poll_interval, doubling, at most MAX_ERROR_BACKOFF
                backoff = min(self.poll_interval * 2 ** (errors - 1), max(MAX_ERROR_BACKOFF, self.poll_interval))
                await asyncio.sleep(min(backoff, remaining))
                continue
            # Triggers of one connection share one "which jobs still run" call per interval where the
            # API has one; this returns when this job left that list (or its progress is due).
            await wait_for_turn(hook, self.job_id, self.poll_interval, remaining)

    def _log_due(self, job: MidjourneyJob) -> bool:
        """Every status change, but progress percentages at most every ``[midjourney] progress_log_interval`` s.

        In the triggerer (a task instance is attached) the final status is not logged here:
        Airflow logs the event with its payload, and each line costs the busy supervisor a write.
        """
        if job.is_terminal and getattr(self, "task_instance", None) is not None:
            return False
        if job.status != JobStatus.PROGRESS or job.progress_percent is None:
            return True
        if time.monotonic() - self._progress_logged < self._progress_every:
            return False
        self._progress_logged = time.monotonic()
        return True

    def _log_progress(self, job: MidjourneyJob) -> None:
        if job.status == JobStatus.PROGRESS and job.progress_percent is not None:
            self.log.info("Job %s: progress %d%%", job.job_id, job.progress_percent)
        else:
            self.log.info("Job %s: %s", job.job_id, job.status)

    async def on_kill(self) -> None:
        """Airflow >= 3.3 calls this only when a user kills the deferred task (not on restarts)."""
        if not self.cancel_on_kill:
            return
        try:
            await asyncio.wait_for(self._cancel(), timeout=CANCEL_SECONDS)
        except (TimeoutError, Exception) as exc:
            reason = f"no answer within {CANCEL_SECONDS:g} s" if isinstance(exc, TimeoutError) else str(exc)
            self.log.warning("Could not cancel Midjourney job %s: %s", self.job_id, redact(reason))

    async def _cancel(self) -> None:
        async with await self._hook() as hook:
            if Capability.CANCEL not in hook.supported_capabilities():
                return
            job = await hook.afetch_job(self.job_id)
            if not job.is_terminal:
                await hook.acancel(self.job_id)
                self.log.info("Cancelled Midjourney job %s because the task was killed", self.job_id)


def _error(job_id: str, message: str, *, fatal: bool = False, code: int | None = None) -> dict[str, Any]:
    """An ``error`` event; ``fatal`` ones (402, 410, bad input...) fail the task without retries."""
    event: dict[str, Any] = {"status": "error", "job_id": job_id, "message": redact(message)}
    if fatal:
        event["fatal"] = True
    if code is not None:
        event["code"] = code
    return event


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
        if event.get("fatal"):
            code = event.get("code")
            raise MidjourneyPollingError(message, status_code=code if isinstance(code, int) else None)
        raise MidjourneyError(message)
    raise MidjourneyError(f"Unknown trigger event status {status!r} for job {job_id}")
