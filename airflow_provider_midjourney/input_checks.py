"""Checks of the text a task sends: prompts, URLs, job ids, channel ids (no pydantic, no HTTP).

``checked_*`` return the value or raise ``ValueError`` (for the request models' validators, which
name the field); ``check_*`` raise :class:`~airflow_provider_midjourney.exceptions.MidjourneyInvalidRequestError`
naming ``field`` themselves. Each backend's hook narrows the job id format to its own.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError

MAX_PROMPT_LENGTH = 5000
CHANNEL_PATTERN = re.compile(r"[0-9]{1,32}")
SAFE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")
# Characters that show nothing: a prompt made only of them (and whitespace) is blank.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")


def has_control(value: str, allowed: str = "") -> bool:
    return any(unicodedata.category(char) == "Cc" and char not in allowed for char in value)


def is_blank(value: str) -> bool:
    """True when ``value`` shows nothing: whitespace, zero-width characters, NUL and the like."""
    return all(char.isspace() or char in _INVISIBLE or unicodedata.category(char) in ("Cc", "Cf") for char in value)


def checked_prompt(value: str | None, required: bool) -> str | None:
    if value is None:
        if required:
            raise ValueError("is required and must not be empty")
        return None
    if is_blank(value):
        needed = "is required and " if required else "if given, "
        raise ValueError(f"{needed}must contain visible text (it is empty, or only spaces / invisible characters)")
    if has_control(value, allowed="\t\n\r"):
        raise ValueError("must not contain control characters such as NUL")
    if len(value) > MAX_PROMPT_LENGTH:
        raise ValueError(f"must be at most {MAX_PROMPT_LENGTH} characters (got {len(value)})")
    return value


def checked_http_url(value: str) -> str:
    """An absolute http(s) URL with a host, without spaces or control characters."""
    if not isinstance(value, str):
        raise ValueError("must be an http(s) URL")
    shown = value[:80]
    if value != value.strip() or any(char.isspace() for char in value) or has_control(value):
        raise ValueError(f"must be an http(s) URL without spaces or control characters, got {shown!r}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValueError(f"must be a valid http(s) URL, got {shown!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL with a host (https://example.com/...), got {shown!r}")
    return value


def check_http_url(value: Any, field: str) -> str:
    """Validate a URL the provider sends or fetches; raise naming ``field``."""
    try:
        return checked_http_url(value)
    except ValueError as exc:
        raise MidjourneyInvalidRequestError(f"{field}: {exc}") from None


def checked_job_id(value: str) -> str:
    """Any backend's job id: safe in a URL path. Each backend's hook checks its own format."""
    if not isinstance(value, str) or not value or not value.strip():
        raise ValueError("is required")
    if not SAFE_ID_PATTERN.fullmatch(value):
        raise ValueError(
            "must be a job id of letters, digits and . _ : - only (at most 200 characters), e.g."
            f" j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney, got {value[:80]!r}"
        )
    return value


def checked_channel(value: str) -> str:
    if not isinstance(value, str) or not CHANNEL_PATTERN.fullmatch(value):
        raise ValueError(f"must be a Discord channel id (1-32 ASCII digits), got {str(value)[:40]!r}")
    return value


def check_channel(channel: str, field: str = "channel") -> str:
    """Validate a channel id before it goes into a URL path."""
    try:
        return checked_channel(channel)
    except ValueError as exc:
        raise MidjourneyInvalidRequestError(f"{field}: {exc}") from None


def check_safe_id(job_id: Any, field: str = "job_id") -> str:
    """Validate any backend's job id before it goes into a URL path."""
    try:
        return checked_job_id(job_id if isinstance(job_id, str) else "")
    except ValueError as exc:
        raise MidjourneyInvalidRequestError(f"{field}: {exc}") from None


def checked_optional_url(value: str | None) -> str | None:
    return None if value is None else checked_http_url(value)


#: A vendor's uuid-like job id (ImaginePro's messageId, Legnext's job_id): letters, digits, - and _.
VENDOR_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{5,127}")


def check_vendor_id(job_id: Any, field: str, what: str) -> str:
    """``job_id`` if it matches :data:`VENDOR_ID_PATTERN`, else an error naming ``field`` and ``what``
    ("an ImaginePro messageId such as d15c1541-...")."""
    if not isinstance(job_id, str) or not VENDOR_ID_PATTERN.fullmatch(job_id):
        raise MidjourneyInvalidRequestError(
            f"{field}: must be {what} (letters, digits, - and _), got {str(job_id)[:80]!r}"
        )
    return job_id
