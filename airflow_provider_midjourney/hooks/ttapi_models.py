"""TTAPI's wire shapes, parsed leniently, and their translation into a :class:`MidjourneyJob`.

Every TTAPI answer is an envelope ``{status, message, data}``. For a submit, ``status`` says whether
the request was taken (``SUCCESS``/``FAILED``) and the new id is ``data.job_id`` (docs.ttapi.io,
2026) or ``data.jobId`` (older pages and every example): both are read. For a fetch, ``status`` is
the *job*'s state (``PENDING_QUEUE``, ``ON_QUEUE``, ``SUCCESS``, ``FAILED``) and ``message`` the
failure reason. ``fetch-list`` items are another shape: snake_case, with an integer ``status``
whose meaning is not documented (see :data:`LIST_STATUSES`).

What is read where nothing is documented, and therefore a guess:

* a video job's links: every list or string field that plausibly holds them (``videos``,
  ``video_urls``, ``videoUrls``, ``videoUrl``, ``urls``, ``cdnVideos`` ...), see :func:`video_links`;
* describe's four prompts: ``data.prompt`` (a third-party copy says newline-separated; numbered
  forms such as ``1️⃣ ...`` are read too) or a ``prompts`` list;
* the seed: ``data.seed`` (null on image jobs; a seed job fills it, per a third-party copy).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.text_patterns import describe_prompts as prompts_in_text
from airflow_provider_midjourney.text_patterns import is_moderation, percent
from airflow_provider_midjourney.vocabulary import Button, JobStatus
from airflow_provider_midjourney.wire import OpenModel

# Our button label -> TTAPI's action name. U/V/reroll are on the vendor's pages; the others only in
# a third-party write-up, so they are sent only when the parent job lists them in ``components``.
ACTIONS: dict[str, str] = {
    **{f"U{n}": f"upsample{n}" for n in range(1, 5)},
    **{f"V{n}": f"variation{n}" for n in range(1, 5)},
    Button.REROLL.value: "reroll",
    Button.VARY_STRONG.value: "high_variation",
    Button.VARY_SUBTLE.value: "low_variation",
    Button.ZOOM_OUT_2X.value: "zoom_out_2",
    Button.ZOOM_OUT_1_5X.value: "zoom_out_1_5",
    Button.PAN_LEFT.value: "pan_left",
    Button.PAN_RIGHT.value: "pan_right",
    Button.PAN_UP.value: "pan_up",
    Button.PAN_DOWN.value: "pan_down",
    Button.UPSCALE_2X.value: "upscale2",
    Button.UPSCALE_4X.value: "upscale4",
    Button.UPSCALE_SUBTLE.value: "upscale_subtle",
    Button.UPSCALE_CREATIVE.value: "upscale_creative",
    Button.REDO_UPSCALE_2X.value: "redo_upscale2",
    Button.REDO_UPSCALE_4X.value: "redo_upscale4",
    Button.REDO_UPSCALE_SUBTLE.value: "redo_upscale_subtle",
    Button.REDO_UPSCALE_CREATIVE.value: "redo_upscale_creative",
    Button.MAKE_SQUARE.value: "make_square",
}
LABELS: dict[str, str] = {action: label for label, action in ACTIONS.items()}
# Actions whose result is one picture rather than a 2x2 grid.
_SINGLE = re.compile(r"upsample[1-4]|(redo_)?upscale.*")
RUNNING_STATES = {"PENDING_QUEUE": JobStatus.CREATED, "ON_QUEUE": JobStatus.PROGRESS}
#: ``fetch-list``'s integer status. Only ``2`` is seen (a finished upscale, progress 100); the rest
#: follows the order of the string states and is a guess.
LIST_STATUSES = {0: "PENDING_QUEUE", 1: "ON_QUEUE", 2: "SUCCESS", 3: "FAILED"}
_QUOTA = re.compile(r"insufficient (quota|balance)|quota (is )?(insufficient|exhausted|not enough)|余额不足", re.I)
_NOT_FOUND = re.compile(r"not (be )?found|does not exist|not exist|不存在", re.I)
VIDEO_FIELDS = (
    "videos",
    "video_urls",
    "videoUrls",
    "cdnVideos",
    "videoUrl",
    "video_url",
    "cdnVideo",
    "video",
    "urls",
)


class Envelope(OpenModel):
    """``{status, message, data}``: every answer, submit or fetch."""

    status: str | None = None
    message: str | None = None
    job_id: str | None = Field(None, alias="jobId")
    data: Any = None

    @field_validator("status", "message", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str | None:
        return None if value is None else str(value)

    @property
    def raw_status(self) -> str:
        return (self.status or "").strip().upper()

    @property
    def new_job_id(self) -> str | None:
        """The id a submit created: ``data.job_id`` (current docs) or ``data.jobId`` (older)."""
        data = self.data if isinstance(self.data, dict) else {}
        for value in (data.get("job_id"), data.get("jobId")):
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()
        return None

    @property
    def refused(self) -> bool:
        return self.raw_status in ("FAILED", "FAIL", "ERROR") or not self.new_job_id


class JobData(OpenModel):
    """``data`` of ``GET /midjourney/v1/fetch`` (and of the webhook, which has the same shape)."""

    action: str | None = None
    actions: str | None = None  # older docs' spelling
    job_id: str | None = Field(None, alias="jobId")
    progress: int | None = None
    prompt: str | None = None
    mode: str | None = None
    discord_image: str | None = Field(None, alias="discordImage")
    cdn_image: str | None = Field(None, alias="cdnImage")
    components: list[str] = Field(default_factory=list)
    seed: int | None = None
    images: list[str] = Field(default_factory=list)
    cdn_images: list[str] = Field(default_factory=list, alias="cdnImages")
    hook_url: str | None = Field(None, alias="hookUrl")

    @field_validator("progress", mode="before")
    @classmethod
    def _progress(cls, value: Any) -> int | None:
        return percent(value)

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, value: Any) -> int | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        text = str(value).strip() if isinstance(value, str) else ""
        return int(text) if text.isdigit() and len(text) <= 20 else None

    @field_validator("components", "images", "cdn_images", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> list[str]:
        if not isinstance(value, list):
            return []
        return [item.strip() for item in value if isinstance(item, str) and item.strip()]

    @field_validator("action", "actions", "prompt", "cdn_image", "discord_image", "mode", "hook_url", mode="before")
    @classmethod
    def _optional_text(cls, value: Any) -> str | None:
        return None if value is None or value == "" or not isinstance(value, str | int) else str(value)

    @property
    def kind(self) -> str:
        return (self.action or self.actions or "").strip().lower()

    @property
    def picture(self) -> str | None:
        """The job's one image: TTAPI's CDN copy first (Discord links expire after 24 h)."""
        return self.cdn_image or self.discord_image

    @property
    def pictures(self) -> list[str]:
        """The four separate pictures: TTAPI's copies (``cdnImages``) before ``images``."""
        return self.cdn_images or self.images


