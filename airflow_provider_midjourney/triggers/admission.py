"""Waiting for room on a busy account in the triggerer, first come first served.

A task whose account is full defers to :class:`MidjourneyAdmissionTrigger`. The triggers of one
connection in one event loop share a :class:`_Gate`: one list call of the account's running jobs per
interval, whatever their number, and each round it wakes as many waiting tasks, oldest first, as
the account has free slots. A slot is counted as taken from the moment its task is woken until its
job shows in the list, so one free slot is never given to two tasks.

Once the gate has seen a few jobs finish it knows how long a job runs and how long a woken task
takes to get its job listed (the lead), and it wakes the next task that much before a slot frees:
the account refills back to back instead of idling while the scheduler starts the task. Such an
early task is told which running job it replaces and submits once that job has left the list
(:mod:`airflow_provider_midjourney.operators.admission`).

Where the backend has no list call, a waiting task is woken after the busy answer's
``Retry-After`` or a doubling backoff. Several triggerers each keep their own gate; the vendor's
busy answer remains the arbiter, and a task that meets it again simply waits again.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_midjourney.admission import backoff_seconds
from airflow_provider_midjourney.backends import hook_class_for
from airflow_provider_midjourney.checks import check_seconds
from airflow_provider_midjourney.exceptions import MidjourneyError, redact
from airflow_provider_midjourney.hooks.base import Capability, MidjourneyBackendHook
from airflow_provider_midjourney.retry import NO_RETRY
from airflow_provider_midjourney.triggers.watch import LIST_TIMEOUT, shared_connection

log = logging.getLogger(__name__)

#: A woken task whose job is not listed after this many seconds no longer holds a slot.
IN_FLIGHT_TTL = 60.0
#: Job durations and leads remembered per connection (the median of these is used).
SAMPLES = 20
#: Finished jobs seen before the gate starts waking tasks ahead of a predicted end.
MIN_DURATION_SAMPLES = 3
#: A predicted lead is capped here (seconds): a slow scheduler must not make the gate wake everyone.
MAX_LEAD = 30.0
#: A task is not woken before it has waited this long (seconds). Airflow fails a task whose trigger fires
#: while the process that deferred it is still exiting ("Task Instance not found"), seen within ~2 s
#: on a loaded machine.
MIN_WAIT = 3.0
ADMITTED, NO_LIST = "admitted", "no-list"


class _Waiter:
    __slots__ = ("early", "future", "limit", "queued_at", "replaces", "since")

    def __init__(self, queued_at: float, limit: int | None, since: float = -MIN_WAIT) -> None:
        self.queued_at = queued_at
        self.limit = limit
        self.since = since  # monotonic time this trigger started waiting
        self.early = False
        self.replaces: str | None = None  # woken early: the running job whose end it waits for
        self.future: asyncio.Future[str] = asyncio.get_running_loop().create_future()


class _Gate:
    """The admission queue of one connection in one event loop."""

    _registry: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], _Gate]]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, key: tuple[Any, ...]) -> None:
        self.key = key
        self.waiters: dict[int, _Waiter] = {}
        # (monotonic time, queued_at) of each wake whose job is not listed yet
        self.in_flight: deque[tuple[float, float]] = deque()
        self.first_seen: dict[str, float] = {}
        self.durations: deque[float] = deque(maxlen=SAMPLES)
        self.leads: deque[float] = deque(maxlen=SAMPLES)
        self.claimed: dict[str, float] = {}  # running job: queued_at of the task woken to replace it
        self.peak = 0  # most jobs seen running at once: the limit where none is configured
        self.interval = 5.0
        self.ripe_in: float | None = None  # seconds until a waiter with a free slot may be woken
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def for_hook(cls, hook: MidjourneyBackendHook) -> _Gate:
        gates = cls._registry.setdefault(asyncio.get_running_loop(), {})
        key = (type(hook), hook.midjourney_conn_id)
        gate = gates.get(key)
        if gate is None:
            gate = gates[key] = cls(key)
        return gate

    async def wait(
        self, hook: MidjourneyBackendHook, queued_at: float, limit: int | None, interval: float, remaining: float
    ) -> tuple[str, str | None]:
        """Until this task may submit: (``admitted`` or ``no-list``, the job it replaces if woken early)."""
        waiter = _Waiter(queued_at, limit, since=time.monotonic())
        self.add(waiter)
        self.interval = min(self.interval, interval) if self.task is not None else interval
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(hook), name=f"midjourney-admit-{self.key[1]}")
        try:
            verdict = await asyncio.wait_for(asyncio.shield(waiter.future), timeout=max(remaining, 0.0))
        finally:
            self.waiters.pop(id(waiter), None)
        return verdict, waiter.replaces

    def add(self, waiter: _Waiter) -> None:
        """Queue ``waiter``; if its task was woken before and came back without a job, give its slot back.

        A task keeps its ``queued_at`` when it waits again. Left counted, its slot would stay taken for
        good: a listed job releases the oldest wake, so the extra one is always renewed, never expired.
        """
        for index, (_, queued_at) in enumerate(self.in_flight):
            if queued_at == waiter.queued_at:
                del self.in_flight[index]
                break
        self.claimed = {job: q for job, q in self.claimed.items() if q != waiter.queued_at}
        self.waiters[id(waiter)] = waiter

    async def _run(self, hook: MidjourneyBackendHook) -> None:
        try:
            while self.waiters:
                running = await self._list(hook)
                if running is None:
                    self._wake_all(NO_LIST)
                    break
                self.admit(running, time.monotonic())
                await asyncio.sleep(self.interval if self.ripe_in is None else min(self.interval, self.ripe_in + 0.05))
        finally:
            gates = self._registry.get(asyncio.get_running_loop(), {})
            if gates.get(self.key) is self and not self.waiters:
                del gates[self.key]
            self.task = None

    async def _list(self, hook: MidjourneyBackendHook) -> set[str] | None:
        try:
            return await asyncio.wait_for(hook.alist_running_job_ids(), timeout=max(self.interval, LIST_TIMEOUT))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "Listing the running jobs of %r failed; waking waiting tasks to try: %s", self.key[1], redact(str(exc))
            )
            return None

    def admit(self, running: set[str], now: float) -> list[_Waiter]:
        """Learn from one list answer, then wake the oldest waiters that fit; returns them.

        Slots free now go to tasks that submit at once. A job predicted to end within the lead goes
        to one more task, woken early with that job's id (``replaces``): it submits once that job has
        left the list, so early tasks never race each other for the same freed slot.
        """
        for job_id in running - self.first_seen.keys():
            self.first_seen[job_id] = now
            if self.in_flight:
                self.leads.append(now - self._match_wake(now))
        for job_id in self.first_seen.keys() - running:
            self.durations.append(now - self.first_seen.pop(job_id))
        while self.in_flight and now - self.in_flight[0][0] > IN_FLIGHT_TTL:
            self.in_flight.popleft()
        self.claimed = {job: queued_at for job, queued_at in self.claimed.items() if job in running}
        self.peak = max(self.peak, len(running) + len(self.in_flight))
        limits = [w.limit for w in self.waiters.values() if w.limit]
        limit = max(limits) if limits else max(self.peak, 1)
        # A claimed job's successor is in flight while the job still runs: count that slot once.
        free = limit - len(running) - len(self.in_flight) + len(self.claimed)
        ending = [job for job in self._ending_soon(running, now) if job not in self.claimed]
        ahead = max(0, min(len(ending), free + len(ending)))
        queue = sorted(self.waiters.values(), key=lambda w: w.queued_at)[: max(0, free) + ahead]
        woken = [w for w in queue if now - w.since >= MIN_WAIT]
        # A slot is free but its waiter is too fresh: look again as soon as it may be woken.
        self.ripe_in = min((MIN_WAIT - (now - w.since) for w in queue if w not in woken), default=None)
        targets = iter(ending[:ahead])
        for index, waiter in enumerate(woken):
            if index >= max(0, free):
                waiter.early = True
                waiter.replaces = next(targets)
                self.claimed[waiter.replaces] = waiter.queued_at
            waiter.future.set_result(ADMITTED)
            self.waiters.pop(id(waiter), None)
            self.in_flight.append((now, waiter.queued_at))
        return woken

    def _match_wake(self, now: float) -> float:
        """Forget the wake a newly listed job most likely came from, and return its time.

        That is the wake whose age is nearest the typical lead (the oldest until a lead is known).
        Always taking the oldest would let a woken task that never submits (it failed first) hold
        a slot for good: each listed job would take an older mark and leave the dead one renewed.
        """
        index = 0
        if self.leads:
            lead = statistics.median(self.leads)
            index = min(range(len(self.in_flight)), key=lambda i: abs(now - self.in_flight[i][0] - lead))
        woken_at = self.in_flight[index][0]
        del self.in_flight[index]
        return woken_at

    def _ending_soon(self, running: set[str], now: float) -> list[str]:
        """The running jobs predicted to end within the lead, soonest first (none until enough is known)."""
        if len(self.durations) < MIN_DURATION_SAMPLES or not self.leads:
            return []
        typical = statistics.median(self.durations)
        lead = min(statistics.median(self.leads), MAX_LEAD)
        ending = [job for job in running if self.first_seen[job] + typical - lead <= now]
        return sorted(ending, key=lambda job: (self.first_seen[job], job))

    def _wake_all(self, verdict: str) -> None:
        for waiter in list(self.waiters.values()):
            if not waiter.future.done():
                waiter.future.set_result(verdict)
        self.waiters.clear()


class MidjourneyAdmissionTrigger(BaseTrigger):
    """Wait until the connection's account has room for one more job, then wake the task once.

    :param midjourney_conn_id: the connection whose account is full.
    :param queued_at: epoch seconds when the task first found the account full; kept when the task
        defers again, so it keeps its place in the queue.
    :param deadline: epoch seconds after which the task stops waiting (event ``timeout``).
    :param not_before: epoch seconds before which the task is not woken (the busy answer's ``Retry-After``).
    :param limit: the account's concurrent-job limit, if known (connection extra or a busy answer).
    :param poll_interval: seconds between two list calls of the shared gate.
    :param attempt: how many times the task met a full account in this try (paces the backoff
        where the backend has no list call).
    :param try_number: echoed in the event, as by the job trigger.
    """

    _logger_name = "airflow_provider_midjourney.triggers.admission"

    def __init__(
        self,
        midjourney_conn_id: str,
        queued_at: float,
        deadline: float,
        not_before: float | None = None,
        limit: int | None = None,
        poll_interval: float = 5.0,
        attempt: int = 1,
        try_number: int | None = None,
    ) -> None:
        super().__init__()
        self.midjourney_conn_id = midjourney_conn_id
        self.queued_at = check_seconds(queued_at, "queued_at (epoch seconds)", minimum=0, maximum=1e11)
        self.deadline = check_seconds(deadline, "deadline (epoch seconds)", minimum=0, maximum=1e11)
        self.not_before = (
            None
            if not_before is None
            else check_seconds(not_before, "not_before (epoch seconds)", minimum=0, maximum=1e11)
        )
        self.limit = None if limit is None else int(limit)
        self.poll_interval = check_seconds(poll_interval, "poll_interval", minimum=0.01, maximum=3600)
        self.attempt = int(attempt)
        self.try_number = try_number

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "midjourney_conn_id": self.midjourney_conn_id,
                "queued_at": self.queued_at,
                "deadline": self.deadline,
                "not_before": self.not_before,
                "limit": self.limit,
                "poll_interval": self.poll_interval,
                "attempt": self.attempt,
                "try_number": self.try_number,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event: dict[str, Any]
        try:
            event = await self.wait()
        except MidjourneyError as exc:
            event = {"status": "error", "message": redact(str(exc))}
        except Exception as exc:
            event = {"status": "error", "message": redact(f"Waiting for room broke off: {type(exc).__name__}: {exc}")}
        yield TriggerEvent(
            {
                **event,
                "queued_at": self.queued_at,
                "attempt": self.attempt,
                "try_number": self.try_number,
                # with fallback_conn_ids, the task resumes its chain at this connection
                "conn_id": self.midjourney_conn_id,
            }
        )

    async def wait(self) -> dict[str, Any]:
        if self.not_before is not None:
            await asyncio.sleep(max(0.0, min(self.not_before, self.deadline) - time.time()))
        conn = await shared_connection(self.midjourney_conn_id)
        hook_class = hook_class_for(conn.conn_type, self.midjourney_conn_id)
        verdict, replaces = NO_LIST, None
        if Capability.LIST_RUNNING in hook_class.capabilities:
            hook = hook_class(self.midjourney_conn_id, connection=conn, retry=NO_RETRY, shared_async_client=True)
            async with hook:
                if Capability.LIST_RUNNING in hook.supported_capabilities():
                    try:
                        verdict, replaces = await _Gate.for_hook(hook).wait(
                            hook, self.queued_at, self.limit, self.poll_interval, self.deadline - time.time()
                        )
                    except TimeoutError:
                        return self._timeout()
        if verdict == NO_LIST:
            if self.not_before is None:
                pause = min(backoff_seconds(self.attempt), max(0.0, self.deadline - time.time()))
                await asyncio.sleep(pause)
            if time.time() >= self.deadline:
                return self._timeout()
        if replaces is not None:
            return {"status": "admitted", "early": True, "replaces": replaces}
        return {"status": "admitted", "early": False}

    def _timeout(self) -> dict[str, Any]:
        waited = time.time() - self.queued_at
        return {
            "status": "timeout",
            "message": f"The account of connection {self.midjourney_conn_id!r} stayed full for {waited:.0f} s,"
            " past the task's admission_timeout; nothing was submitted",
        }
