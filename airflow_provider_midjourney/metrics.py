"""Job metrics through Airflow's own ``Stats``, so they go wherever the deployment sends Airflow's.

Emitted on the task side, where the outcome is known (``execute``/``execute_complete``); the
triggerer only polls. Every name starts with ``midjourney.`` and carries the backend in the name
(plain StatsD drops tags) and in the ``backend`` tag (OpenTelemetry, Datadog, InfluxDB-style
StatsD). See docs/metrics.md for the list and a dashboard query.

A metric is never worth a failed task: every emission swallows its own errors.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

__all__ = ["OUTCOMES", "emit_failover", "emit_outcome", "emit_submitted", "outcome_of_event"]

log = logging.getLogger(__name__)

#: Terminal outcomes counted as ``midjourney.jobs.<outcome>.<backend>``.
OUTCOMES = ("completed", "failed", "moderated", "cancelled", "timed_out")
# A backend name comes from our own hook classes; anything else is squashed to keep a name valid.
_UNSAFE = re.compile(r"[^a-z0-9_]")


def _stats() -> Any:
    try:  # Airflow >= 3.2: the Task SDK's own module
        from airflow.sdk.observability.stats import Stats
    except ImportError:  # Airflow 3.0/3.1
        from airflow.stats import Stats  # type: ignore[attr-defined,no-redef]
    return Stats


def _part(value: str | None) -> str:
    return _UNSAFE.sub("_", (value or "unknown").lower())[:40] or "unknown"


def _incr(name: str, tags: dict[str, str]) -> None:
    try:
        _stats().incr(name, tags=tags)
    except Exception as exc:
        log.debug("Metric %s not sent: %s", name, exc)


def emit_submitted(backend: str) -> None:
    """One job created (not counted when a retry reattaches to an existing job)."""
    _incr(f"midjourney.jobs.submitted.{_part(backend)}", {"backend": _part(backend)})


def emit_outcome(backend: str, outcome: str, seconds: float | None = None) -> None:
    """A job reached ``outcome`` (one of :data:`OUTCOMES`); ``seconds`` since it was submitted."""
    if outcome not in OUTCOMES:
        return
    tags = {"backend": _part(backend), "outcome": outcome}
    _incr(f"midjourney.jobs.{outcome}.{_part(backend)}", tags)
    if seconds is not None and seconds >= 0:
        name = f"midjourney.job_duration.{_part(backend)}"
        try:
            # A timedelta: every Airflow stats logger converts it to its own unit (StatsD: ms).
            _stats().timing(name, timedelta(seconds=seconds), tags=tags)
        except Exception as exc:
            log.debug("Metric %s not sent: %s", name, exc)


def emit_failover(backend: str, reason: str) -> None:
    """A connection of ``backend`` was passed over for ``reason`` (auth, no_credits, connect, unsupported)."""
    tags = {"backend": _part(backend), "reason": _part(reason)}
    _incr(f"midjourney.failovers.{_part(backend)}.{_part(reason)}", tags)


def outcome_of_event(event: Any) -> str | None:
    """The outcome a trigger event reports, or None for an event that is not a job's end (an error)."""
    status = event.get("status") if isinstance(event, dict) else None
    if status == "timeout":
        return "timed_out"
    return status if status in ("completed", "failed", "moderated") else None
