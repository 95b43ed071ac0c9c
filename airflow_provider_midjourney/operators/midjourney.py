"""Operators: submit a Midjourney job, remember its id, then wait in the triggerer (or the worker).

The job id is persisted *before* any waiting (XCom ``job_id`` and, on Airflow >= 3.3, the task
state store), so a retry of the same task instance reattaches to the job instead of creating a
second one. See README, "Retries never duplicate a job", for the guarantee and its limits.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_midjourney.exceptions import (
    MidjourneyAPIError,
    MidjourneyExpiredError,
    MidjourneyJobModeratedError,
    MidjourneyNotFoundError,
)
from airflow_provider_midjourney.hooks.base import Capability, MidjourneyBackendHook, hook_for_connection
from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.links import MidjourneyImageLink
from airflow_provider_midjourney.models import (
    BlendDimensions,
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    ImageSource,
    ImagineRequest,
    JobOptions,
    JobStatus,
    ReplyLevel,
    SeedRequest,
    SettingsCommand,
    SettingsRequest,
)
from airflow_provider_midjourney.retry import NO_RETRY, RetryPolicy
from airflow_provider_midjourney.triggers.midjourney import MidjourneyJobTrigger, result_from_event

if TYPE_CHECKING:
    from airflow.sdk import Context

STATE_KEY = "midjourney_job_id"
DEFAULT_TIMEOUT = timedelta(minutes=30)
# The trigger's own deadline fires first, so the operator can cancel the job; Airflow's defer
# timeout is only the backstop.
DEFER_GRACE = timedelta(minutes=2)


def task_reply_ref(context: Context) -> str:
    """A replyRef that is stable across the tries of one task instance, and unique to it."""
    ti = context["ti"]
    key = f"airflow:{ti.dag_id}/{ti.run_id}/{ti.task_id}/{getattr(ti, 'map_index', -1)}"
    if len(key) > 1024:
        key = "airflow:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class MidjourneyBaseOperator(BaseOperator):
    """Shared flow of every Midjourney operator: validate → submit (or reattach) → wait → result.

    :param midjourney_conn_id: the Airflow connection; its type picks the backend (``midjourney`` for
        useapi.net v3, ``imaginepro``, ``midjourney_useapi_v2``, ``midjourney_proxy``).
    :param channel: Discord channel id; default: the connection's ``channel`` extra, else the API
        balances across configured channels.
    :param reply_url: webhook the API posts job events to.
    :param reply_ref: reference stored with the job. Default: a key of this task instance, which
        lets a retry find a job whose creation answer was lost.
    :param reply_level: ``all``, ``standard`` or ``minimal`` webhook events.
    :param wait_for_completion: wait for a terminal status; False returns the job id at once.
    :param deferrable: wait in the triggerer (no worker slot held) instead of polling in the worker.
    :param poll_interval: seconds between status polls.
    :param timeout: total wait for the job (seconds or timedelta); on expiry the job is cancelled.
    :param cancel_on_kill: cancel the job when the task is killed.
    :param max_consecutive_errors: transient polling errors tolerated in a row.
    :param retry: the hook's HTTP retry policy (429 waits, backoff); default: the documented advice.
    """

    template_fields: Sequence[str] = ("channel", "reply_url", "reply_ref", "reply_level")
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
        deferrable: bool = True,
        poll_interval: float = 5.0,
        timeout: float | timedelta = DEFAULT_TIMEOUT,
        cancel_on_kill: bool = True,
        max_consecutive_errors: int = 5,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        if _seconds(timeout) <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.midjourney_conn_id = midjourney_conn_id
        self.channel = channel
        self.reply_url = reply_url
        self.reply_ref = reply_ref
        self.reply_level = reply_level
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = _seconds(timeout)
        self.cancel_on_kill = cancel_on_kill
        self.max_consecutive_errors = max_consecutive_errors
        self.retry = retry
        self.submitted_job_id: str | None = None
        self.midjourney_result: dict[str, Any] | None = None

    @cached_property
    def hook(self) -> MidjourneyBackendHook:
        """The hook of the connection's backend (chosen by its connection type)."""
        return hook_for_connection(self.midjourney_conn_id, retry=self.retry)

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

    def execute(self, context: Context) -> dict[str, Any]:
        reply_ref = self.reply_ref or task_reply_ref(context)
        # Validated, and checked against what the backend can do, before any HTTP call.
        request = self.hook.check_request(self.build_request(self._options(reply_ref)))
        job = self._reattach(context, reply_ref, ours=self.reply_ref is None)
        if job is None:
            job = self.hook.submit_job(request)
        self.submitted_job_id = job.job_id
        self._remember(context, job.job_id)
        if job.is_terminal:
            return self._finish(job.to_event())
        if not self.wait_for_completion:
            return {"job_id": job.job_id, "status": str(job.status), "backend": job.backend}
        trigger = MidjourneyJobTrigger(
            job_id=job.job_id,
            midjourney_conn_id=self.midjourney_conn_id,
            poll_interval=self.poll_interval,
            deadline=time.time() + self.timeout,
            max_consecutive_errors=self.max_consecutive_errors,
            cancel_on_kill=self.cancel_on_kill,
            try_number=getattr(context["ti"], "try_number", None),
        )
        if self.deferrable:
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout) + DEFER_GRACE,
            )
        return self._finish(self._wait_in_worker(trigger))

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
        return self._finish(event)

    def _wait_in_worker(self, trigger: MidjourneyJobTrigger) -> dict[str, Any]:
        """``deferrable=False``: the trigger's own polling loop, run in the worker."""
        hook = hook_for_connection(self.midjourney_conn_id, retry=NO_RETRY)  # the loop paces its own retries
        hook.connection_settings  # noqa: B018 - resolve the connection synchronously, outside the loop

        async def wait() -> dict[str, Any]:
            async with hook:
                return await trigger.wait(hook)

        return asyncio.run(wait())

    def _finish(self, event: Any) -> dict[str, Any]:
        if isinstance(event, dict) and event.get("status") == "timeout" and self.submitted_job_id:
            self._cancel(self.submitted_job_id, why="it did not finish within the task's timeout")
        self.midjourney_result = result_from_event(event)
        return self.midjourney_result

    def _cancel(self, job_id: str, why: str) -> None:
        if Capability.CANCEL not in self.hook.supported_capabilities():
            self.log.warning("Job %s keeps running: the %s backend cannot cancel jobs", job_id, self.hook.backend)
            return
        try:
            job = self.hook.fetch_job(job_id)
            if job.is_terminal:
                return
            self.hook.cancel(job_id)
            self.log.info("Cancelled Midjourney job %s because %s", job_id, why)
        except MidjourneyAPIError as exc:
            self.log.warning("Could not cancel Midjourney job %s: %s", job_id, exc)

    def on_kill(self) -> None:
        """Worker-side kill (``deferrable=False``). While deferred, the trigger's ``on_kill`` acts."""
        if self.cancel_on_kill and self.submitted_job_id:
            self._cancel(self.submitted_job_id, why="the task was killed")

    # -- never duplicate a job ----------------------------------------------------------------

    def _remember(self, context: Context, job_id: str) -> None:
        store = context.get("task_state_store")  # type: ignore[call-overload]
        if store is not None:
            store.set(STATE_KEY, job_id)
        context["ti"].xcom_push(key="job_id", value=job_id)

    def _reattach(self, context: Context, reply_ref: str, *, ours: bool) -> MidjourneyJob | None:
        """The job an earlier try of this task instance created, if any."""
        store = context.get("task_state_store")  # type: ignore[call-overload]
        job_id = store.get(STATE_KEY) if store is not None else None
        if isinstance(job_id, str) and job_id:
            job = self._previous_job(job_id)
            if job is not None:
                return job
        if getattr(context["ti"], "try_number", 1) > 1 and ours:
            return self._find_by_reply_ref(reply_ref)
        return None

    def _previous_job(self, job_id: str) -> MidjourneyJob | None:
        try:
            job = self.hook.fetch_job(job_id)
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
            return None
        self.log.info("Reattaching to job %s from an earlier try (status %s)", job_id, job.status)
        return job

    def _find_by_reply_ref(self, reply_ref: str) -> MidjourneyJob | None:
        """Airflow < 3.3, or a lost creation answer: look among running jobs for our replyRef."""
        job = self.hook.find_job_by_reply_ref(reply_ref)
        if job is not None:
            self.log.info("Found running job %s of an earlier try by its replyRef", job.job_id)
        return job


