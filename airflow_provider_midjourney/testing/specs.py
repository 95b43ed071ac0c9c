"""Job requests for the engine, in no vendor's words: each dialect reads its own wire, then builds one of these.

They refuse what Midjourney itself would (an unknown button, a blank prompt, a blend of one image)
with a neutral 400; a dialect checks its own field names and limits before, in its own words.
``request`` is what the dialect wants echoed for the job (its vendor's names; the engine never reads it).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_midjourney.testing.jobs import QUALITY_UPSCALES, UPSCALES, VIDEO_BUTTONS, ApiError, JobSpec

BUTTONS = frozenset(
    {
        *UPSCALES,
        *QUALITY_UPSCALES,
        *VIDEO_BUTTONS,
        *("V1", "V2", "V3", "V4", "⬅️", "➡️", "⬆️", "⬇️", "🔄"),
        *("Vary (Region)", "Vary (Strong)", "Vary (Subtle)", "Zoom Out 1.5x", "Zoom Out 2x", "Custom Zoom"),
        *("Make Square", "Make Variations", "Remaster"),
    }
)
BLEND_RATIOS = {"Portrait": "--ar 2:3", "Square": "--ar 1:1", "Landscape": "--ar 3:2"}


def is_blank(value: str) -> bool:
    """Only whitespace, zero-width or control characters: Midjourney refuses such a prompt."""
    return all(char.isspace() or unicodedata.category(char) in ("Cc", "Cf") for char in value)


def is_http_url(value: str) -> bool:
    """An absolute http(s) URL with a host and no whitespace (what the vendors accept as a URL)."""
    if any(char.isspace() for char in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a malformed port raises
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def imagine(
    prompt: str, *, request: dict[str, Any] | None = None, account: str | None = None, stream: bool = False
) -> JobSpec:
    """``/imagine``; a prompt with ``--video`` makes a video job."""
    if is_blank(prompt):
        raise ApiError(400, "a prompt is required")
    job_type = "video" if re.search(r"--video\b", prompt) else "image"
    return JobSpec("imagine", dict(request or {}), stream, account, prompt=prompt, job_type=job_type)


def button(
    parent: str,
    label: str,
    *,
    prompt: str | None = None,
    mask: str | None = None,
    request: dict[str, Any] | None = None,
    account: str | None = None,
    stream: bool = False,
) -> JobSpec:
    """Press ``label`` under the finished job ``parent`` (a remix ``prompt``, a Vary (Region) ``mask``)."""
    if label not in BUTTONS:
        raise ApiError(400, f"Unsupported button {label}")
    if label == "Vary (Region)" and mask is None:
        raise ApiError(400, "a mask is required for button Vary (Region)")
    if label == "Custom Zoom" and (prompt is None or is_blank(prompt)):
        raise ApiError(400, "a prompt is required for button Custom Zoom")
    spec = JobSpec("button", dict(request or {}), stream, account, prompt=prompt or "")
    spec.button, spec.parent_id = label, parent
    return spec


def blend(
    sources: Sequence[str],
    dimensions: str | None = None,
    *,
    request: dict[str, Any] | None = None,
    account: str | None = None,
    stream: bool = False,
) -> JobSpec:
    """``/blend`` of 2-5 images (URLs or blob names); ``dimensions``: Portrait, Square or Landscape."""
    if len(sources) < 2:
        raise ApiError(400, "a blend needs at least 2 images")
    ratio = BLEND_RATIOS.get(dimensions or "", BLEND_RATIOS["Square"])
    spec = JobSpec("blend", dict(request or {}), stream, account, prompt=f" {ratio}", job_type="image")
    spec.trigger_text = " ".join(sources)
    return spec


def describe(
    source: str,
    *,
    url: bool = True,
    request: dict[str, Any] | None = None,
    account: str | None = None,
    stream: bool = False,
) -> JobSpec:
    """``/describe`` of an image: its URL, or (``url=False``) a name for uploaded bytes."""
    spec = JobSpec("describe", dict(request or {}), stream, account)
    spec.trigger_text, spec.source = (source if url else ""), source
    return spec


def seed(
    parent: str, *, request: dict[str, Any] | None = None, account: str | None = None, stream: bool = False
) -> JobSpec:
    """The seed of the finished image job ``parent``."""
    spec = JobSpec("seed", dict(request or {}), stream, account)
    spec.parent_id = parent
    return spec