class ListItem(OpenModel):
    """One ``fetch-list`` entry: snake_case, integer ``status``."""

    job_id: str | None = None
    status: int | str | None = None
    action: str | None = None
    prompt: str | None = None

    @property
    def state(self) -> str | None:
        """The string state (``ON_QUEUE`` ...) of the integer or string ``status``; None if unknown."""
        if isinstance(self.status, bool) or self.status is None:
            return None
        if isinstance(self.status, int):
            return LIST_STATUSES.get(self.status)
        text = self.status.strip().upper()
        if text.isdigit():
            return LIST_STATUSES.get(int(text))
        return text or None


def parse_list(data: Any) -> list[ListItem]:
    """``data`` of ``fetch-list``: a list, or a page object holding one (``list``/``records``/``items``)."""
    if isinstance(data, dict):
        data = next((data[k] for k in ("list", "records", "items", "data") if isinstance(data.get(k), list)), [])
    if not isinstance(data, list):
        return []
    return [ListItem.model_validate(item) for item in data if isinstance(item, dict) and item.get("job_id")]


def video_links(data: Any) -> list[str]:
    """Every http(s) link a finished video job may carry, in the first field that has any.

    TTAPI does not document its video result fields: this reads the names other vendors and
    TTAPI's own image fields use (see :data:`VIDEO_FIELDS`), each as a list of strings, a list of
    ``{url}`` objects or one string.
    """
    if not isinstance(data, dict):
        return []
    for name in VIDEO_FIELDS:
        found = _links(data.get(name))
        if found:
            return found
    return []


