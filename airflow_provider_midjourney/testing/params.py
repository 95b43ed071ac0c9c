"""Validation of request parameters (JSON or multipart values) into :class:`JobSpec`s."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_midjourney.testing.jobs import (
    QUALITY_UPSCALES,
    UPSCALES,
    VIDEO_BUTTONS,
    ApiError,
    JobSpec,
)
from airflow_provider_midjourney.testing.models import BlobField

MAX_BLOB = 10 * 1024 * 1024
BUTTONS = frozenset(
    {
        *UPSCALES,
        *QUALITY_UPSCALES,
        *VIDEO_BUTTONS,
        "V1",
        "V2",
        "V3",
        "V4",
        "⬅️",
        "➡️",
        "⬆️",
        "⬇️",
        "Vary (Region)",
        "Vary (Strong)",
        "Vary (Subtle)",
        "Zoom Out 1.5x",
        "Zoom Out 2x",
        "Make Square",
        "Make Variations",
        "Remaster",
        "Custom Zoom",
        "🔄",
    }
)
BLEND_DIMENSIONS = ("Portrait", "Square", "Landscape")
REPLY_LEVELS = ("all", "standard", "minimal")


def text(params: dict[str, Any], name: str, max_len: int | None = None) -> str | None:
    """A string parameter ('' counts as absent); numbers are accepted and stringified."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ApiError(400, f"Parameter {name} must be a string")
    value = str(value)
    if max_len is not None and len(value) > max_len:
        raise ApiError(400, f"Parameter {name} must be at most {max_len} characters")
    return value


