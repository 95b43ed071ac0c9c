"""Legnext's and Youchuan's wire shapes, parsed leniently, and their translation into a :class:`MidjourneyJob`.

Legnext answers every POST and ``GET /api/v1/job/{job_id}`` with one Job object (``job_id``,
``task_type``, ``status`` pending|staged|processing|completed|failed, ``output{image_url,
image_urls[4], seed, available_actions, video_urls}``, ``meta``, ``error{code, message}``).
Youchuan's job (the API Legnext appears to resell) is documented only as ``id, text, urls[],
status (an integer), comment, seed``; its integer status enum is not published, so only ``2``
(the callback sample's finished job, with four ``urls``) is read as completed, ``3``/``4`` as failed
(a guess, see ``docs/backends/legnext.md``), and anything else stays running, never terminal.

Indexes are 0-based on the wire (``imageNo``, ``videoNo``, ``available_actions`` lists); the
normalised job names its buttons as ours (U1-U4, V1-V4).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.models import JobStatus, OpenModel
from airflow_provider_midjourney.text_patterns import describe_prompts

# 403 at submit means one of two things, told apart by the message (CONTRACT: "classify by
# error.message"): a feature reserved to whitelisted accounts, or moderated content.
WHITELIST = re.compile(r"whitelist|upgrade your plan", re.IGNORECASE)
MODERATION = re.compile(
    r"sensitive|moderat|banned|not allowed|prohibited|violat|\bnsfw\b|community guidelines|inappropriate|敏感|违规",
    re.IGNORECASE,
)
RUNNING = {"pending": JobStatus.CREATED, "staged": JobStatus.CREATED, "processing": JobStatus.PROGRESS}
# Youchuan's integer statuses: 2 = finished (callback sample); the rest is NOT VERIFIED.
YOUCHUAN_STATUS = {0: JobStatus.CREATED, 1: JobStatus.PROGRESS, 2: JobStatus.COMPLETED, 3: JobStatus.FAILED}
YOUCHUAN_FAILED = frozenset({3, 4})
GRID_TASKS = frozenset({"diffusion", "variation", "reroll", "pan", "outpaint", "inpaint", "remix", "blend"})
UPSCALE_TASKS = frozenset({"upscale", "enhance"})
VIDEO_TASKS = {"video_diffusion": "video", "extend_video": "video_extend", "video_upscale": "video"}
BUTTON_TASKS = frozenset({"upscale", "variation", "reroll", "pan", "outpaint", "inpaint", "remix", "enhance"})
ZERO_TIME = "0001-01-01"  # Go's zero time: "unset", not a date
MAX_URLS = 16


def normal_task(task_type: Any) -> str:
    """``extend-video`` and ``extend_video`` (the spec and a sample disagree) compare equal."""
    return str(task_type or "").strip().lower().replace("-", "_")


def is_moderation(message: str | None) -> bool:
    return bool(message) and MODERATION.search(message or "") is not None


def is_whitelist(message: str | None) -> bool:
    return bool(message) and WHITELIST.search(message or "") is not None


def _urls(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [u.strip() for u in value[:MAX_URLS] if isinstance(u, str) and u.strip()]


class LegnextError(OpenModel):
    code: int | None = None
    message: str | None = None
    raw_message: str | None = None

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @field_validator("message", "raw_message", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str | None:
        return str(value)[:1000] if isinstance(value, str | int) and str(value).strip() else None

    @property
    def text(self) -> str | None:
        parts = [p for p in (self.message, self.raw_message) if p]
        return "; ".join(dict.fromkeys(parts)) or None


class LegnextOutput(OpenModel):
    image_url: str | None = None
    image_urls: list[str] = Field(default_factory=list)
    video_urls: list[str] = Field(default_factory=list)
    seed: str | None = None
    available_actions: dict[str, Any] = Field(default_factory=dict)

    @field_validator("image_urls", "video_urls", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> list[str]:
        return _urls(value)

    @field_validator("image_url", "seed", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None
        return str(value).strip() or None

    @field_validator("available_actions", mode="before")
    @classmethod
    def _actions(cls, value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    def allowed(self, action: str) -> list[int] | None:
        """The ``imageNo`` values ``action`` accepts on this job; None where the job does not say."""
        value = self.available_actions.get(action)
        if isinstance(value, bool):
            return [0] if value else []
        if not isinstance(value, list):
            return None
        return [n for n in value if isinstance(n, int) and not isinstance(n, bool)]

    def prompts(self) -> list[str]:
        """/describe's suggestions, where they are (NOT VERIFIED: a list under ``prompts``, or text)."""
        extra = self.model_extra or {}
        for key in ("prompts", "descriptions", "prompt_list"):
            value = extra.get(key)
            if isinstance(value, list):
                found = [str(p).strip() for p in value[:8] if isinstance(p, str) and p.strip()]
                if found:
                    return found
        for key in ("description", "prompt", "text", "content"):
            value = extra.get(key)
            if isinstance(value, str) and value.strip():
                return _numbered(value)
        return []


