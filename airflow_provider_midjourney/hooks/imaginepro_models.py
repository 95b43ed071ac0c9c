"""ImaginePro's wire shapes, parsed leniently, and their translation into a :class:`MidjourneyJob`.

ImaginePro's own documents disagree with each other (its SDK types ``progress`` as a number, the
nova pages as a string; the nova schema table spells ``originalMessageId``, every example
``originatingMessageId``; the SDK types the submit answer's ``success`` as a status string, the
pages as a boolean), so every field here accepts each spelling and type seen, keeps unknown fields
(``extra="allow"``) and never turns a status it does not know into a terminal one.

ImaginePro has no "moderated" state: a moderated prompt is a ``FAIL`` with an error text. Such a
text is recognised by a list of regular expressions (``DEFAULT_MODERATION_PATTERNS`` of
:mod:`~airflow_provider_midjourney.text_patterns`, or the connection's ``moderation_patterns``
extra); a ``FAIL`` that matches none stays ``failed``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.text_patterns import describe_prompts, is_moderation, percent
from airflow_provider_midjourney.vocabulary import JobStatus
from airflow_provider_midjourney.wire import OpenModel

RUNNING_STATES = {"QUEUED": JobStatus.CREATED, "PENDING": JobStatus.CREATED, "PROCESSING": JobStatus.PROGRESS}
UPSCALE_BUTTONS = frozenset({"U1", "U2", "U3", "U4"})


_Open = OpenModel


class SubmitAnswer(_Open):
    """What every job-creating POST answers: ``{"success": true, "messageId", "createdAt"}``."""

    success: bool | str | None = None
    message_id: str | None = Field(None, alias="messageId")
    created_at: str | None = Field(None, alias="createdAt")
    error: str | None = None

    @property
    def refused(self) -> bool:
        """``success: false`` (the pages) or ``"FAIL"`` (the SDK's typing), or no id at all."""
        flag = self.success
        if flag is False or (isinstance(flag, str) and flag.strip().upper() in ("FAIL", "FALSE", "FAILED")):
            return True
        return not self.message_id


class Message(_Open):
    """``GET /api/v1/message/fetch/{messageId}`` (legacy: ``/api/v1/midjourney/message/{messageId}``)."""

    message_id: str | None = Field(None, alias="messageId")
    prompt: str | None = None
    original_url: str | None = Field(None, alias="originalUrl")
    uri: str | None = None
    progress: int | None = None
    status: str | None = None
    created_at: str | None = Field(None, alias="createdAt")
    updated_at: str | None = Field(None, alias="updatedAt")
    buttons: list[str] = Field(default_factory=list)
    originating_message_id: str | None = Field(None, alias="originatingMessageId")
    original_message_id: str | None = Field(None, alias="originalMessageId")
    ref: str | None = None
    error: str | None = None
    images: list[str] = Field(default_factory=list)

    @field_validator("progress", mode="before")
    @classmethod
    def _progress(cls, value: Any) -> int | None:
        return percent(value)

    @field_validator("buttons", "images", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> list[str]:
        if not isinstance(value, list):
            return []
        return [str(item) for item in value if isinstance(item, str | int) and str(item)]

    @field_validator("ref", "error", "uri", "prompt", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str | None:
        return None if value is None or value == "" else str(value)

    @property
    def parent_id(self) -> str | None:
        """The message a button was pressed on (either spelling), when it is another message."""
        parent = self.originating_message_id or self.original_message_id
        return parent if parent and parent != self.message_id else None

    @property
    def raw_status(self) -> str:
        return (self.status or "").strip().upper()

    def describe_prompts(self) -> list[str]:
        """The four /describe suggestions, where ImaginePro puts them (not documented: see module doc)."""
        extra = self.model_extra or {}
        listed = extra.get("prompts")
        if isinstance(listed, list) and listed and all(isinstance(p, str) for p in listed):
            return [p.strip() for p in listed]
        for key in ("content", "description", "text"):
            found = describe_prompts(extra.get(key))
            if found:
                return found
        return describe_prompts(self.prompt)

    def normalised(self, backend: str, patterns: Sequence[re.Pattern[str]], job_id: str | None = None) -> MidjourneyJob:
        """The message as the one job shape (see :class:`~airflow_provider_midjourney.job.MidjourneyJob`)."""
        prompts = self.describe_prompts()
        verb = self.verb(prompts)
        status = self.status_for(patterns)
        image_urls: list[str] = []
        grid_url: str | None = None
        if status == JobStatus.COMPLETED and self.uri:
            if self.images:  # separate pictures, where the API gives them (not documented)
                image_urls, grid_url = list(self.images), self.uri
            elif self.is_grid(verb):
                grid_url = self.uri
            else:  # an upscale: one picture, which is also what the grid URL shows
                image_urls, grid_url = [self.uri], self.uri
        progress = 100 if status == JobStatus.COMPLETED else self.progress
        return MidjourneyJob(
            job_id=self.message_id or job_id or "",
            backend=backend,
            status=status,
            verb=verb,
            prompt=None if verb == "describe" and prompts else self.prompt,
            image_urls=image_urls,
            grid_url=grid_url,
            buttons=list(self.buttons),
            prompts=prompts,
            progress_percent=progress,
            error=self.error,
            reply_ref=self.ref,
        )

    def status_for(self, patterns: Sequence[re.Pattern[str]]) -> JobStatus:
        raw = self.raw_status
        if raw == "DONE":
            return JobStatus.COMPLETED
        if raw == "FAIL":
            return JobStatus.MODERATED if is_moderation(self.error, patterns) else JobStatus.FAILED
        if raw == "PROCESSING" and not self.progress:
            return JobStatus.STARTED
        if raw in RUNNING_STATES:
            return RUNNING_STATES[raw]
        return JobStatus(self.status or "unknown")  # undocumented: kept as it came, never terminal

    def verb(self, prompts: list[str]) -> str:
        kind = (self.model_extra or {}).get("type")
        if isinstance(kind, str) and kind.strip():
            return kind.strip().lower()
        if prompts and not self.uri:
            return "describe"
        return "button" if self.parent_id else "imagine"

    def is_grid(self, verb: str) -> bool:
        """A 2x2 grid offers U1-U4; an upscaled picture does not. Without buttons: by the verb."""
        if self.buttons:
            return any(b in UPSCALE_BUTTONS for b in self.buttons)
        return verb in ("imagine", "blend")


class VideoResult(_Open):
    url: str | None = None
    index: int | None = None


class VideoMessage(Message):
    """``GET /api/v1/video/mj/fetch/{messageId}``: a message plus ``videoUrl`` and ``results[{url, index}]``."""

    video_url: str | None = Field(None, alias="videoUrl")
    results: list[VideoResult] = Field(default_factory=list)

    @field_validator("results", mode="before")
    @classmethod
    def _results(cls, value: Any) -> list[Any]:
        return [item for item in value[:16] if isinstance(item, dict)] if isinstance(value, list) else []

    def clip_urls(self) -> list[str]:
        """The clips in ``index`` order (0-based at ImaginePro), else the one ``videoUrl``."""
        ordered = sorted(self.results, key=lambda r: r.index if isinstance(r.index, int) else 99)
        urls = [r.url for r in ordered if r.url and r.url.startswith(("http://", "https://"))]
        if not urls and self.video_url and self.video_url.startswith(("http://", "https://")):
            urls = [self.video_url]
        return urls

    def normalised_video(self, backend: str, patterns: Sequence[re.Pattern[str]], job_id: str) -> MidjourneyJob:
        status = self.status_for(patterns)
        done = status == JobStatus.COMPLETED
        return MidjourneyJob(
            job_id=job_id,
            backend=backend,
            status=status,
            verb="video",
            prompt=self.prompt,
            video_urls=self.clip_urls() if done else [],
            progress_percent=100 if done else self.progress,
            error=self.error,
            reply_ref=self.ref,
        )


class HistoryEntry(_Open):
    """One entry of ``GET /api/v1/nova/images``: ``id`` is the messageId."""

    id: str | None = None
    type: str | None = None
    button: str | None = None
    prompt: str | None = None
    uri: str | None = None
    created_at: str | None = Field(None, alias="createdAt")


class History(_Open):
    images: list[HistoryEntry] = Field(default_factory=list)
