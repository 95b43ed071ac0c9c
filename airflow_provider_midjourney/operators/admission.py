"""The task's side of admission: look before submitting to a full account, and wait for room in the
triggerer instead of sleeping in the worker slot (see :mod:`airflow_provider_midjourney.admission`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_midjourney.admission import job_limit

if TYPE_CHECKING:
    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook

#: A task woken ahead of a predicted free slot waits at most this long in its worker for the slot
#: to show (cheaper than deferring again: a deferral round trip costs the scheduler seconds).
EARLY_WAIT = 8.0
EARLY_POLL = 0.25
#: The longest job id an admission event may name (the id of the running job a task replaces).
MAX_JOB_ID = 512
#: One list call from the worker is bounded by this many seconds.
LIST_SECONDS = 10.0


def connection_limit(hook: MidjourneyBackendHook) -> int | None:
    """The account's concurrent-job limit the connection states (``max_jobs`` extra), if any."""
    return job_limit(hook.connection_settings.extra, hook.midjourney_conn_id)


def running_ids(hook: MidjourneyBackendHook) -> set[str] | None:
    """The ids of the jobs the account runs now (one list call), or None where it cannot be listed."""
    return _watch(hook, lambda _running: False, wait=0.0)[1]


def running_count(hook: MidjourneyBackendHook) -> int | None:
    """How many jobs the account runs now (one list call), or None where it cannot be listed."""
    running = running_ids(hook)
    return None if running is None else len(running)


def still_running(hook: MidjourneyBackendHook, job_id: str, wait: float) -> bool:
    """True when ``job_id`` still runs after waiting up to ``wait`` seconds for it to leave the list.

    A task woken ahead of a predicted end waits for the one job the gate gave it, so two such
    tasks never take the same freed slot."""
    return _still_busy(hook, lambda running: job_id in running, wait)


def account_full(hook: MidjourneyBackendHook, limit: int | None, wait: float = 0.0) -> bool:
    """True when the account is known to be at ``limit``; with ``wait``, first give a slot that long to free."""
    if limit is None:
        return False
    return _still_busy(hook, lambda running: len(running) >= limit, wait)


def _still_busy(hook: MidjourneyBackendHook, busy: Callable[[set[str]], bool], wait: float) -> bool:
    """List the running jobs every EARLY_POLL s until ``busy`` is false (False) or ``wait`` has passed (True).

    Where the list cannot be read there is no verdict: False, and the submit's own answer decides."""
    return _watch(hook, busy, wait)[0]


def _watch(hook: MidjourneyBackendHook, busy: Callable[[set[str]], bool], wait: float) -> tuple[bool, set[str] | None]:
    """(``busy`` still true after ``wait``, the last list answer); (False, None) where none could be read.

    One HTTP client for the whole wait, on the connection ``hook`` has read: a task woken ahead of a
    slot submits as soon as the slot shows, so each look must cost one request, not a set-up."""
    from airflow_provider_midjourney.hooks.base import Capability
    from airflow_provider_midjourney.operators.base import run_bounded
    from airflow_provider_midjourney.retry import NO_RETRY

    if Capability.LIST_RUNNING not in hook.supported_capabilities():
        return False, None
    fresh = hook.sibling(retry=NO_RETRY, timeout=LIST_SECONDS)
    fresh.connection_settings  # noqa: B018 - read the connection here, not in the helper thread

    async def look() -> tuple[bool, set[str] | None]:
        give_up = time.monotonic() + wait
        async with fresh:
            while True:
                try:
                    running = await asyncio.wait_for(fresh.alist_running_job_ids(), timeout=LIST_SECONDS)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    return False, None
                if running is None or not busy(running):
                    return False, running
                if time.monotonic() + EARLY_POLL > give_up:
                    return True, running
                await asyncio.sleep(EARLY_POLL)

    try:
        result: tuple[bool, set[str] | None] = run_bounded(look, wait + 2 * LIST_SECONDS)
    except Exception:
        return False, None  # no verdict: the submit's own answer decides
    return result


def admission_event(event: Any) -> dict[str, Any]:
    """The admission trigger's event, checked (it is stored in Airflow's database).

    ``replaces`` is a job id from the vendor's list: one that is not a short string is dropped (the
    task then waits for the account to be below its limit, as tasks woken early did before)."""
    if not isinstance(event, dict) or event.get("status") not in ("admitted", "timeout", "error"):
        from airflow_provider_midjourney.exceptions import MidjourneyError

        raise MidjourneyError(f"Unexpected admission event: {event!r}")
    checked: dict[str, Any] = dict(event)
    replaces = checked.get("replaces")
    if replaces is not None and not (isinstance(replaces, str) and 0 < len(replaces) <= MAX_JOB_ID):
        del checked["replaces"]
    return checked