def integer(params: dict[str, Any], name: str, low: int, high: int, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Parameter {name} must be an integer") from None
    if not low <= number <= high:
        raise ApiError(400, f"Parameter {name} must be between {low} and {high}")
    return number


def is_http_url(value: str) -> bool:
    """An absolute http(s) URL with a host and no whitespace (what the API accepts as a URL)."""
    if any(char.isspace() for char in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a malformed port raises
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def is_blank(value: str) -> bool:
    """Only whitespace, zero-width or control characters: the API refuses such a prompt."""
    return all(char.isspace() or unicodedata.category(char) in ("Cc", "Cf") for char in value)


def _stream(params: dict[str, Any]) -> bool | None:
    value = params.get("stream")
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ApiError(400, "Parameter stream must be true or false")


def _blob(params: dict[str, Any], name: str) -> BlobField | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    blob = value if isinstance(value, BlobField) else BlobField(len(str(value).encode()))
    if blob.size > MAX_BLOB:
        raise ApiError(400, f"Parameter {name} exceeds the maximum file size of 10 MB")
    return blob


def _common(params: dict[str, Any], verb: str) -> JobSpec:
    request: dict[str, Any] = {}
    channel = text(params, "channel", 64)
    if channel:
        request["channel"] = channel
    for name in ("replyUrl", "replyRef"):
        value = text(params, name, 1024)
        if value is not None:
            request[name] = value
    if "replyUrl" in request and not is_http_url(request["replyUrl"]):
        raise ApiError(400, "Parameter replyUrl must be a valid http(s) URL")
    level = text(params, "replyLevel")
    if level is not None:
        if level not in REPLY_LEVELS:
            raise ApiError(400, f"Parameter replyLevel must be one of: {', '.join(REPLY_LEVELS)}")
        request["replyLevel"] = level
    stream = _stream(params)
    if stream is not None:
        request["stream"] = stream
    return JobSpec(verb, request, stream=stream is not False, account=channel)


def _imagine(spec: JobSpec, params: dict[str, Any]) -> None:
    prompt = text(params, "prompt", 5000)
    if prompt is None or is_blank(prompt):
        raise ApiError(400, "Parameter prompt is required")
    spec.request["prompt"] = spec.prompt = prompt
    spec.job_type = "video" if re.search(r"--video\b", prompt) else "image"


def _button(spec: JobSpec, params: dict[str, Any]) -> None:
    job_id = text(params, "jobId", 512)
    if job_id is None:
        raise ApiError(400, "jobId is required")
    button = text(params, "button", 64)
    if button is None:
        raise ApiError(400, "button is required")
    if button not in BUTTONS:
        raise ApiError(400, f"Unsupported button {button}")
    prompt, mask = text(params, "prompt", 5000), text(params, "mask")
    if button == "Vary (Region)" and mask is None:
        raise ApiError(400, "Parameter mask is required for button Vary (Region)")
    if button == "Custom Zoom" and (prompt is None or is_blank(prompt)):
        raise ApiError(400, "Parameter prompt is required for button Custom Zoom")
    spec.request["button"], spec.request["jobId"] = button, job_id
    if prompt is not None:
        spec.request["prompt"] = spec.prompt = prompt
    if mask is not None:
        spec.request["mask"] = mask
    spec.button, spec.parent_id = button, job_id


def _blend(spec: JobSpec, params: dict[str, Any]) -> None:
    urls: list[str] = []
    for n in range(1, 6):
        url, blob = text(params, f"imageUrl_{n}", 2048), _blob(params, f"imageBlob_{n}")
        if url is not None and blob is not None:
            raise ApiError(400, f"Specify either imageUrl_{n} or imageBlob_{n}, not both")
        if url is not None and not is_http_url(url):
            raise ApiError(400, f"Parameter imageUrl_{n} must be a valid http(s) URL")
        if url is not None:
            urls.append(url)
        elif blob is not None:
            urls.append(f"blob_{len(urls)}")
    if len(urls) < 2:
        raise ApiError(400, "At least 2 images are required for blend")
    dimensions = text(params, "blendDimensions")
    if dimensions is not None and dimensions not in BLEND_DIMENSIONS:
        raise ApiError(400, f"Parameter blendDimensions must be one of: {', '.join(BLEND_DIMENSIONS)}")
    spec.request["blendUrls"] = urls
    if dimensions is not None:
        spec.request["blendDimensions"] = dimensions
    ar = {"Portrait": "--ar 2:3", "Landscape": "--ar 3:2"}.get(dimensions or "", "--ar 1:1")
    spec.prompt, spec.job_type, spec.trigger_text = f" {ar}", "image", " ".join(urls)


def _describe(spec: JobSpec, params: dict[str, Any]) -> None:
    url, blob = text(params, "imageUrl", 2048), _blob(params, "imageBlob")
    if url is None and blob is None:
        raise ApiError(400, "Either imageUrl or imageBlob is required")
    if url is not None and blob is not None:
        raise ApiError(400, "Specify either imageUrl or imageBlob, not both")
    if url is not None and not is_http_url(url):
        raise ApiError(400, "Parameter imageUrl must be a valid http(s) URL")
    spec.request["describeUrl"] = url or "blob"
    spec.trigger_text = url or ""
    spec.source = url or f"blob:{blob.size if blob else 0}:{blob.filename if blob else ''}"


def _seed(spec: JobSpec, params: dict[str, Any]) -> None:
    job_id = text(params, "jobId", 512)
    if job_id is None:
        raise ApiError(400, "jobId is required")
    spec.request["jobId"] = spec.parent_id = job_id


_VERBS = {"imagine": _imagine, "button": _button, "blend": _blend, "describe": _describe, "seed": _seed}
VERBS = (*_VERBS, "settings", "info", "fast", "relax", "turbo", "remix", "variability")


def job_spec(verb: str, params: dict[str, Any]) -> JobSpec:
    """Validate the parameters of ``POST /v3/midjourney/jobs/<verb>``; raises ApiError(400)."""
    spec = _common(params, verb)
    specific = _VERBS.get(verb)
    if specific is not None:
        specific(spec, params)
    return spec


def account_params(params: dict[str, Any]) -> tuple[str, int, int, int, str | None]:
    """Validate ``POST /v3/midjourney/accounts``: (discord, maxJobs, image, video, replyUrl)."""
    discord = params.get("discord")
    if not isinstance(discord, str) or not discord.strip():
        raise ApiError(400, "Required parameter discord is missing or empty")
    max_jobs = integer(params, "maxJobs", 1, 15, 3)
    limits = [integer(params, name, 1, 12, 3) for name in ("maxImageJobs", "maxVideoJobs")]
    for name, value in zip(("maxImageJobs", "maxVideoJobs"), limits, strict=True):
        if value > max_jobs:
            raise ApiError(400, f"Parameter {name} must be less than or equal to maxJobs")
    reply_url = text(params, "replyUrl", 2048)
    if reply_url is not None and not is_http_url(reply_url):
        raise ApiError(400, "Parameter replyUrl must be a valid http(s) URL")
    return discord.strip(), max_jobs, limits[0], limits[1], reply_url