class MidjourneyImagineOperator(MidjourneyBaseOperator):
    """``/imagine``: a grid of four images (or a video with ``--video``) from a prompt."""

    template_fields: Sequence[str] = ("prompt", *MidjourneyBaseOperator.template_fields)

    def __init__(self, *, prompt: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        return ImagineRequest.build(prompt=self.prompt, **options)


class MidjourneyButtonOperator(MidjourneyBaseOperator):
    """Press a button (U1-U4, V1-V4, zoom, pan, 🔄...) of a completed job.

    U1-U4 run once per parent: pressing one again returns the existing upscale, which is success.
    """

    template_fields: Sequence[str] = ("job_id", "button", "prompt", "mask", *MidjourneyBaseOperator.template_fields)

    def __init__(
        self,
        *,
        job_id: str,
        button: str,
        prompt: str | None = None,
        mask: str | None = None,
        allow_unknown_button: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.button = button
        self.prompt = prompt
        self.mask = mask
        self.allow_unknown_button = allow_unknown_button

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        options.pop("channel")  # a button job always runs in its parent's channel
        return ButtonRequest.build(
            job_id=self.job_id,
            button=self.button,
            prompt=self.prompt,
            mask=self.mask,
            allow_unknown_button=self.allow_unknown_button,
            **options,
        )


class MidjourneyBlendOperator(MidjourneyBaseOperator):
    """``/blend``: 2-5 images (URLs or local paths, uploaded as multipart)."""

    template_fields: Sequence[str] = ("images", "dimensions", *MidjourneyBaseOperator.template_fields)

    def __init__(self, *, images: Sequence[ImageSource], dimensions: BlendDimensions = "Square", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.images = images
        self.dimensions = dimensions

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        return BlendRequest.from_images(self.images, blend_dimensions=self.dimensions, **options)


class MidjourneyDescribeOperator(MidjourneyBaseOperator):
    """``/describe``: four prompt suggestions for an image (URL or local path)."""

    template_fields: Sequence[str] = ("image", *MidjourneyBaseOperator.template_fields)

    def __init__(self, *, image: ImageSource, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image = image

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        return DescribeRequest.from_image(self.image, **options)


class MidjourneySeedOperator(MidjourneyBaseOperator):
    """``/seed``: the seed of a completed image job (``result["seed"]``)."""

    template_fields: Sequence[str] = ("job_id", *MidjourneyBaseOperator.template_fields)

    def __init__(self, *, job_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        options.pop("channel")  # seed jobs run in the parent's channel
        return SeedRequest.build(job_id=self.job_id, **options)


class MidjourneySettingsOperator(MidjourneyBaseOperator):
    """The settings family: settings, info, fast, relax, turbo, remix, variability.

    ``result["settings"]`` holds what the command reports (all settings, or the speed modes, or
    the toggled mode).
    """

    template_fields: Sequence[str] = ("command", *MidjourneyBaseOperator.template_fields)

    def __init__(self, *, command: SettingsCommand = "settings", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.command = command

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        return SettingsRequest.build(command=self.command, **options)
