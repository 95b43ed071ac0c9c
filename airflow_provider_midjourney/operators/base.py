"""The operators' shared flow: submit a Midjourney job, remember its id, then wait in the triggerer
(or the worker). The concrete operators (imagine, buttons, ...) are in ``operators/midjourney.py``.

The job id is persisted *before* any waiting (XCom ``job_id`` and, on Airflow >= 3.3, the task
state store), so a retry of the same task instance reattaches to the job instead of creating a
second one. See README, "Retries never duplicate a job", for the guarantee and its limits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseOperator

from airflow_provider_midjourney import config
from airflow_provider_midjourney.checks import DEFAULT_TRANSIENT_ERROR_TIMEOUT, check_seconds, check_trigger_numbers
from airflow_provider_midjourney.exceptions import (
    AirflowSkipException,
    MidjourneyBusyError,
    MidjourneyError,
    MidjourneyExpiredError,
    MidjourneyInvalidRequestError,
    MidjourneyJobModeratedError,
    MidjourneyLostSubmissionError,
    MidjourneyMalformedAnswerError,
    MidjourneyNotFoundError,
    MidjourneyServerError,
    MidjourneySubmitUncertainError,
    MidjourneyTransportError,
    MidjourneyUnsupportedError,
)
from airflow_provider_midjourney.failover import (
    ChosenJob,
    ConnectionChain,
    check_fallback_conn_ids,
    connection_chain,
    follow_job,
)
from airflow_provider_midjourney.jobstore import STATE_KEY, JobStore, job_store_for
from airflow_provider_midjourney.links import MidjourneyImageLink
from airflow_provider_midjourney.metrics import emit_outcome
from airflow_provider_midjourney.operators.outcome import (
    annotate_outlets,
    conn_of_event,
    count_outcome,
    with_connection_and_cost,
)
from airflow_provider_midjourney.operators.reply_refs import task_reply_ref, with_fingerprint
from airflow_provider_midjourney.retry import NO_RETRY, HttpRetry

# Only what a constructor needs is imported here: a DAG file imports this module on every parse.
# The hooks, models and trigger (pydantic, httpx) are imported where a task uses them.
if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook
    from airflow_provider_midjourney.job import MidjourneyJob
    from airflow_provider_midjourney.job_requests import JobOptions
    from airflow_provider_midjourney.triggers.midjourney import MidjourneyJobTrigger
    from airflow_provider_midjourney.vocabulary import ReplyLevel

__all__ = ["STATE_KEY", "MidjourneyBaseOperator", "run_bounded", "task_reply_ref"]

DEFAULT_TIMEOUT = timedelta(minutes=30)
DEFAULT_ADMISSION_TIMEOUT = timedelta(hours=24)
MAX_TIMEOUT = 7 * 24 * 3600.0
# The trigger's own deadline fires first, so the operator can cancel the job; Airflow's defer
# timeout is only the backstop.
DEFER_GRACE = timedelta(minutes=2)
#: Cancelling on timeout or kill is one attempt bounded by this many seconds in all.
CANCEL_SECONDS = 10.0
#: After a lost creation answer: looks for the job among running jobs, spread over a few seconds.
RECOVER_DELAYS = (0.0, 0.5, 1.5, 3.0)


def run_bounded(coro_factory: Any, seconds: float) -> Any:
    """Run a coroutine in a fresh event loop on a helper thread, giving up after ``seconds``.

    Works from any caller (a worker's sync code, a signal handler while a loop runs, a test).
    """

    async def bounded() -> Any:
        return await asyncio.wait_for(coro_factory(), timeout=seconds)

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, bounded()).result(timeout=seconds + 5)


class MidjourneyBaseOperator(BaseOperator):
    """Shared flow of every Midjourney operator: validate → submit (or reattach) → wait → result.

    :param midjourney_conn_id: the Airflow connection; its type picks the backend (``midjourney`` for
        useapi.net v3, ``imaginepro``, ``midjourney_useapi_v2``, ``midjourney_proxy``).
    :param channel: Discord channel id; default: the connection's ``channel`` extra, else the API
        balances across configured channels.
    :param reply_url: webhook the API posts job events to.
    :param reply_ref: reference stored with the job. Default: a key of this task instance plus the
        request's fingerprint, which lets this try find a job whose creation answer was lost.
    :param reply_level: ``all``, ``standard`` or ``minimal`` webhook events.
    :param wait_for_completion: wait for a terminal status; False returns the job id at once.
    :param deferrable: wait in the triggerer (no worker slot held; a triggerer must run) instead of
        polling in the worker; default ``[midjourney] default_deferrable`` (see config.py), True.
    :param poll_interval: seconds between status polls (0.01 to 3600); default ``[midjourney] poll_interval``.
    :param timeout: total wait for the job (seconds or timedelta, up to 7 days); on expiry the job
        is cancelled (one attempt of at most :data:`CANCEL_SECONDS`) and the task fails with
        :class:`~airflow_provider_midjourney.exceptions.MidjourneyJobTimeoutError`.
    :param cancel_on_kill: cancel the job when the task is killed.
    :param max_consecutive_errors: optional bound on transient polling errors in a row (None: only
        ``transient_error_timeout`` bounds them).
    :param transient_error_timeout: seconds of transient polling errors (5xx, dropped connections,
        malformed answers) in a row after which the wait gives up; the polls back off meanwhile.
    :param retry: the hook's HTTP retry policy (429 waits, backoff); default: the documented advice.
    :param if_unsupported: ``"fail"`` (default) or ``"skip"``: what the task does when the
        connection's backend cannot serve the request (seed on ImaginePro, say). Skipping lets one
        DAG run on any backend; either way nothing is sent. With ``fallback_conn_ids``, a
        connection that cannot serve it is passed over first; this applies when none can.
    :param fallback_conn_ids: connection ids (any backend type) tried in order after
        ``midjourney_conn_id`` when a connection refuses the job in a way that proves none was
        created: 401/403, 402, a connection that failed before the request left, a capability the
        backend lacks. Never after a timeout, a 5xx or a dropped answer (the job may exist), nor
        after moderation. The result's ``conn_id`` names the connection that ran the job; a task
        on that job (button, seed, video) given the result as ``job_id`` runs there. Templated.
        See docs/failover.md.
    :param defer_when_busy: with ``deferrable``, a full account (its busy answer, or the running-jobs
        list at the connection's ``max_jobs`` extra) makes the task wait for room in the triggerer,
        first come first served, instead of sleeping in its worker slot. False: the HTTP retry
        policy's busy waits apply, in the worker.
    :param admission_timeout: how long the task may wait for room on a full account before it fails
        with :class:`~airflow_provider_midjourney.exceptions.MidjourneyAccountBusyError` (nothing
        submitted); seconds or timedelta, default 24 hours. Separate from ``timeout``, which bounds
        the job itself: a task at the end of a long mapped queue may wait for hours.
    """

    template_fields: Sequence[str] = ("channel", "reply_url", "reply_ref", "reply_level", "fallback_conn_ids")
    operator_extra_links = (MidjourneyImageLink(),)
    ui_color = "#d6e4ff"

    def __init__(
        self,
        *,
        midjourney_conn_id: str = "midjourney_default",
        channel: str | None = None,
        reply_url: str | None = None,
        reply_ref: str | None = None,
        reply_level: ReplyLevel | None = None,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float | None = None,
        timeout: float | timedelta = DEFAULT_TIMEOUT,
        cancel_on_kill: bool = True,
        max_consecutive_errors: int | None = None,
        transient_error_timeout: float = DEFAULT_TRANSIENT_ERROR_TIMEOUT,
        retry: HttpRetry | None = None,
        if_unsupported: Literal["fail", "skip"] = "fail",
        defer_when_busy: bool = True,
        admission_timeout: float | timedelta = DEFAULT_ADMISSION_TIMEOUT,
        fallback_conn_ids: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if if_unsupported not in ("fail", "skip"):
            raise MidjourneyInvalidRequestError(f"if_unsupported: must be 'fail' or 'skip', got {if_unsupported!r}")
        self.if_unsupported = if_unsupported
        self.timeout = check_seconds(timeout, "timeout", minimum=0.1, maximum=MAX_TIMEOUT)
        self.poll_interval, self.max_consecutive_errors, self.transient_error_timeout = check_trigger_numbers(
            config.poll_interval() if poll_interval is None else poll_interval,
            max_consecutive_errors,
            transient_error_timeout,
        )
        if retry is not None and not isinstance(retry, HttpRetry):
            raise MidjourneyInvalidRequestError(f"retry: expected a HttpRetry, got {type(retry).__name__}")
        self.midjourney_conn_id = midjourney_conn_id
        self.channel = channel
        self.reply_url = reply_url
        self.reply_ref = reply_ref
        self.reply_level = reply_level
        self.wait_for_completion = wait_for_completion
        self.deferrable = config.default_deferrable() if deferrable is None else deferrable
        self.cancel_on_kill = cancel_on_kill
        self.retry = retry
        self.defer_when_busy = bool(defer_when_busy)
        self.admission_timeout = check_seconds(admission_timeout, "admission_timeout", minimum=1, maximum=MAX_TIMEOUT)
        self._admission: dict[str, Any] | None = None  # the admission trigger's event, once woken
        if fallback_conn_ids is None or isinstance(fallback_conn_ids, str | list | tuple):
            check_fallback_conn_ids(fallback_conn_ids)  # else an XComArg: checked once rendered
        self.fallback_conn_ids = fallback_conn_ids
        self.submitted_job_id: str | None = None
        #: The connection the job runs on (``midjourney_conn_id`` or one of ``fallback_conn_ids``).
        self.job_conn_id: str | None = None
        self.midjourney_result: dict[str, Any] | None = None

    @cached_property
    def hook(self) -> MidjourneyBackendHook:
        """The hook of the connection the job runs on (at first: ``midjourney_conn_id``)."""
        from airflow_provider_midjourney.hooks.base import hook_for_connection

        return hook_for_connection(self.job_conn_id or self.midjourney_conn_id, retry=self._retry_policy())

    def _retry_policy(self) -> HttpRetry | None:
        """The HTTP retry policy of every hook this task submits with (fallback connections too)."""
        if self._defers_when_busy():  # a busy submit defers; it does not sleep in the worker
            return dataclasses.replace(self.retry or HttpRetry(), retry_busy_submit=False)
        return self.retry

    def _defers_when_busy(self) -> bool:
        return self.deferrable and self.defer_when_busy

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        """The validated request; ``options`` holds channel and reply fields."""
        raise NotImplementedError

    def _options(self, reply_ref: str) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "reply_url": self.reply_url,
            "reply_ref": reply_ref,
            "reply_level": self.reply_level,
        }

    def prepare_request(self, context: Context, hook: MidjourneyBackendHook | None = None) -> tuple[JobOptions, str]:
        """The validated, backend-checked request and its fingerprint; no HTTP call is made."""
        try:
            return self._prepare_for(context, hook or self.hook)
        except MidjourneyUnsupportedError as exc:
            if self.if_unsupported == "skip":
                raise AirflowSkipException(f"Skipped (if_unsupported='skip'): {exc}") from exc
            raise

    def _prepare_for(self, context: Context, hook: MidjourneyBackendHook) -> tuple[JobOptions, str]:
        """The request as ``hook``'s backend takes it (its fingerprint and replyRef are per backend)."""
        reply_ref = self.reply_ref or task_reply_ref(context)
        request = self.build_request(self._options(reply_ref))
        fingerprint = request.fingerprint(hook.backend)
        if self.reply_ref is None:
            request = request.model_copy(update={"reply_ref": with_fingerprint(reply_ref, fingerprint)})
        # Checked against what the backend can do, before any HTTP call.
        return hook.check_request(request), fingerprint

    def execute(self, context: Context) -> dict[str, Any]:
        self._bind_to_parent_job()
        store = job_store_for(context, self.log)
        chosen = self._reattach(context, store) or self._submit_with_failover(context)
        self._use_connection(chosen.conn_id, chosen.hook)
        job = chosen.job
        self.submitted_job_id = job.job_id
        self._remember(context, job.job_id, chosen.fingerprint, store, chosen.submitted_at)
        if job.is_terminal:
            return self._finish(job.to_event(), context)
        if not self.wait_for_completion:
            store.clear()  # the task succeeds now; nothing for a retry to find
            return {"job_id": job.job_id, "status": str(job.status), "backend": job.backend, "conn_id": chosen.conn_id}
        from airflow_provider_midjourney.triggers.midjourney import MidjourneyJobTrigger

        trigger = MidjourneyJobTrigger(
            job_id=job.job_id,
            midjourney_conn_id=chosen.conn_id,
            poll_interval=self.poll_interval,
            deadline=time.time() + self.timeout,
            max_consecutive_errors=self.max_consecutive_errors,
            cancel_on_kill=self.cancel_on_kill,
            try_number=getattr(context["ti"], "try_number", None),
            transient_error_timeout=self.transient_error_timeout,
        )
        if self.deferrable:
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout) + DEFER_GRACE,
            )
        return self._finish(self._wait_in_worker(trigger), context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: its one event decides the task's outcome."""
        try_number = getattr(context.get("ti"), "try_number", None)
        deferred_in_try = event.get("try_number") if isinstance(event, dict) else None
        if deferred_in_try is not None and try_number is not None and deferred_in_try != try_number:
            # Airflow 3.0 can resume a *retry* with the previous try's event: start afresh instead
            # (execute reattaches to the same job, so nothing is submitted twice).
            self.log.info("Event belongs to try %s, this is try %s: re-running", deferred_in_try, try_number)
            return self.execute(context)
        if isinstance(event, dict) and event.get("job_id"):
            self.submitted_job_id = str(event["job_id"])
        return self._finish(event, context)

    # -- a busy account: wait for room in the triggerer ------------------------------------------

    def execute_admitted(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after waiting for room on the account: submit now (or wait again)."""
        from airflow_provider_midjourney.exceptions import MidjourneyAccountBusyError
        from airflow_provider_midjourney.operators.admission import admission_event

        event = admission_event(event)
        try_number = getattr(context.get("ti"), "try_number", None)
        if event.get("try_number") not in (None, try_number):
            return self.execute(context)  # a previous try's event (Airflow 3.0): start afresh
        if event["status"] == "timeout":
            raise MidjourneyAccountBusyError(str(event.get("message")))
        if event["status"] == "error":
            raise MidjourneyError(str(event.get("message")))
        self._admission = event
        return self.execute(context)

    def _submit_when_room(
        self, context: Context, request: JobOptions, hook: MidjourneyBackendHook | None = None
    ) -> MidjourneyJob:
        """Submit when the account has room; else wait for it in the triggerer (triggers/admission.py).

        Where the connection states the account's limit (``max_jobs``), a task's first submission is
        admitted by the connection's shared gate: tasks that start together (a mapped task) would all
        see the same free slots and meet busy answers, the gate gives each slot to one task. Without a
        limit the task submits, and a busy answer sends it to the gate.
        """
        hook = hook or self.hook
        if not self._defers_when_busy():
            return self._submit(request, hook)
        from airflow_provider_midjourney.operators.admission import (
            EARLY_WAIT,
            account_full,
            connection_limit,
            running_count,
            still_running,
        )

        conn_id = hook.midjourney_conn_id
        admission = self._admission if (self._admission or {}).get("conn_id") in (None, conn_id) else None
        admission = admission or {}
        limit = connection_limit(hook)
        if not admission and limit is not None:
            self._defer_for_room(context, limit, not_before=None, conn_id=conn_id)
        replaces = admission.get("replaces")  # absent in events of triggers deferred before this version
        if admission.get("early") and (
            still_running(hook, replaces, wait=EARLY_WAIT) if replaces else account_full(hook, limit, wait=EARLY_WAIT)
        ):
            self._defer_for_room(context, limit, not_before=None, conn_id=conn_id)  # woken ahead of a slot
        try:
            return self._submit(request, hook)
        except MidjourneyBusyError as exc:
            self.log.info("The account is busy (%s): waiting for room in the triggerer, not in this worker", exc)
            self._defer_for_room(context, limit or running_count(hook), not_before=exc.retry_after, conn_id=conn_id)
            raise  # not reached: _defer_for_room raises TaskDeferred

    def _defer_for_room(
        self, context: Context, limit: int | None, not_before: float | None, conn_id: str | None = None
    ) -> None:
        from airflow_provider_midjourney.triggers.admission import MidjourneyAdmissionTrigger

        admission = self._admission or {}
        now = time.time()
        queued_at = float(admission.get("queued_at") or now)
        trigger = MidjourneyAdmissionTrigger(
            midjourney_conn_id=conn_id or self.midjourney_conn_id,
            queued_at=queued_at,
            deadline=queued_at + self.admission_timeout,
            not_before=None if not_before is None else now + not_before,
            limit=limit,
            poll_interval=self.poll_interval,
            attempt=int(admission.get("attempt") or 0) + 1,
            try_number=getattr(context["ti"], "try_number", None),
        )
        remaining = max(queued_at + self.admission_timeout - now, 0.0)
        self.defer(trigger=trigger, method_name="execute_admitted", timeout=timedelta(seconds=remaining) + DEFER_GRACE)

    def _wait_in_worker(self, trigger: MidjourneyJobTrigger) -> dict[str, Any]:
        """``deferrable=False``: the trigger's own polling loop, run in the worker."""
        from airflow_provider_midjourney.hooks.base import hook_for_connection

        hook = hook_for_connection(trigger.midjourney_conn_id, retry=NO_RETRY)  # the loop paces its own retries
        hook.connection_settings  # noqa: B018 - resolve the connection synchronously, outside the loop

        async def wait() -> dict[str, Any]:
            async with hook:
                return await trigger.safe_wait(hook)

        return asyncio.run(wait())

    def _finish(self, event: Any, context: Context | None = None) -> dict[str, Any]:
        store = job_store_for(context, self.log) if context is not None and "ti" in context else None
        stored = store.get() if store is not None else None
        conn_id = conn_of_event(event, stored, self.job_conn_id, self.midjourney_conn_id)
        if isinstance(event, dict) and event.get("status") == "timeout" and self.submitted_job_id:
            self._cancel(self.submitted_job_id, why="it did not finish within the task's timeout", conn_id=conn_id)
        from airflow_provider_midjourney.triggers.midjourney import result_from_event

        count_outcome(event, self._backend_of(conn_id), stored.submitted_at if stored else None)
        result = with_connection_and_cost(result_from_event(event), conn_id, self.log)  # raises unless success
        self.midjourney_result = result
        if context is not None:
            annotate_outlets(context, self.outlets, result, self.log)
        if store is not None:
            store.clear()
        return result

    def _backend_of(self, conn_id: str) -> str:
        """The backend's name, for a metric (never fails the task)."""
        try:
            return self._hook_for(conn_id).backend
        except Exception:
            return "unknown"

    def _cancel(self, job_id: str, why: str, conn_id: str | None = None) -> bool:
        """One attempt, bounded by :data:`CANCEL_SECONDS` in all, never raising: the task keeps
        the error it is failing with (a timeout), and a slow API cannot stretch it. True if cancelled."""
        from airflow_provider_midjourney.hooks.base import Capability, hook_for_connection

        conn_id = conn_id or self.job_conn_id or self.midjourney_conn_id
        try:
            hook = hook_for_connection(conn_id, retry=NO_RETRY, timeout=CANCEL_SECONDS)
            if Capability.CANCEL not in hook.supported_capabilities():
                self.log.warning("Job %s keeps running: the %s backend cannot cancel jobs", job_id, hook.backend)
                return False
            hook.connection_settings  # noqa: B018 - read the connection here, not in the helper thread

            async def cancel() -> bool:
                async with hook:
                    try:
                        if (await hook.afetch_job(job_id)).is_terminal:
                            return False
                    except (MidjourneyTransportError, MidjourneyServerError):
                        pass  # state unknown (no answer, 5xx, malformed): cancel anyway
                    await hook.acancel(job_id)
                    return True

            if run_bounded(cancel, CANCEL_SECONDS):
                self.log.info("Cancelled Midjourney job %s because %s", job_id, why)
                return True
            self.log.info("Job %s had already finished; nothing to cancel", job_id)
        except (TimeoutError, Exception) as exc:
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError | concurrent.futures.TimeoutError):
                reason = f"no answer within {CANCEL_SECONDS:g} s"
            self.log.warning("Could not cancel Midjourney job %s (%s); it may keep running", job_id, reason)
        return False

    def on_kill(self) -> None:
        """Worker-side kill (``deferrable=False``). While deferred, the trigger's ``on_kill`` acts."""
        cancelled = (
            self.cancel_on_kill and self.submitted_job_id and self._cancel(self.submitted_job_id, "the task was killed")
        )
        if cancelled:
            emit_outcome(self.hook.backend, "cancelled")

    # -- which connection: reattach, else the first that takes the job ------------------------

    def _bind_to_parent_job(self) -> None:
        """A task on a job given as the upstream result (``job_id=imagine.output``) runs on the
        connection that ran that job; a plain id keeps ``midjourney_conn_id``. Either way a job's
        follow-up is never sent to a fallback connection: the job exists only where it was made."""
        follow_job(self)
        if self.fallback_conn_ids and getattr(self, "job_id", None):
            self.log.info(
                "fallback_conn_ids not used: this task acts on job %s, which exists on one connection", self.job_id
            )
            self.fallback_conn_ids = None

    def _use_connection(self, conn_id: str, hook: MidjourneyBackendHook) -> None:
        self.job_conn_id = conn_id
        self.__dict__["hook"] = hook  # what ``self.hook`` returns from now on

    def _hook_for(self, conn_id: str) -> MidjourneyBackendHook:
        if conn_id == self.midjourney_conn_id:
            return self.hook
        from airflow_provider_midjourney.hooks.base import hook_for_connection

        return hook_for_connection(conn_id, retry=self._retry_policy())

    def _submit_with_failover(self, context: Context) -> ChosenJob:
        """Submit on the first connection of the chain that takes the job (docs/failover.md), each
        through admission (a full account is waited for, not passed over: docs/admission.md).

        A retry first looks for its job by replyRef on every connection, before submitting anywhere.
        Woken by admission, the chain resumes at the connection that had room: the ones before it
        refused in this same try.
        """
        conn_ids = connection_chain(self.midjourney_conn_id, self.fallback_conn_ids)
        admitted = (self._admission or {}).get("conn_id")
        if admitted in conn_ids:
            conn_ids = conn_ids[conn_ids.index(admitted) :]
        chain = ConnectionChain.prepare(
            conn_ids,
            self._hook_for,
            lambda hook: self._prepare_for(context, hook),
            self.log,
        )
        if getattr(context["ti"], "try_number", 1) > 1 and self.reply_ref is None:
            found = chain.find(self._find_by_reply_ref)
            if found is not None:
                return found
        return chain.submit(
            lambda request, hook: self._submit_when_room(context, request, hook),
            skip_unsupported=self.if_unsupported == "skip",
        )

    # -- never duplicate a job ----------------------------------------------------------------

    def _submit(self, request: JobOptions, hook: MidjourneyBackendHook | None = None) -> MidjourneyJob:
        """Submit; if the answer was lost (no answer, 5xx, malformed), find the job this same try
        created among the running jobs instead of leaving it to a retry that might not find it.

        Where the backend honours an idempotency key (:attr:`~.MidjourneyBackendHook.idempotent_submit`),
        the same request is simply sent again: its key makes the API answer with the first job.
        """
        hook = hook or self.hook
        try:
            return hook.submit_job(request)
        except MidjourneyLostSubmissionError:
            raise
        except (MidjourneySubmitUncertainError, MidjourneyServerError, MidjourneyTransportError) as exc:
            if hook.idempotent_submit:
                return self._resend_idempotent(request, exc, hook)
            if not isinstance(
                exc, MidjourneySubmitUncertainError | MidjourneyServerError | MidjourneyMalformedAnswerError
            ):
                raise
            return self._recover_lost_submission(request, exc, hook)

    def _resend_idempotent(
        self, request: JobOptions, exc: MidjourneyError, hook: MidjourneyBackendHook
    ) -> MidjourneyJob:
        """Send the request again with its same idempotency key, a few times over some seconds.

        Still no answer: the error stands, and an Airflow retry of this task may send it again
        safely (the key is derived from the task instance and the request, not from the try).
        """
        for delay in RECOVER_DELAYS[1:]:
            self.log.warning("The answer to the job submission was lost (%s); sending it again with its key", exc)
            time.sleep(delay)
            try:
                return hook.submit_job(request)
            except (MidjourneySubmitUncertainError, MidjourneyServerError, MidjourneyTransportError) as again:
                exc = again
        raise exc

    def _recover_lost_submission(
        self,
        request: JobOptions,
        exc: MidjourneySubmitUncertainError | MidjourneyServerError,
        hook: MidjourneyBackendHook | None = None,
    ) -> MidjourneyJob:
        hook = hook or self.hook
        reply_ref = request.reply_ref
        self.log.warning("The answer to the job submission was lost (%s); looking for the job by replyRef", exc)
        if reply_ref:
            # A few looks over some seconds: a job (or an API's history of them) may show up late.
            for delay in RECOVER_DELAYS:
                time.sleep(delay)
                try:
                    job = hook.find_job_by_reply_ref(reply_ref)
                except MidjourneyError as lookup_error:
                    self.log.warning("Looking for the job by replyRef failed: %s", lookup_error)
                    continue
                if job is not None:
                    self.log.info("Found job %s, created by the submission whose answer was lost", job.job_id)
                    return job
        raise MidjourneyLostSubmissionError(
            f"{exc} No running job carries replyRef {reply_ref!r}: the job was either not created or"
            " already finished (a moderated prompt ends within seconds). It is not submitted again"
            " automatically, so no duplicate job and no repeated moderated prompt can result; check the"
            " API's job list, then clear this task to submit anew.",
            path=exc.path,  # the backend's own path: the operator knows none
            reply_ref=reply_ref,
        ) from None

    def _remember(
        self,
        context: Context,
        job_id: str,
        fingerprint: str = "",
        store: JobStore | None = None,
        submitted_at: float | None = None,
    ) -> None:
        """Record the job id, its connection and the request's fingerprint before any waiting."""
        conn_id = self.job_conn_id or self.midjourney_conn_id
        (store or job_store_for(context, self.log)).put(job_id, fingerprint, conn_id, submitted_at)
        context["ti"].xcom_push(key="job_id", value=job_id)

    def _reattach(self, context: Context, store: JobStore) -> ChosenJob | None:
        """The job an earlier try of this task instance created for this same request, if any, on
        the connection that created it (with fallbacks, not necessarily the first)."""
        stored = store.get()
        if stored is None:
            return None
        conn_id = stored.conn_id or self.midjourney_conn_id
        hook = self._hook_for(conn_id)
        try:
            _, fingerprint = self._prepare_for(context, hook)
        except MidjourneyUnsupportedError:
            return None  # the request changed to one that connection cannot serve: a new job
        if stored.fingerprint is not None and stored.fingerprint != fingerprint:
            self.log.info(
                "Job %s of an earlier try was made for a different request (the inputs changed since):"
                " submitting the new request instead of reattaching",
                stored.job_id,
            )
            return None
        if stored.fingerprint is None:
            self.log.info("Job %s was stored without a request fingerprint (older provider)", stored.job_id)
        job = self._previous_job(stored.job_id, hook)
        return ChosenJob(conn_id, hook, job, fingerprint, stored.submitted_at) if job is not None else None

    def _previous_job(self, job_id: str, hook: MidjourneyBackendHook | None = None) -> MidjourneyJob | None:
        from airflow_provider_midjourney.vocabulary import JobStatus

        try:
            job = (hook or self.hook).fetch_job(job_id)
        except (MidjourneyNotFoundError, MidjourneyExpiredError):
            return None
        if job.status == JobStatus.MODERATED:
            raise MidjourneyJobModeratedError(
                f"An earlier try's job {job_id} was moderated; the prompt is not resubmitted automatically"
                " (repeated moderated prompts get accounts banned). Change the prompt to run again.",
                job_id=job_id,
                error=job.error,
                error_details=job.error_details,
                code=job.code,
            )
        if job.status == JobStatus.FAILED:
            self.log.info("An earlier try's job %s failed (%s); submitting a new one", job_id, job.error)
            # An idempotency key derived from the same request would get the failed job back.
            (hook or self.hook).supersedes = job_id
            return None
        self.log.info("Reattaching to job %s from an earlier try (status %s)", job_id, job.status)
        return job

    def _find_by_reply_ref(self, reply_ref: str, hook: MidjourneyBackendHook | None = None) -> MidjourneyJob | None:
        """A retry without a stored id: look among running jobs for this request's replyRef."""
        job = (hook or self.hook).find_job_by_reply_ref(reply_ref)
        if job is not None:
            self.log.info("Found running job %s of an earlier try by its replyRef", job.job_id)
        return job