class LegnextJob(OpenModel):
    """The Job object of Legnext (every POST, ``GET /api/v1/job/{job_id}``, callbacks)."""

    job_id: str | None = None
    task_type: str | None = None
    status: str | None = None
    output: LegnextOutput | None = None
    error: LegnextError | None = None

    @field_validator("job_id", "task_type", "status", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str | None:
        return str(value).strip() or None if isinstance(value, str | int) and not isinstance(value, bool) else None

    @field_validator("output", "error", mode="before")
    @classmethod
    def _objects(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else None

    @property
    def error_text(self) -> str | None:
        return self.error.text if self.error else None

    def status_for(self) -> JobStatus:
        raw = (self.status or "").lower()
        if raw == "completed":
            return JobStatus.COMPLETED
        if raw == "failed":
            return JobStatus.MODERATED if is_moderation(self.error_text) else JobStatus.FAILED
        if raw in RUNNING:
            return RUNNING[raw]
        return JobStatus(raw or "unknown")  # undocumented: kept as it came, never terminal

    def normalised(self, backend: str, job_id: str | None = None) -> MidjourneyJob:
        status = self.status_for()
        task = normal_task(self.task_type)
        output = self.output or LegnextOutput()
        return media_job(
            job_id=self.job_id or job_id or "",
            backend=backend,
            status=status,
            task=task,
            image_url=output.image_url,
            image_urls=output.image_urls,
            video_urls=output.video_urls,
            buttons=buttons_from(output, task),
            prompts=output.prompts() if task == "describe" else [],
            error=self.error_text if status in (JobStatus.FAILED, JobStatus.MODERATED) else None,
            code=self.error.code if self.error and self.error.code else None,
        )


class YouchuanJob(OpenModel):
    """Youchuan's job: ``id, text, urls[], status (int), comment, seed`` (the rest is NOT VERIFIED)."""

    id: str | None = None
    text: str | None = None
    urls: list[str] = Field(default_factory=list)
    status: int | str | None = None
    comment: str | None = None
    seed: str | None = None
    task_type: str | None = Field(None, alias="type")

    @field_validator("urls", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> list[str]:
        return _urls(value)

    @field_validator("id", "seed", "comment", "text", "task_type", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str | None:
        return str(value).strip() or None if isinstance(value, str | int) and not isinstance(value, bool) else None

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> int | str | None:
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int):
            return value
        text = str(value).strip()
        return int(text) if text.isdigit() else text.lower() or None

    def status_for(self) -> JobStatus:
        if isinstance(self.status, str):  # a Legnext-style word, should Youchuan answer one
            return LegnextJob(status=self.status, error=LegnextError(message=self.comment)).status_for()
        if self.status in YOUCHUAN_FAILED:
            return JobStatus.MODERATED if is_moderation(self.comment) else JobStatus.FAILED
        if self.status in YOUCHUAN_STATUS:
            return YOUCHUAN_STATUS[self.status]
        return JobStatus(f"youchuan_{self.status}")  # not terminal

    def normalised(self, backend: str, job_id: str | None = None, task: str = "") -> MidjourneyJob:
        status = self.status_for()
        task = normal_task(self.task_type) or task
        if not task and len(self.urls) == 1:
            task = "upscale"  # only an upscale gives one picture (Youchuan does not name the job's type)
        is_video = task in VIDEO_TASKS or any(u.split("?")[0].endswith(".mp4") for u in self.urls)
        return media_job(
            job_id=self.id or job_id or "",
            backend=backend,
            status=status,
            task=task or ("video_diffusion" if is_video else "diffusion"),
            image_url=None,
            image_urls=[] if is_video else self.urls,
            video_urls=self.urls if is_video else [],
            buttons=[],
            prompts=[],
            error=self.comment if status in (JobStatus.FAILED, JobStatus.MODERATED) else None,
            code=None,
        )


def media_job(
    *,
    job_id: str,
    backend: str,
    status: JobStatus,
    task: str,
    image_url: str | None,
    image_urls: list[str],
    video_urls: list[str],
    buttons: list[str],
    prompts: list[str],
    error: str | None,
    code: int | None,
) -> MidjourneyJob:
    """One job shape from either API: which URLs are pictures, the grid, or videos, and what kind."""
    done = status == JobStatus.COMPLETED
    verb = verb_for(task)
    grid_url: str | None = None
    kind: str | None = None
    images: list[str] = []
    if done and task in VIDEO_TASKS:
        images = []
    elif done and len(image_urls) > 1:
        images, grid_url, kind = list(image_urls), image_url, "crops"
    elif done and (image_urls or image_url):
        images = list(image_urls[:1]) or [image_url or ""]
        kind = "upscales" if task in UPSCALE_TASKS else None
    return MidjourneyJob(
        job_id=job_id,
        backend=backend,
        status=status,
        verb=verb,
        image_urls=images,
        video_urls=list(video_urls) if done else [],
        grid_url=grid_url,
        image_kind=kind if images else None,
        buttons=buttons if done else [],
        prompts=prompts,
        progress_percent=100 if done else None,
        error=error,
        code=code,
    )


def verb_for(task: str) -> str:
    if task in VIDEO_TASKS:
        return VIDEO_TASKS[task]
    if task in BUTTON_TASKS:
        return "button"
    if task in ("blend", "describe"):
        return task
    return "imagine"


def buttons_from(output: LegnextOutput, task: str) -> list[str]:
    """Our button labels for what ``available_actions`` allows (0-based there, U1-U4 here)."""
    found: list[str] = []
    grid = len(output.image_urls) > 1 or (task in GRID_TASKS and not output.image_url)
    upscale, variation = output.allowed("upscale") or [], output.allowed("variation") or []
    if grid:
        found += [f"U{n + 1}" for n in upscale if 0 <= n < 4]
        found += [f"V{n + 1}" for n in variation if 0 <= n < 4]
    else:
        found += ["Upscale (Subtle)", "Upscale (Creative)"] if 0 in upscale else []
        found += ["Vary (Subtle)", "Vary (Strong)"] if 0 in variation else []
        found += ["Vary (Region)"] if 0 in (output.allowed("inpaint") or []) else []
        found += ["Zoom Out 2x", "Zoom Out 1.5x"] if 0 in (output.allowed("outpaint") or []) else []
        found += ["⬅️", "➡️", "⬆️", "⬇️"] if 0 in (output.allowed("pan") or []) else []
    if output.available_actions.get("reroll") is True:
        found.append("🔄")
    return found


def _numbered(text: str) -> list[str]:
    """The prompts of a describe text; the whole text when it holds fewer than two."""
    found = describe_prompts(text)
    return found if len(found) >= 2 else [text.strip()]
