"""What a finished job leaves behind besides its result: metrics, its connection and cost in the
result, and the same in the events of the task's asset outlets."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_midjourney.cost import merge_costs
from airflow_provider_midjourney.metrics import emit_outcome, outcome_of_event
from airflow_provider_midjourney.retry import NO_RETRY

if TYPE_CHECKING:
    from airflow_provider_midjourney.jobstore import StoredJob

__all__ = ["BALANCE_SECONDS", "annotate_outlets", "conn_of_event", "count_outcome", "with_connection_and_cost"]

#: Reading an account balance after a job is one request bounded by this many seconds.
BALANCE_SECONDS = 5.0


def conn_of_event(event: Any, stored: StoredJob | None, known: str | None, default: str) -> str:
    """The connection that ran the event's job: the trigger names it; else what this try or an
    earlier one recorded; else the operator's ``midjourney_conn_id`` (an older trigger's event)."""
    conn_id = event.get("conn_id") if isinstance(event, dict) else None
    if isinstance(conn_id, str) and conn_id:
        return conn_id
    return known or (stored.conn_id if stored else None) or default


def count_outcome(event: Any, backend: str, submitted_at: float | None) -> None:
    """``midjourney.jobs.<outcome>.<backend>`` and the duration since submission, if the event ends a job."""
    outcome = outcome_of_event(event)
    if outcome is not None:
        emit_outcome(backend, outcome, time.time() - submitted_at if submitted_at else None)


def with_connection_and_cost(result: dict[str, Any], conn_id: str, log: logging.Logger) -> dict[str, Any]:
    """The result plus ``conn_id``, and ``cost`` where the job answer or the account reports one."""
    result = {**result, "conn_id": conn_id}
    cost = merge_costs(result.get("cost"), account_balance(conn_id, log))
    if cost:
        result["cost"] = cost
    else:
        result.pop("cost", None)
    return result


def account_balance(conn_id: str, log: logging.Logger) -> Mapping[str, Any] | None:
    """What the account has left, where the backend reports it: one short request, never raising."""
    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook, hook_for_connection

    try:
        hook = hook_for_connection(conn_id, retry=NO_RETRY, timeout=BALANCE_SECONDS)
        if type(hook).fetch_balance is MidjourneyBackendHook.fetch_balance:
            return None  # the backend reports no balance: no request at all
        with hook:
            return hook.fetch_balance()
    except Exception as exc:
        log.warning("Could not read the account balance of connection %r: %s", conn_id, exc)
        return None


def annotate_outlets(context: Any, outlets: Iterable[Any], result: dict[str, Any], log: logging.Logger) -> None:
    """The job, its connection and its cost in the events of the task's asset outlets."""
    events = context.get("outlet_events") if hasattr(context, "get") else None
    if events is None:  # not "not events": Airflow's accessors are empty until first indexed
        return
    extra = {key: result[key] for key in ("job_id", "conn_id", "backend", "cost") if result.get(key) is not None}
    for outlet in outlets or ():
        try:
            events[outlet].extra.update(extra)
        except Exception as exc:  # only decoration: the asset event happens anyway
            log.warning("Could not annotate the asset event of %s: %s", outlet, exc)
