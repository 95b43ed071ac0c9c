"""The midjourney-proxy connection's extras (path prefix, flavour, moderation patterns), checked before
any request, and our replyRef as the task's ``state`` field."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_midjourney.exceptions import MidjourneyError
from airflow_provider_midjourney.hooks.midjourney_proxy_models import compile_patterns

DEFAULT_PATH_PREFIX = "/mj"
MODE_PREFIXES = ("/mj-fast", "/mj-relax", "/mj-turbo")
MAX_STATE_LENGTH = 255  # BaseSubmitDTO.State: "最大长度 255"
Flavour = Literal["auto", "original", "superset"]
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


@dataclass(frozen=True)
class ProxyOptions:
    """The connection's midjourney-proxy extras, validated."""

    path_prefix: str
    flavour: Flavour
    moderation: tuple[re.Pattern[str], ...]


def proxy_options(extra: Mapping[str, Any], conn_id: str) -> ProxyOptions:
    """Validate the extras, naming the connection and the field."""
    where = f"Connection {conn_id!r}"
    prefix = extra.get("path_prefix")
    prefix = DEFAULT_PATH_PREFIX if prefix is None else prefix
    if not isinstance(prefix, str) or not _PREFIX.match(prefix.strip().rstrip("/")):
        raise MidjourneyError(
            f"{where}: extra 'path_prefix' must be a URL path such as /mj, /mj-fast, /mj-relax or /mj-turbo"
            f" (letters, digits and . _ ~ - between slashes), got {prefix!r}"
        )
    prefix = prefix.strip().rstrip("/")
    if prefix in MODE_PREFIXES:
        prefix += "/mj"  # the superset routes its speed modes as /mj-fast/mj/submit/...
    flavour: Flavour
    raw_flavour = extra.get("flavour") or "auto"
    if raw_flavour == "original":
        flavour = "original"
    elif raw_flavour == "superset":
        flavour = "superset"
    elif raw_flavour == "auto":
        flavour = "auto"
    else:
        raise MidjourneyError(f"{where}: extra 'flavour' must be auto, original or superset, got {raw_flavour!r}")
    moderation = compile_patterns(extra.get("moderation_patterns"), field=f"{where}: extra 'moderation_patterns'")
    return ProxyOptions(path_prefix=prefix, flavour=flavour, moderation=moderation)


def state_for(reply_ref: str | None) -> str | None:
    """Our replyRef as the task's ``state`` (at most 255 characters: longer ones are hashed)."""
    if reply_ref is None or len(reply_ref) <= MAX_STATE_LENGTH:
        return reply_ref
    return "airflow-sha256:" + hashlib.sha256(reply_ref.encode()).hexdigest()
