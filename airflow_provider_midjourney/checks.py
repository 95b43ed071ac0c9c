"""Number checks shared by operators, the sensor, the trigger and the hooks.

Kept apart from :mod:`~airflow_provider_midjourney.job_requests` (pydantic request models)
because operator constructors run on every DAG parse: a DAG file that uses the operators should
pay for these few functions, not for the models, hooks and triggers that only ``execute`` needs.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError

__all__ = [
    "DEFAULT_TRANSIENT_ERROR_TIMEOUT",
    "check_count",
    "check_job_timeout_extra",
    "check_number",
    "check_seconds",
    "check_trigger_numbers",
]

#: Default seconds of transient polling errors in a row before the wait gives up.
DEFAULT_TRANSIENT_ERROR_TIMEOUT = 600.0


def check_number(
    value: Any,
    field: str,
    *,
    minimum: float,
    maximum: float,
    integer: bool = False,
) -> float:
    """A finite number in ``[minimum, maximum]``; raise naming ``field`` otherwise.

    Strings, booleans, NaN and infinities are refused: a ``"5"`` compared with a number is a
    TypeError deep inside a task, a ``0`` or ``nan`` poll interval is a request storm, and a
    ``1e15`` timeout overflows ``timedelta``. Used at construction for plain values and at
    execute for templated ones.
    """
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MidjourneyInvalidRequestError(
            f"{field}: expected a number between {minimum:g} and {maximum:g}, got {type(value).__name__} {value!r:.40}"
        )
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise MidjourneyInvalidRequestError(f"{field}: must be between {minimum:g} and {maximum:g}, got {value!r:.40}")
    if integer and not float(value).is_integer():
        raise MidjourneyInvalidRequestError(f"{field}: must be a whole number, got {value!r}")
    return float(value)


def check_seconds(value: Any, field: str, *, minimum: float = 0.01, maximum: float = 7 * 24 * 3600.0) -> float:
    """Seconds (a number or a ``timedelta``) in a sane range; raise naming ``field``."""
    return check_number(value, field, minimum=minimum, maximum=maximum)


def check_count(value: Any, field: str, *, minimum: int = 1, maximum: int = 1000) -> int:
    """A whole number in a sane range; raise naming ``field``."""
    return int(check_number(value, field, minimum=minimum, maximum=maximum, integer=True))


def check_trigger_numbers(
    poll_interval: Any, max_consecutive_errors: Any, transient_error_timeout: Any
) -> tuple[float, int | None, float]:
    """The polling numbers, checked (finite, in range, not text), naming the bad field."""
    return (
        check_seconds(poll_interval, "poll_interval", minimum=0.01, maximum=3600.0),
        None if max_consecutive_errors is None else check_count(max_consecutive_errors, "max_consecutive_errors"),
        check_seconds(transient_error_timeout, "transient_error_timeout", minimum=0.01, maximum=7 * 24 * 3600.0),
    )


def check_job_timeout_extra(value: Any, conn_id: str, *, minimum: int, maximum: int, api: str) -> int | None:
    """A connection's ``job_timeout`` extra (the vendor's own job timeout): whole seconds in
    ``[minimum, maximum]``, numbers given as text accepted (the UI form stores text); empty: None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(value)
        if isinstance(value, bool) or not seconds.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        seconds = -1
    if not minimum <= seconds <= maximum:
        from airflow_provider_midjourney.exceptions import MidjourneyConfigurationError

        raise MidjourneyConfigurationError(
            f"Connection {conn_id!r}: extra 'job_timeout' must be a whole number of seconds from {minimum} to"
            f" {maximum} ({api}'s job timeout), got {value!r}"
        )
    return int(seconds)
