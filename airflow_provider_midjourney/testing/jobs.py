"""Data of the emulator's job engine: job specs and plans, jobs and their neutral views, accounts, errors.

Nothing here names a vendor's path, field or id format: each dialect (``testing/<backend>.py``)
turns a :class:`JobView` into its vendor's shape and an :class:`EngineError` into its vendor's text.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_midjourney.testing.settings import AccountSettings

RUNNING = ("created", "started", "progress")
TERMINAL = ("completed", "failed", "moderated")
MEDIA_KINDS = ("grid", "video_grid", "upscale", "video")
UPSCALES = ("U1", "U2", "U3", "U4")
QUALITY_UPSCALES = tuple(
    f"{redo}Upscale ({kind})" for redo in ("", "Redo ") for kind in ("2x", "4x", "Subtle", "Creative")
)
GRID_BUTTONS = ("U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4")
UPSCALED_BUTTONS = (
    "Upscale (Subtle)",
    "Upscale (Creative)",
    "Vary (Subtle)",
    "Vary (Strong)",
    "Vary (Region)",
    "Zoom Out 2x",
    "Zoom Out 1.5x",
    "Custom Zoom",
    "⬅️",
    "➡️",
    "⬆️",
    "⬇️",
    "Animate (High motion)",
    "Animate (Low motion)",
)
VIDEO_GRID_BUTTONS = ("U1", "U2", "U3", "U4", "🔄")
VIDEO_SINGLE_BUTTONS = ("Extend (High motion)", "Extend (Low motion)")
VIDEO_BUTTONS = ("Animate (Low motion)", "Animate (High motion)", "Extend (Low motion)", "Extend (High motion)")
SUBSCRIPTION_EXPIRED = "Account has no subscription or subscription expired"


class ApiError(Exception):
    """An error answer: ``{"error": message}`` or, with ``message=None``, an empty body."""

    def __init__(self, status: int, message: str | None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class EngineError(ApiError):
    """The engine refused: ``reason`` names why and ``facts`` carry what a dialect needs to phrase it.

    The message is a neutral default; dialects with their own wording translate by ``reason``:
    ``unknown_account``, ``account_locked`` (facts: account, error), ``no_account``,
    ``account_required`` (count), ``all_locked`` (count), ``busy`` (account, running, job_type:
    "image" | "video" | None for the total), ``job_missing``, ``job_expired`` (job),
    ``parent_missing``, ``parent_expired``, ``parent_not_completed`` (job_status, action),
    ``seed_not_image``, ``button_unavailable`` (button, job, available), ``not_running`` (job, job_status).
    """

    def __init__(self, status: int, reason: str, message: str, **facts: Any) -> None:
        super().__init__(status, message)
        self.reason = reason
        self.facts = facts


@dataclass
class JobSpec:
    """A validated job request (see ``params.py``)."""

    verb: str
    request: dict[str, Any]  # the arguments as the dialect wants them echoed; the engine never reads it
    stream: bool = True
    account: str | None = None
    prompt: str = ""
    job_type: str | None = None
    parent_id: str | None = None
    button: str | None = None
    trigger_text: str = ""
    source: str = ""


@dataclass
class Plan:
    start: float
    progress: float
    complete: float
    steps: tuple[int, ...]
    outcome: str  # completed | failed | moderated | never
    word: str | None = None

    def _step_times(self) -> list[float]:
        width = (self.complete - self.progress) / max(len(self.steps), 1)
        return [self.progress + i * width for i in range(len(self.steps))]

    def boundaries(self) -> list[float]:
        times = [0.0, self.start, *self._step_times()]
        return times if self.outcome == "never" else [*times, self.complete]

    def phase(self, t: float) -> tuple[str, int | None, float]:
        """(status, progress_percent, time the phase began) at ``t`` seconds after creation."""
        if t <= 0 or t < self.start:
            return "created", None, 0.0
        if t < self.progress:
            return "started", None, self.start
        if self.outcome == "never" or t < self.complete:
            index, began = 0, self.progress
            for i, began_at in enumerate(self._step_times()):
                if t >= began_at:
                    index, began = i, began_at
            return "progress", self.steps[index] if self.steps else None, began
        return self.outcome, None, self.complete


@dataclass
class Account:
    """One Midjourney account (a pool of job slots): its limits, its lock and its settings."""

    id: str
    max_jobs: int = 3
    max_image_jobs: int = 3
    max_video_jobs: int = 3
    error: str | None = None  # set: the account is locked (e.g. a pending moderation message)
    settings: AccountSettings = field(default_factory=AccountSettings)


@dataclass(frozen=True)
class Failure:
    """Why a job ended without a result: ``reason`` is moderated | failed | cancelled | timed_out."""

    reason: str
    title: str
    details: str
    code: int  # an HTTP-like class of the failure: 422, 500, 499, 504
    word: str | None = None  # the moderation or failure word that decided it


@dataclass(frozen=True)
class JobView:
    """A job as it is now, in no vendor's shape (what every dialect reads).

    ``kind`` is what the job makes (grid, video_grid, upscale, video) or its verb (describe,
    seed, settings ...). Media URLs point at the emulator's CDN and are set once completed:
    ``primary_url`` is the job's own picture (a grid, an upscale or a clip), ``image_urls`` and
    ``video_urls`` its single images and clips.
    """

    id: str
    verb: str
    kind: str
    job_type: str | None
    account: str
    uid: str
    status: str
    percent: int | None
    prompt: str
    button: str | None
    parent_id: str | None
    request: dict[str, Any]
    created: float  # wall clock
    updated: float  # wall clock of the current phase's start
    speed: str
    buttons: tuple[str, ...] = ()
    children: dict[str, str] = field(default_factory=dict)
    execute_once: dict[str, str] = field(default_factory=dict)
    failure: Failure | None = None
    primary_url: str | None = None
    image_urls: tuple[str, ...] = ()
    video_urls: tuple[str, ...] = ()
    seed: int | None = None
    parent_uid: str | None = None  # a seed job: the job whose seed it tells
    describe_prompts: tuple[str, ...] = ()
    settings_reply: dict[str, Any] | None = None  # a settings-family command's answer

    @property
    def media(self) -> bool:
        return self.kind in MEDIA_KINDS


@dataclass
class Job:
    id: str
    verb: str
    job_type: str | None
    kind: str
    account: str
    uid: str
    request: dict[str, Any]
    prompt: str
    button: str | None
    parent_id: str | None
    created_mono: float
    created_wall: float
    plan: Plan
    speed: str
    buttons: list[str]
    extra: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    forced: tuple[float, str, Failure | None] | None = None
    stuck: tuple[float, float] | None = None  # (since, timeout)
    expired: bool = False
    children: dict[str, str] = field(default_factory=dict)
    execute_once: dict[str, str] = field(default_factory=dict)

    def elapsed(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.created_mono


def kind_and_type(spec: JobSpec, parent: Job | None) -> tuple[str, str | None]:
    if spec.verb in ("imagine", "blend"):
        return ("video_grid", "video") if spec.job_type == "video" else ("grid", "image")
    if spec.verb != "button" or parent is None:
        return spec.verb, None
    button, video_parent = spec.button or "", parent.job_type == "video"
    if button in UPSCALES:
        kind = "video" if video_parent else "upscale"
    elif button in QUALITY_UPSCALES:
        kind = "upscale"
    elif button in VIDEO_BUTTONS or video_parent:
        kind = "video_grid"
    else:
        kind = "grid"
    return kind, "video" if kind in ("video", "video_grid") else "image"


def buttons_for(kind: str, button: str | None) -> list[str]:
    if kind == "grid":
        return list(GRID_BUTTONS)
    if kind == "video_grid":
        return list(VIDEO_GRID_BUTTONS)
    if kind == "video":
        return list(VIDEO_SINGLE_BUTTONS)
    if kind == "upscale":
        redo = button in QUALITY_UPSCALES
        first = ["Redo Upscale (Subtle)", "Redo Upscale (Creative)"] if redo else []
        return first + list(UPSCALED_BUTTONS[len(first) :])
    return []


def moderated(prompt: str, word: str) -> Failure:
    details = (
        "Sorry! Please try a different prompt. We've detected that you may be trying to use a "
        f"word that is not allowed: `{word}`. Please review our community guidelines."
    )
    return Failure("moderated", "Banned prompt detected", details, 422, word)


def failed(word: str | None) -> Failure:
    why = f" (failure word `{word}`)" if word else ""
    details = f"There was an error processing your request. Try again later.{why}"
    return Failure("failed", "Midjourney job failed", details, 500, word)


CANCELLED = Failure("cancelled", "Job cancelled by user", "The job was cancelled before it finished", 499)
TIMED_OUT = Failure(
    "timed_out", "Job timed out", "The client went away before the job finished; the job got stuck", 504
)


def failure_text(failure: Failure | None, default: str = "") -> str:
    """``title: details`` of a failure (what most vendors show as their one error string)."""
    if failure is None:
        return default
    return ": ".join(p for p in (failure.title, failure.details) if p) or default