def _links(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    links = []
    for item in items[:16]:
        if isinstance(item, dict):
            item = item.get("url") or item.get("videoUrl") or item.get("cdnUrl")
        if isinstance(item, str) and item.startswith(("http://", "https://")) and len(item) <= 4096:
            links.append(item)
    return links


def is_quota(text: str | None) -> bool:
    return bool(text) and _QUOTA.search(text or "") is not None


def is_not_found(text: str | None) -> bool:
    return bool(text) and _NOT_FOUND.search(text or "") is not None


def verb_for(kind: str, video: bool) -> str:
    if video or kind.startswith(("video", "animate")):
        return "video_extend" if "extend" in kind else "video"
    if kind in ("imagine", "blend", "describe", "seed"):
        return kind
    if kind in ("get_seed", "getseed"):
        return "seed"
    return "button" if kind else "imagine"


def normalised(
    envelope: Envelope, backend: str, patterns: Sequence[re.Pattern[str]], job_id: str | None = None
) -> MidjourneyJob:
    """A fetch answer as the one job shape (see :class:`~airflow_provider_midjourney.job.MidjourneyJob`)."""
    raw = envelope.data if isinstance(envelope.data, dict) else {}
    data = JobData.model_validate(raw)
    status = _status(envelope.raw_status, envelope.message, data.progress, patterns)
    videos = video_links(raw)
    verb = verb_for(data.kind, bool(videos))
    prompts = describe_prompts(raw, data.prompt) if verb == "describe" else []
    image_urls: list[str] = []
    grid_url: str | None = None
    image_kind: str | None = None
    if status == JobStatus.COMPLETED and not videos and verb not in ("describe", "seed"):
        if _SINGLE.fullmatch(data.kind):
            image_urls, grid_url, image_kind = (
                ([data.picture], data.picture, "upscales") if data.picture else ([], None, None)
            )
        elif len(data.pictures) == 4:
            image_urls, grid_url, image_kind = list(data.pictures), data.picture, "crops"
        elif data.picture:
            grid_url, image_kind = data.picture, "cuts"
    error = None if status in (JobStatus.COMPLETED, *RUNNING_STATES.values(), JobStatus.STARTED) else envelope.message
    return MidjourneyJob(
        job_id=data.job_id or envelope.job_id or job_id or "",
        backend=backend,
        status=status,
        verb=verb,
        prompt=None if prompts else data.prompt,
        image_urls=image_urls,
        video_urls=videos if status == JobStatus.COMPLETED else [],
        grid_url=grid_url,
        buttons=[LABELS.get(c, c) for c in data.components],
        seed=data.seed,
        prompts=prompts,
        progress_percent=100 if status == JobStatus.COMPLETED else data.progress,
        error=(error or "no reason given") if status in (JobStatus.FAILED, JobStatus.MODERATED) else None,
        image_kind=image_kind,
    )


def _status(raw: str, message: str | None, progress: int | None, patterns: Sequence[re.Pattern[str]]) -> JobStatus:
    if raw == "SUCCESS":
        return JobStatus.COMPLETED
    if raw in ("FAILED", "FAIL"):
        return JobStatus.MODERATED if is_moderation(message, patterns) else JobStatus.FAILED
    if raw == "ON_QUEUE" and not progress:
        return JobStatus.STARTED
    if raw in RUNNING_STATES:
        return RUNNING_STATES[raw]
    return JobStatus(raw.lower() or "unknown")  # undocumented: kept as it came, never terminal


def describe_prompts(raw: dict[str, Any], prompt: str | None) -> list[str]:
    prompt = (prompt or "")[:20_000]  # four prompts are far shorter; the rest is not parsed
    listed = raw.get("prompts")
    if isinstance(listed, list) and listed and all(isinstance(p, str) for p in listed):
        return [p.strip() for p in listed[:4] if p.strip()]
    numbered = prompts_in_text(prompt)
    if numbered:
        return numbered[:4]
    lines = [line.strip() for line in (prompt or "").splitlines() if line.strip()]
    return lines[:4] if len(lines) >= 2 else []
