"""Apiframe v2's wire shapes, parsed leniently, and their translation into a :class:`MidjourneyJob`.

Apiframe's two copies of its v2 docs disagree on a finished job's ``result``: an object
``{"images": [4 urls], "gridUrl"}`` (apiframe.ai, every action page), ``{"images": [1 url]}`` for an
upsample, ``{"videos": [4 urls]}`` for a video, or a plain URL string (docs-v2). Every shape is
accepted; unknown fields are kept. Apiframe has no "moderated" status: a ``FAILED`` (or
``CANCELLED``) job whose ``error`` matches the connection's ``moderation_patterns`` is moderated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.text_patterns import is_moderation
from airflow_provider_midjourney.vocabulary import JobStatus
from airflow_provider_midjourney.wire import OpenModel

VIDEO_MODEL = "midjourney-video"
RUNNING = {"QUEUED": JobStatus.CREATED, "PROCESSING": JobStatus.PROGRESS}
ENDED = ("FAILED", "CANCELLED")
#: What a finished job offers next, in our button vocabulary (the action route's actions).
GRID_BUTTONS = ("U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4")
UPSAMPLE_BUTTONS = ("Vary (Region)", "Zoom Out 2x", "Zoom Out 1.5x", "⬅️", "➡️", "⬆️", "⬇️")
MAX_URLS = 16


class JobAccepted(OpenModel):
    """``202 {"jobId", "status": "QUEUED"}`` (an idempotent replay: the original job's current status)."""

    job_id: str = Field(alias="jobId")
    status: str | None = None


def _urls(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value[:MAX_URLS] if isinstance(item, str) and item.startswith(("http://", "https://"))]


class ApiframeJob(OpenModel):
    """``GET /v2/jobs/{id}`` (and each entry of ``GET /v2/jobs``)."""

    id: str
    status: str = ""
    model: str | None = None
    progress: int | None = None
    result: Any = None
    error: str | None = None
    credit_cost: int | None = Field(None, alias="creditCost")
    created_at: str | None = Field(None, alias="createdAt")
    completed_at: str | None = Field(None, alias="completedAt")
    input: dict[str, Any] | None = None
    expired: bool = False

    @field_validator("progress", mode="before")
    @classmethod
    def _progress(cls, value: Any) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return max(0, min(100, int(value)))

    @field_validator("error", mode="before")
    @classmethod
    def _error(cls, value: Any) -> str | None:
        return None if value in (None, "") else str(value)[:2000]

    @field_validator("expired", mode="before")
    @classmethod
    def _expired(cls, value: Any) -> bool:
        return value is True

    @field_validator("input", mode="before")
    @classmethod
    def _input(cls, value: Any) -> dict[str, Any] | None:
        return value if isinstance(value, dict) else None

    @property
    def is_running(self) -> bool:
        return self.status.upper() in RUNNING

    def status_for(self, patterns: Sequence[re.Pattern[str]]) -> JobStatus:
        raw = self.status.upper()
        if raw == "COMPLETED":
            return JobStatus.COMPLETED
        if raw in ENDED:
            return JobStatus.MODERATED if is_moderation(self.error, patterns) else JobStatus.FAILED
        if raw in RUNNING:
            return RUNNING[raw]
        return JobStatus(self.status or "unknown")  # undocumented: kept as it came, never terminal

    def media(self) -> tuple[list[str], list[str], str | None]:
        """(pictures, clips, grid) of the result, in any of its documented shapes."""
        result = self.result
        if isinstance(result, str) and result.startswith(("http://", "https://")):
            if result.split("?")[0].lower().endswith((".mp4", ".webm", ".mov")):
                return [], [result], None
            return [], [], result
        if not isinstance(result, dict):
            return [], [], None
        grid = result.get("gridUrl")
        grid = grid if isinstance(grid, str) and grid.startswith(("http://", "https://")) else None
        return _urls(result.get("images")), _urls(result.get("videos")), grid

    @property
    def verb(self) -> str:
        if self.model == VIDEO_MODEL:
            return "video"
        return "button" if self.input and "action" in self.input else "imagine"

    def normalised(self, backend: str, patterns: Sequence[re.Pattern[str]]) -> MidjourneyJob:
        status = self.status_for(patterns)
        images, videos, grid = self.media() if status == JobStatus.COMPLETED else ([], [], None)
        buttons: tuple[str, ...] = ()
        if status == JobStatus.COMPLETED and self.verb != "video":
            buttons = GRID_BUTTONS if len(images) > 1 or (grid and not images) else UPSAMPLE_BUTTONS
        prompt = self.input.get("prompt") if self.input else None
        return MidjourneyJob(
            job_id=self.id,
            backend=backend,
            status=status,
            verb=self.verb,
            prompt=prompt if isinstance(prompt, str) else None,
            image_urls=images,
            video_urls=videos,
            grid_url=grid,
            buttons=list(buttons),
            progress_percent=100 if status == JobStatus.COMPLETED else self.progress,
            error=self.error,
        )


class JobList(OpenModel):
    """``GET /v2/jobs``: ``{"jobs": [...], "nextCursor", "hasMore"}``."""

    jobs: list[dict[str, Any]] = Field(default_factory=list)
    next_cursor: str | None = Field(None, alias="nextCursor")
    has_more: bool | None = Field(None, alias="hasMore")

    def running_ids(self) -> set[str]:
        ids = set()
        for entry in self.jobs:
            status, job_id = entry.get("status"), entry.get("id")
            if isinstance(job_id, str) and isinstance(status, str) and status.upper() in RUNNING:
                ids.add(job_id)
        return ids
