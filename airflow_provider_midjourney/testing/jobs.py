"""Data of the emulator: job specs and plans, jobs, accounts, error type, documented texts."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_midjourney.testing import content
from airflow_provider_midjourney.testing.settings import ChannelSettings

RUNNING = ("created", "started", "progress")
TERMINAL = ("completed", "failed", "moderated")
MEDIA_KINDS = ("grid", "video_grid", "upscale", "video")
UPSCALES = ("U1", "U2", "U3", "U4")
QUALITY_UPSCALES = tuple(
    f"{redo}Upscale ({kind})" for redo in ("", "Redo ") for kind in ("2x", "4x", "Subtle", "Creative")
)
VIDEO_BUTTONS = ("Animate (Low motion)", "Animate (High motion)", "Extend (Low motion)", "Extend (High motion)")
ALL_LOCKED = (
    "All configured Midjourney channels ({n}) have errors (pending moderation, CAPTCHA, etc.). "
    "Please resolve channel issues before making new requests."
)
LEGACY_V2 = (
    "Legacy v2 Midjourney configuration detected for channel {ch}. v2 and v3 APIs are "
    "incompatible and cannot coexist. Please delete the v2 configuration first: DELETE "
    "https://api.useapi.net/v2/midjourney/account/{ch} (requires Authorization header with your "
    "API key). After deletion, you can configure this channel for v3."
)
SUBSCRIPTION_EXPIRED = "Account has no subscription or subscription expired"


class ApiError(Exception):
    """An error answer: ``{"error": message}`` or, with ``message=None``, an empty body."""

    def __init__(self, status: int, message: str | None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def redact(token: str) -> str:
    return f"{token[:3]}...{token[-3:]}"


def channel_for_token(token: str) -> str:
    """The 19-digit channel id 'discovered' from a Discord token (deterministic)."""
    value = int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "big")
    return str(10**18 + value % (9 * 10**18))


@dataclass
class JobSpec:
    """A validated job request (see ``params.py``)."""

    verb: str
    request: dict[str, Any]
    stream: bool = True
    channel: str | None = None
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
    channel: str
    discord: str  # always the redacted form
    max_jobs: int = 3
    max_image_jobs: int = 3
    max_video_jobs: int = 3
    reply_url: str | None = None
    error: str | None = None
    settings: ChannelSettings = field(default_factory=ChannelSettings)

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "discord": self.discord,
            "channel": self.channel,
            "maxJobs": self.max_jobs,
            "maxImageJobs": self.max_image_jobs,
            "maxVideoJobs": self.max_video_jobs,
        }
        if self.reply_url:
            out["replyUrl"] = self.reply_url
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class Job:
    jobid: str
    verb: str
    job_type: str | None
    kind: str
    channel: str
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
    forced: tuple[float, str, dict[str, Any]] | None = None
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
        return list(content.GRID_BUTTONS)
    if kind == "video_grid":
        return list(content.VIDEO_GRID_BUTTONS)
    if kind == "video":
        return list(content.VIDEO_SINGLE_BUTTONS)
    if kind == "upscale":
        redo = button in QUALITY_UPSCALES
        first = ["Redo Upscale (Subtle)", "Redo Upscale (Creative)"] if redo else []
        return first + content.UPSCALED_BUTTONS[len(first) :]
    return []
