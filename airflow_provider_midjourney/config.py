"""The ``[midjourney]`` section of Airflow's configuration: the provider's tunables in one place.

Declared in the provider info (``get_provider_info()["config"]``), so ``airflow config list`` shows
them with their defaults; set them like any Airflow option, e.g. ``AIRFLOW__MIDJOURNEY__POLL_INTERVAL=10``.
Each is read where it is used (not at import), so a changed environment takes effect in the next task,
trigger or request. A value that is not allowed fails with the option's name and the allowed range.
"""

from __future__ import annotations

import configparser
import os
from typing import Any

SECTION = "midjourney"


def _option(description: str, type_: str, default: str, example: str | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "version_added": "0.5.0",
        "type": type_,
        "example": example,
        "default": default,
    }


#: The section as Airflow's provider-info schema describes config (``airflow config list`` shows it);
#: the gallery relay's ``relay_allowed_hosts`` is declared beside it (plugins/addresses.py).
OPTIONS: dict[str, dict[str, Any]] = {
    "default_deferrable": _option(
        "Default for the operators' and sensor's ``deferrable`` argument. Empty: follow ``[operators]"
        " default_deferrable`` when it is set in airflow.cfg or the environment, else True (wait in the"
        " triggerer, which must be running: without one, deferred tasks wait until their timeout).",
        "boolean",
        "",
        "False",
    ),
    "poll_interval": _option(
        "Seconds between two status checks of a job when a task names no ``poll_interval`` (0.01-3600).",
        "float",
        "5.0",
    ),
    "shared_pool_size": _option(
        "HTTP connections the triggerer's shared client keeps per event loop (1-1024); it bounds how many"
        " status checks run at once for all deferred Midjourney tasks together.",
        "integer",
        "32",
    ),
    "progress_log_interval": _option(
        "Seconds between two 'progress n%' log lines of one waiting job (0-86400; status changes are always logged).",
        "float",
        "30.0",
    ),
}

SECTION_INFO: dict[str, Any] = {
    "description": "Tunables of the Midjourney provider (airflow-provider-midjourney).",
    "options": OPTIONS,
}


def _raw(key: str) -> str:
    from airflow.configuration import conf

    value = conf.get(SECTION, key, fallback=OPTIONS[key]["default"])
    return str(value if value is not None else OPTIONS[key]["default"]).strip()


def _number(key: str, minimum: float, maximum: float) -> float:
    raw = _raw(key)
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not minimum <= value <= maximum:  # also refuses nan and inf
        raise ValueError(f"[{SECTION}] {key}: must be a number from {minimum:g} to {maximum:g}, got {raw!r}")
    return value


def _integer(key: str, minimum: int, maximum: int) -> int:
    raw = _raw(key)
    if not raw.isdigit() or not minimum <= int(raw) <= maximum:
        raise ValueError(f"[{SECTION}] {key}: must be a whole number from {minimum} to {maximum}, got {raw!r}")
    return int(raw)


def _boolean(section: str, key: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "t", "1", "yes", "on"):
        return True
    if lowered in ("false", "f", "0", "no", "off"):
        return False
    raise ValueError(f"[{section}] {key}: must be true or false, got {raw!r}")


def _operators_default_deferrable() -> bool | None:
    """``[operators] default_deferrable`` when someone chose it, else None.

    Airflow's own default for it is False, and Airflow writes that default into every airflow.cfg it
    generates; taking it would silently turn every Midjourney task into a worker-blocking poll. So
    only an environment variable counts either way, and the file only when it turns deferral on.
    """
    from airflow.configuration import conf

    names = ("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE_CMD")
    if any(name in os.environ for name in names):
        return bool(conf.getboolean("operators", "default_deferrable"))
    in_file = configparser.RawConfigParser.has_option(conf, "operators", "default_deferrable")
    if in_file and conf.getboolean("operators", "default_deferrable"):
        return True
    return None


def default_deferrable() -> bool:
    raw = _raw("default_deferrable")
    if raw:
        return _boolean(SECTION, "default_deferrable", raw)
    operators = _operators_default_deferrable()
    return True if operators is None else operators


def poll_interval() -> float:
    return _number("poll_interval", 0.01, 3600.0)


def shared_pool_size() -> int:
    return _integer("shared_pool_size", 1, 1024)


def progress_log_interval() -> float:
    return _number("progress_log_interval", 0.0, 86400.0)
