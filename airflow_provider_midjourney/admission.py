"""Admission: how many jobs an account runs at once, and how long a busy answer asks us to wait.

A Midjourney account runs a fixed number of jobs at once (3 on Basic/Standard, 12-15 on Pro/Mega).
A task whose submit meets a full account defers to
:class:`~airflow_provider_midjourney.triggers.admission.MidjourneyAdmissionTrigger` instead of
sleeping in its worker slot; the triggers of a connection wake their tasks first come, first served
as the account's running-jobs list shows free slots. The vendor's own busy answer stays the arbiter:
a task admitted too early meets it and defers again, keeping its place in the queue.

Kept free of httpx, pydantic and Airflow imports: operators import it at DAG-parse time.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from typing import Any

from airflow_provider_midjourney.exceptions import MidjourneyAPIError, MidjourneyBusyError, MidjourneyConfigurationError

#: Connection extras that state the account's concurrent-job limit (``maxJobs`` is useapi's spelling).
LIMIT_EXTRAS = ("max_jobs", "maxJobs")
MAX_LIMIT = 1000
#: Longest wait a ``Retry-After`` header may ask for; a longer one is capped (an hour).
MAX_RETRY_AFTER = 3600.0
#: Without a list call, a waiting task is woken after this backoff (doubling, with jitter).
BACKOFF_INITIAL, BACKOFF_MAX = 5.0, 60.0


def job_limit(extra: Mapping[str, Any], conn_id: str) -> int | None:
    """The account's concurrent-job limit from the connection's extras, or None when not given."""
    for key in LIMIT_EXTRAS:
        value = extra.get(key)
        if value is None or value == "":
            continue
        try:
            number = int(str(value).strip())
        except ValueError:
            number = 0
        if not 1 <= number <= MAX_LIMIT:
            raise MidjourneyConfigurationError(
                f"Connection {conn_id!r}: extra {key!r} must be a whole number of concurrent jobs from 1 to"
                f" {MAX_LIMIT} (the account plan's limit: 3 on Basic/Standard, 12-15 on Pro/Mega), got {value!r}"
            )
        return number
    return None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), bounded; None if absent or bad."""
    if not value or len(value) > 64:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(text) if _looks_like_date(text) else None
        if parsed is None or parsed.tzinfo is None:
            return None
        seconds = parsed.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def note_retry_after(error: MidjourneyAPIError, headers: Mapping[str, str]) -> MidjourneyAPIError:
    """``error``, carrying the answer's ``Retry-After`` when it is a busy answer (hooks raise the result)."""
    if isinstance(error, MidjourneyBusyError):
        error.retry_after = retry_after_seconds(headers.get("retry-after"))
    return error


def _looks_like_date(text: str) -> bool:
    try:
        return email.utils.parsedate_tz(text) is not None
    except (TypeError, ValueError, IndexError):
        return False


def backoff_seconds(attempt: int) -> float:
    """The pause before waking a task again where no list call can show a free slot."""
    ceiling = min(BACKOFF_MAX, BACKOFF_INITIAL * 2 ** max(0, min(attempt, 16)))
    return random.uniform(ceiling / 2, ceiling)
