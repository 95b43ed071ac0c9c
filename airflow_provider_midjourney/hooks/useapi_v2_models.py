"""Wire shapes of the useapi.net Midjourney API v2 (and v1), and their normalisation.

The vendor's OpenAPI files (v1 and v2, archived from SwaggerHub) define every answer as a flat
JSON object: the job's own fields, Midjourney's Discord message (``content``, ``attachments``,
``embeds``) and the API's ``error``/``errorDetails``/``code``. The models keep unknown fields
(``extra="allow"``) and accept any status or verb string, so a vendor change never breaks a
pipeline: a status the contract does not name is carried as it came and is never terminal.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from airflow_provider_midjourney.cost import fast_hours_of_info
from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.text_patterns import (
    bounded,
    keycap_items,
    labelled_number,
    labelled_word,
    leading_bold,
)
from airflow_provider_midjourney.vocabulary import JobStatus
from airflow_provider_midjourney.wire import OpenModel

#: v2 ``status`` → the normalised status. ``cancelled`` is a failure (a job cancelled by user).
STATUS_MAP: dict[str, JobStatus] = {
    "created": JobStatus.CREATED,
    "started": JobStatus.STARTED,
    "progress": JobStatus.PROGRESS,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.FAILED,
    "moderated": JobStatus.MODERATED,
}
#: Buttons whose job ends with one picture (not a grid): its ``attachments[0]`` is that picture.
SINGLE_IMAGE_BUTTONS = frozenset(
    {"U1", "U2", "U3", "U4"}
    | {f"{redo}Upscale ({kind})" for redo in ("", "Redo ") for kind in ("2x", "4x", "Subtle", "Creative")}
)
SETTINGS_VERBS = ("info", "fast", "relax", "turbo", "variability")

_PROGRESS = re.compile(r"\((\d{1,3})%\)")


_Open = OpenModel


class V2Attachment(_Open):
    url: str
    proxy_url: str | None = None
    filename: str | None = None
    width: int | None = None
    height: int | None = None
    size: int | None = None
    content_type: str | None = None
    id: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class V2Embed(_Open):
    type: str | None = None
    title: str | None = None
    description: str | None = None


class V2Child(_Open):
    button: str | None = None
    jobid: str | None = None
    messageId: str | None = None


class V2Seed(_Open):
    """``seed`` of a ``seed_async`` result: Midjourney's message and the number."""

    content: str | None = None
    value: int | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return value


class V2Job(_Open):
    """Any job answer: a submit answer (imagine/button/blend/describe...), ``GET /jobs/?jobid=``
    (``jobResponse``), a settings command (``completedResponse``) or a 422 moderated answer."""

    jobid: str
    parentJobId: str | None = None
    verb: str | None = None
    status: str | None = None
    created: str | None = None
    updated: str | None = None
    prompt: str | None = None
    blendUrls: list[str] | None = None
    blendDimensions: str | None = None
    describeUrl: str | None = None
    button: str | None = None
    children: list[V2Child] = Field(default_factory=list)
    buttons: list[str] = Field(default_factory=list)
    channel: str | None = None
    server: str | None = None
    maxJobs: int | None = None
    replyRef: str | None = None
    replyUrl: str | None = None
    messageId: str | None = None
    content: str | None = None
    timestamp: str | None = None
    attachments: list[V2Attachment] = Field(default_factory=list)
    embeds: list[V2Embed] = Field(default_factory=list)
    seed: V2Seed | None = None
    error: str | None = None
    errorDetails: str | None = None
    code: int | None = None
    executingJobs: list[str] | None = None

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_shape(cls, value: Any) -> Any:
        if isinstance(value, int | str) and not isinstance(value, bool):
            return {"value": value}
        return value

    @field_validator("channel", "server", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    def normalised(self, backend: str, *, http_status: int | None = None) -> MidjourneyJob:
        """This answer as the one job shape every backend produces."""
        status = _status(self.status, http_status)
        verb = _verb(self.verb)
        urls = [a.url for a in self.attachments]
        if verb == "seed":
            images, grid = [u for u, a in zip(urls, self.attachments, strict=True) if _is_image(a)], None
        elif verb == "button" and self.button in SINGLE_IMAGE_BUTTONS:
            images, grid = urls[:1], (urls[0] if urls else None)
        else:
            images, grid = [], (urls[0] if urls else None)
        error = self.error
        if self.status == "cancelled" and not error:
            error = "Job cancelled"
        return MidjourneyJob(
            job_id=self.jobid,
            backend=backend,
            status=status,
            verb=verb,
            prompt=self.prompt or (None if verb in SETTINGS_VERBS else self._echoed_prompt()),
            image_urls=images if status == JobStatus.COMPLETED else [],
            grid_url=grid if status == JobStatus.COMPLETED else None,
            buttons=list(self.buttons),
            children={c.button: c.jobid for c in self.children if c.button and c.jobid},
            seed=self._seed_value(),
            prompts=self._prompts() if verb == "describe" else [],
            settings=self._settings(verb) if verb in SETTINGS_VERBS else {},
            progress_percent=self._progress(status),
            error=error,
            error_details=self.errorDetails,
            code=self.code,
            reply_ref=self.replyRef,
            cost=fast_hours_of_info(self.content) if verb == "info" else None,
        )

    def _echoed_prompt(self) -> str | None:
        bold = leading_bold(self.content)
        return bold.strip() if bold else None

    def _progress(self, status: JobStatus) -> int | None:
        if status == JobStatus.COMPLETED:
            return 100
        match = _PROGRESS.search(bounded(self.content)) if status == JobStatus.PROGRESS else None
        return min(100, int(match.group(1))) if match else None

    def _seed_value(self) -> int | None:
        if self.seed is not None and self.seed.value is not None:
            return self.seed.value
        for text in (self.seed.content if self.seed else None, self.content):
            seed = labelled_number(text, "seed")
            if seed is not None:
                return seed
        return None

    def _prompts(self) -> list[str]:
        for text in [e.description for e in self.embeds] + [self.content]:
            found = keycap_items(text)
            if found:
                return found
        return []

    def _settings(self, verb: str) -> dict[str, Any]:
        """v2 has no structured settings: read them from Midjourney's own message text."""
        text = " ".join([self.content or "", *(e.description or "" for e in self.embeds)])
        if verb in ("fast", "relax", "turbo"):
            return {mode: mode == verb for mode in ("relax", "fast", "turbo")}
        if verb == "variability":
            lowered = text.lower()
            if "strong variability" in lowered:
                return {"variability": True}
            return {"variability": False} if "subtle variability" in lowered else {}
        word = labelled_word(text, "Job Mode", ("Fast", "Relaxed", "Relax", "Turbo"))
        if word is None:
            return {}
        mode = {"fast": "fast", "turbo": "turbo"}.get(word.lower(), "relax")
        return {m: m == mode for m in ("relax", "fast", "turbo")}


def _status(value: str | None, http_status: int | None) -> JobStatus:
    if http_status == 422:
        return JobStatus.MODERATED  # "Moderated or invalid prompt": never resubmitted
    if value is None:
        return JobStatus("unknown")
    return STATUS_MAP.get(value, JobStatus(value))


def _verb(value: str | None) -> str:
    if value in ("seed", "seed_async"):
        return "seed"
    return value or "unknown"


def _is_image(attachment: V2Attachment) -> bool:
    kind = (attachment.content_type or "").lower()
    return not kind or kind.startswith("image/")
