"""useapi.net v3's request parameters (JSON or multipart values), checked in its words, into neutral job requests."""

from __future__ import annotations

from typing import Any

from airflow_provider_midjourney.testing import specs
from airflow_provider_midjourney.testing.jobs import ApiError, JobSpec
from airflow_provider_midjourney.testing.models import BlobField
from airflow_provider_midjourney.testing.specs import BUTTONS, is_blank, is_http_url

MAX_BLOB = 10 * 1024 * 1024

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


def _common(params: dict[str, Any]) -> tuple[dict[str, Any], str | None, bool]:
    """(the request echo so far, channel, stream) from the parameters every verb takes."""
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
    return request, channel, stream is not False


def _imagine(request: dict[str, Any], params: dict[str, Any], channel: str | None, stream: bool) -> JobSpec:
    prompt = text(params, "prompt", 5000)
    if prompt is None or is_blank(prompt):
        raise ApiError(400, "Parameter prompt is required")
    request["prompt"] = prompt
    return specs.imagine(prompt, request=request, account=channel, stream=stream)


def _button(request: dict[str, Any], params: dict[str, Any], channel: str | None, stream: bool) -> JobSpec:
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
    request["button"], request["jobId"] = button, job_id
    if prompt is not None:
        request["prompt"] = prompt
    if mask is not None:
        request["mask"] = mask
    return specs.button(job_id, button, prompt=prompt, mask=mask, request=request, account=channel, stream=stream)


def _blend(request: dict[str, Any], params: dict[str, Any], channel: str | None, stream: bool) -> JobSpec:
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
    request["blendUrls"] = urls
    if dimensions is not None:
        request["blendDimensions"] = dimensions
    return specs.blend(urls, dimensions, request=request, account=channel, stream=stream)


def _describe(request: dict[str, Any], params: dict[str, Any], channel: str | None, stream: bool) -> JobSpec:
    url, blob = text(params, "imageUrl", 2048), _blob(params, "imageBlob")
    if url is None and blob is None:
        raise ApiError(400, "Either imageUrl or imageBlob is required")
    if url is not None and blob is not None:
        raise ApiError(400, "Specify either imageUrl or imageBlob, not both")
    if url is not None and not is_http_url(url):
        raise ApiError(400, "Parameter imageUrl must be a valid http(s) URL")
    request["describeUrl"] = url or "blob"
    source = url or f"blob:{blob.size if blob else 0}:{blob.filename if blob else ''}"
    return specs.describe(source, url=url is not None, request=request, account=channel, stream=stream)


def _seed(request: dict[str, Any], params: dict[str, Any], channel: str | None, stream: bool) -> JobSpec:
    job_id = text(params, "jobId", 512)
    if job_id is None:
        raise ApiError(400, "jobId is required")
    request["jobId"] = job_id
    return specs.seed(job_id, request=request, account=channel, stream=stream)


_VERBS = {"imagine": _imagine, "button": _button, "blend": _blend, "describe": _describe, "seed": _seed}
VERBS = (*_VERBS, "settings", "info", "fast", "relax", "turbo", "remix", "variability")


def job_spec(verb: str, params: dict[str, Any]) -> JobSpec:
    """Check the parameters of ``POST /v3/midjourney/jobs/<verb>`` (ApiError 400) into a neutral job request."""
    request, channel, stream = _common(params)
    specific = _VERBS.get(verb)
    if specific is not None:
        return specific(request, params, channel, stream)
    return JobSpec(verb, request, stream, channel)  # a settings-family command


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
