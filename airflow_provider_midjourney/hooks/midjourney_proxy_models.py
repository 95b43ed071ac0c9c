"""midjourney-proxy's wire format (novicezk's original and trueai-org's superset), and its normalisation.

Both servers answer a submit with a ``SubmitResultVO`` (``code``, ``description``, ``result``,
``properties``) and describe a task with the same core fields (``id``, ``action``, ``status``,
``progress`` as ``"37%"``, ``imageUrl``, ``failReason``, ``state``, ``properties.finalPrompt``);
the superset adds ``buttons[]`` (with the ``customId`` that ``/submit/action`` takes),
``imageUrls[]`` and ``seed``. The models keep unknown fields and accept unknown statuses and
actions, so a server that adds some never breaks a running pipeline; an unknown status is never
terminal.

Moderation: a task the server refused ends as ``FAILURE`` with a reason in English or Chinese;
:func:`is_moderated` classifies it by :data:`DEFAULT_MODERATION_PATTERNS` (or the connection's
``moderation_patterns`` extra).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.text_patterns import (
    bounded,
    compile_moderation_patterns,
    keycap_items,
    matches_any,
    percent,
)
from airflow_provider_midjourney.vocabulary import JobStatus
from airflow_provider_midjourney.wire import OpenModel

# Submit return codes (ReturnCode.java / ReturnCode.cs): the same on both servers.
CODE_SUCCESS = 1
CODE_NOT_FOUND = 3
CODE_VALIDATION = 4
CODE_FAILURE = 9
CODE_EXISTS = 21
CODE_IN_QUEUE = 22
CODE_QUEUE_FULL = 23
CODE_BANNED = 24
CREATED_CODES = frozenset({CODE_SUCCESS, CODE_EXISTS, CODE_IN_QUEUE})
CODE_MEANING = {
    CODE_SUCCESS: "success",
    CODE_NOT_FOUND: "not found",
    CODE_VALIDATION: "validation error",
    CODE_FAILURE: "failure",
    CODE_EXISTS: "task already exists",
    CODE_IN_QUEUE: "queued",
    CODE_QUEUE_FULL: "queue full",
    CODE_BANNED: "banned prompt",
}

# TaskStatus.java (NOT_START, SUBMITTED, IN_PROGRESS, FAILURE, SUCCESS) + TaskInfo.cs (MODAL, CANCEL).
STATUS_MAP: dict[str, JobStatus] = {
    "NOT_START": JobStatus.CREATED,
    "SUBMITTED": JobStatus.STARTED,
    "MODAL": JobStatus.STARTED,  # waiting for a remix/custom-zoom form: still running
    "IN_PROGRESS": JobStatus.PROGRESS,
    "SUCCESS": JobStatus.COMPLETED,
    "FAILURE": JobStatus.FAILED,
    "CANCEL": JobStatus.FAILED,
}

# Regular expressions (case-insensitive, searched anywhere in ``failReason``) that mark a FAILURE
# as a refused prompt. Midjourney's own English wording, and the Chinese the proxies use.
DEFAULT_MODERATION_PATTERNS: tuple[str, ...] = (
    r"banned prompt",  # Midjourney: "Banned prompt detected"
    r"image denied",  # Midjourney: an image prompt refused
    r"sensitive",  # "may contain sensitive words"
    r"moderat",  # "moderation", "moderated"
    r"community guidelines",  # "... violates our community guidelines"
    r"try a different prompt",  # "Sorry! Please try a different prompt"
    r"prompt (?:was |is )?(?:blocked|rejected|refused)",
    r"敏感",  # 敏感词 = sensitive words ("可能包含敏感词": may contain sensitive words)
    r"违规",  # violation
    r"违禁",  # prohibited content
    r"审核",  # review ("未通过审核": did not pass review)
)

VERB_BY_ACTION = {"IMAGINE": "imagine", "DESCRIBE": "describe", "BLEND": "blend", "SHORTEN": "shorten"}
SINGLE_IMAGE_ACTIONS = frozenset({"UPSCALE", "UPSCALE_HD"})
CHANGE_ACTIONS = {"U": "UPSCALE", "V": "VARIATION"}
REROLL_LABEL = "🔄"

_Open = OpenModel


class SubmitResult(_Open):
    """``SubmitResultVO``: ``result`` is the task id (or, from ``image-seed``, the seed)."""

    code: int
    description: str | None = None
    result: Any = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @property
    def text(self) -> str:
        meaning = CODE_MEANING.get(self.code, "unknown code")
        details = [f"return code {self.code} ({meaning})", self.description or ""]
        for key in ("bannedWord", "numberOfQueues"):
            if key in self.properties:
                details.append(f"{key}={self.properties[key]}")
        return ": ".join(d for d in details if d)


class TaskButton(_Open):
    """One of ``buttons[]`` (superset): ``label`` ("U1") or, for arrows and 🔄, only ``emoji``."""

    customId: str | None = None
    label: str | None = None
    emoji: str | None = None

    @property
    def name(self) -> str:
        return (self.label or "").strip() or (self.emoji or "").strip()


class TaskImageUrl(_Open):
    url: str
    thumbnail: str | None = None


class Task(_Open):
    """A task as ``GET /task/{id}/fetch`` and ``/task/list*`` return it."""

    id: str
    action: str | None = None
    status: str | None = None
    prompt: str | None = None
    promptEn: str | None = None
    description: str | None = None
    state: str | None = None
    submitTime: int | None = None
    startTime: int | None = None
    finishTime: int | None = None
    imageUrl: str | None = None
    imageUrls: list[TaskImageUrl] | None = None
    progress: str | None = None
    failReason: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    buttons: list[TaskButton] | None = None
    seed: str | None = None
    videoUrl: str | None = None
    videoUrls: list[TaskImageUrl] | None = None

    @field_validator("id", "seed", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("progress", mode="before")
    @classmethod
    def _progress_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @property
    def button_names(self) -> list[str]:
        return [b.name for b in self.buttons or [] if b.name]

    def custom_id_for(self, label: str) -> str | None:
        """The ``customId`` of the button called ``label`` (None when the task has no such button)."""
        return next((b.customId for b in self.buttons or [] if b.name == label and b.customId), None)

    @property
    def progress_percent(self) -> int | None:
        return percent(self.progress)

    @property
    def prompts(self) -> list[str]:
        return describe_prompts(str(self.properties.get("finalPrompt") or ""))

    def normalised(self, backend: str, moderation: Sequence[re.Pattern[str]]) -> MidjourneyJob:
        raw = (self.status or "").upper()
        status = STATUS_MAP.get(raw) or JobStatus(raw.lower() or "unknown")
        if status == JobStatus.FAILED and raw == "FAILURE" and is_moderated(self.failReason, moderation):
            status = JobStatus.MODERATED
        action = (self.action or "").upper()
        verb = VERB_BY_ACTION.get(action, "button" if action else "unknown")
        clips = [u.url for u in self.videoUrls or [] if u.url] or ([self.videoUrl] if self.videoUrl else [])
        if action == "VIDEO" or clips:  # the superset mirrors the clips into imageUrls: they are no pictures
            verb, images = "video", []
        elif self.imageUrls:
            images = [u.url for u in self.imageUrls if u.url]
        elif action in SINGLE_IMAGE_ACTIONS and self.imageUrl and status == JobStatus.COMPLETED:
            images = [self.imageUrl]  # an upscale is one picture
        else:
            images = []
        error = self.failReason or ("Task cancelled" if raw == "CANCEL" else None)
        return MidjourneyJob(
            job_id=self.id,
            backend=backend,
            status=status,
            verb=verb,
            prompt=None if verb == "describe" else (self.promptEn or self.prompt),
            image_urls=images,
            video_urls=clips if status == JobStatus.COMPLETED else [],
            grid_url=None if verb == "video" else self.imageUrl or None,
            buttons=self.button_names,
            seed=int(self.seed) if self.seed and self.seed.isdigit() else None,
            prompts=self.prompts if verb == "describe" and status == JobStatus.COMPLETED else [],
            progress_percent=self.progress_percent,
            error=error if status in (JobStatus.FAILED, JobStatus.MODERATED) else None,
            error_details=self.description if status in (JobStatus.FAILED, JobStatus.MODERATED) else None,
            reply_ref=self.state,
        )


def describe_prompts(text: str) -> list[str]:
    """The prompts of ``properties.finalPrompt``: "1️⃣ a … 2️⃣ b …" (original) or one per line."""
    found = keycap_items(text)
    if found:
        return [p for p in found if p]
    return [line.strip() for line in bounded(text).splitlines() if line.strip()]


def compile_patterns(patterns: Any, field: str = "moderation_patterns") -> tuple[re.Pattern[str], ...]:
    """Moderation patterns checked and compiled by the shared :func:`.text_patterns.compile_moderation_patterns`."""
    return compile_moderation_patterns(patterns, field, DEFAULT_MODERATION_PATTERNS)


def is_moderated(reason: str | None, patterns: Sequence[re.Pattern[str]]) -> bool:
    return matches_any(patterns, reason)


def parse_tasks(data: Any) -> list[Task]:
    """A list answer (``/task/list``, ``/task/list-by-condition``); entries that are no task are skipped."""
    if not isinstance(data, list):
        raise ValueError(f"expected a JSON list of tasks, got {type(data).__name__}")
    tasks = []
    for item in data:
        if isinstance(item, dict) and item.get("id") is not None:
            tasks.append(Task.model_validate(item))
    return tasks
