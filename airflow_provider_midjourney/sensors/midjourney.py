"""Wait for a job submitted elsewhere (another task, another system) to finish."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_midjourney import config
from airflow_provider_midjourney.checks import DEFAULT_TRANSIENT_ERROR_TIMEOUT, check_seconds, check_trigger_numbers
from airflow_provider_midjourney.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    MidjourneyJobError,
    MidjourneyJobTimeoutError,
)
from airflow_provider_midjourney.links import MidjourneyImageLink

#: Longest a sensor may wait (its ``timeout``); beyond this ``timedelta`` arithmetic overflows long before.
MAX_SENSOR_TIMEOUT = 30 * 24 * 3600.0

# Hooks and trigger (pydantic, httpx) are imported where the task uses them, not on every DAG parse.
if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook


class MidjourneyJobSensor(BaseSensorOperator):
    """Succeed with the job's result once it completes; fail if it fails or is moderated.

    Deferrable by default (the same trigger as the operators). ``soft_fail=True`` turns a failed
    or moderated job, and a timeout, into a skip.

    :param job_id: the backend's job id (templated; e.g. ``imagine.output["job_id"]``), or the
        submitting task's whole result (``submit.output``): the job is then watched on the
        connection that runs it (its ``conn_id``), whatever ``midjourney_conn_id`` says.
    :param deferrable: wait in the triggerer; default ``[midjourney] default_deferrable`` (True).
    :param poll_interval: seconds between polls (also the poke interval when not deferrable);
        default ``[midjourney] poll_interval``.
    :param max_consecutive_errors: optional bound on transient polling errors in a row.
    :param transient_error_timeout: seconds of transient polling errors in a row before giving up.
    """

    template_fields: Sequence[str] = ("job_id",)
    operator_extra_links = (MidjourneyImageLink(),)

    def __init__(
        self,
        *,
        job_id: str,
        midjourney_conn_id: str = "midjourney_default",
        deferrable: bool | None = None,
        poll_interval: float | None = None,
        max_consecutive_errors: int | None = None,
        transient_error_timeout: float = DEFAULT_TRANSIENT_ERROR_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        # Checked before BaseSensorOperator sees them: a 0 or "5" interval, a nan or 1e15 timeout
        # must fail here naming the field, not storm the API or overflow a timedelta later.
        poll_interval, max_consecutive_errors, transient_error_timeout = check_trigger_numbers(
            config.poll_interval() if poll_interval is None else poll_interval,
            max_consecutive_errors,
            transient_error_timeout,
        )
        kwargs["poke_interval"] = check_seconds(
            kwargs.get("poke_interval", poll_interval), "poke_interval", minimum=0.01, maximum=3600.0
        )
        if "timeout" in kwargs:
            kwargs["timeout"] = check_seconds(kwargs["timeout"], "timeout", minimum=0.01, maximum=MAX_SENSOR_TIMEOUT)
        # Airflow redacts "eyJ..." (a JWT) in log lines; "MidjournEYJobSensor" matched: log under the module.
        kwargs.setdefault("logger_name", "airflow_provider_midjourney.sensors.midjourney")
        super().__init__(**kwargs)
        self.job_id = job_id
        self.midjourney_conn_id = midjourney_conn_id
        self.deferrable = config.default_deferrable() if deferrable is None else deferrable
        self.poll_interval = poll_interval
        self.max_consecutive_errors = max_consecutive_errors
        self.transient_error_timeout = transient_error_timeout

    @cached_property
    def hook(self) -> MidjourneyBackendHook:
        from airflow_provider_midjourney.hooks.base import hook_for_connection

        return hook_for_connection(self.midjourney_conn_id)

    def execute(self, context: Context) -> Any:
        from airflow_provider_midjourney.failover import follow_job

        follow_job(self)  # job_id=submit.output: watch the job on the connection that runs it
        if not self.deferrable:
            return super().execute(context)
        if (done := self.poke(context)) and isinstance(done, PokeReturnValue):
            return done.xcom_value
        from airflow_provider_midjourney.triggers.midjourney import MidjourneyJobTrigger

        self.defer(
            trigger=MidjourneyJobTrigger(
                job_id=self.job_id,
                midjourney_conn_id=self.midjourney_conn_id,
                poll_interval=self.poll_interval,
                deadline=time.time() + self.timeout,
                max_consecutive_errors=self.max_consecutive_errors,
                cancel_on_kill=False,  # the sensor watches a job it does not own
                transient_error_timeout=self.transient_error_timeout,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) + timedelta(minutes=2),
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        # job_id is templated: checked here, at execute, before any HTTP call.
        from airflow_provider_midjourney.triggers.midjourney import TRANSIENT_ERRORS

        job_id = self.hook.check_job_id(self.job_id, "job_id")
        try:
            job = self.hook.fetch_job(job_id)
        except TRANSIENT_ERRORS as exc:
            # A 5xx, no answer or a malformed answer: poke again, as the trigger would, until
            # transient_error_timeout of errors in a row (402/410... are permanent and raise).
            now = time.monotonic()
            self._first_error_at = getattr(self, "_first_error_at", None) or now
            if now - self._first_error_at >= self.transient_error_timeout:
                raise
            self.log.warning("Polling %s failed: %s", job_id, exc)
            return False
        self._first_error_at = None
        self.log.info(
            "Job %s: %s%s", job.job_id, job.status, f" {job.progress_percent}%" if job.progress_percent else ""
        )
        if not job.is_terminal:
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._result(job.to_event()))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        from airflow_provider_midjourney.failover import follow_job

        follow_job(self)  # a resumed sensor is a fresh instance: the job's connection, again
        return self._result(event)

    def _result(self, event: Any) -> dict[str, Any]:
        from airflow_provider_midjourney.triggers.midjourney import result_from_event

        try:
            result = {**result_from_event(event), "conn_id": self.midjourney_conn_id}
            self.midjourney_result: dict[str, Any] | None = result
            return result
        except MidjourneyJobError as exc:
            # Handled here, not only by BaseSensorOperator, because the first poke and the
            # deferred resume run outside its poke loop.
            if self.soft_fail or getattr(self, "never_fail", False):
                raise AirflowSkipException(f"Skipped (soft_fail): {exc}") from exc
            if isinstance(exc, MidjourneyJobTimeoutError):
                raise AirflowSensorTimeout(str(exc)) from exc
            # The watched job is over: trying again cannot change it.
            raise AirflowFailException(str(exc)) from exc
