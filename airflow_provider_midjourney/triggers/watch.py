"""Shared polling: the triggers of one event loop watch the jobs of one connection together.

A triggerer with thousands of waiting triggers used to send one ``GET`` per job per poll
interval. Where the API lists every running job in one call
(:meth:`~airflow_provider_midjourney.hooks.base.MidjourneyBackendHook.alist_running_job_ids`),
one :class:`_Watcher` per (event loop, hook class, connection) makes that call once per interval
and wakes only the triggers whose job left the list; the others stay asleep and send nothing.

Each trigger stays independent, serialisable and restart-safe: nothing about the watcher is
serialised, a trigger only *subscribes* while it sleeps between two of its own fetches, and the
fetch that decides its event is still its own ``GET`` of its job. So a trigger wakes to fetch
its job when

* its job is not in the latest list (finished, failed, moderated; or not listed yet, or listed
  late: then the fetch shows it still running and the trigger subscribes again, i.e. it falls
  back to polling that one job);
* the list call failed, or the backend has no list call (``None``): plain per-job polling,
  paced by the trigger's own ``poll_interval``;
* its progress is due to be shown again (:data:`PROGRESS_EVERY_POLLS`), or its deadline comes.

The triggers of a connection also share its lookup (:func:`shared_connection`): in Airflow 3 a
trigger's connection lookup is a request to the triggerer's supervisor process, which serves them
one at a time between its database work; thousands of triggers starting together queued there
for minutes before their first poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook

log = logging.getLogger(__name__)

#: A job that is still running is fetched anyway every this many poll intervals, to show its
#: progress (60 s at the default 5 s): about 0.08 requests per job and interval...
PROGRESS_EVERY_POLLS = 12
#: ...but all the triggers of a connection in one event loop fetch at most about this many jobs per
#: interval for progress (more waiting jobs: each is shown less often). The shared pool serves
#: at most ~SHARED_POOL_SIZE / latency requests a second (128 at 0.25 s); progress must not crowd out the
#: fetches that detect finished jobs.
PROGRESS_FETCHES_PER_INTERVAL = 20
#: From this many waiting triggers on, the list call is made twice per poll interval: it costs one
#: request whatever their number, and halves the time from a job's end to its trigger's fetch.
HALF_INTERVAL_FROM = 20
#: A list call is given up after this long (seconds; or the poll interval, if longer).
LIST_TIMEOUT = 30.0
#: How long (seconds) one connection lookup serves the triggers of an event loop: a changed token
#: reaches triggers that start later than this.
CONNECTION_TTL = 60.0

_connections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, tuple[float, asyncio.Task[Any]]]] = (
    weakref.WeakKeyDictionary()
)


async def shared_connection(conn_id: str) -> Any:
    """``conn_id``'s connection, looked up once per event loop and :data:`CONNECTION_TTL`.

    Concurrent callers wait for the same lookup; a failed lookup is not kept (the next caller
    tries again). Cancelling one caller does not cancel the lookup the others wait for.
    """
    from airflow_provider_midjourney.hooks.base import aget_connection

    loop = asyncio.get_running_loop()
    cache = _connections.setdefault(loop, {})
    entry = cache.get(conn_id)
    now = time.monotonic()
    stale = entry is None or now - entry[0] > CONNECTION_TTL
    if entry is not None and entry[1].done() and (entry[1].cancelled() or entry[1].exception() is not None):
        stale = True
    if stale or entry is None:
        entry = cache[conn_id] = (now, loop.create_task(aget_connection(conn_id)))
    return await asyncio.shield(entry[1])


# What a subscription's future resolves to.
_LEFT_LIST = "left"  # not in the latest list: fetch it now
_NO_LIST = "no-list"  # the list call failed or the backend cannot list: poll the job itself


class _Subscription:
    __slots__ = ("future", "hook", "interval", "job_id")

    def __init__(self, job_id: str, hook: MidjourneyBackendHook, interval: float) -> None:
        self.job_id = job_id
        self.hook = hook
        self.interval = interval
        self.future: asyncio.Future[str] = asyncio.get_running_loop().create_future()


class _Watcher:
    """One list call per interval for every trigger of one connection in one event loop."""

    _registry: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], _Watcher]]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, key: tuple[Any, ...]) -> None:
        self.key = key
        self.subscriptions: dict[int, _Subscription] = {}
        self.task: asyncio.Task[None] | None = None
        self.listable = True  # False once the backend answered None: no list call at all

    @classmethod
    def for_hook(cls, hook: MidjourneyBackendHook) -> _Watcher:
        loop = asyncio.get_running_loop()
        key = (type(hook), hook.midjourney_conn_id)
        watchers = cls._registry.setdefault(loop, {})
        watcher = watchers.get(key)
        if watcher is None:
            watcher = watchers[key] = cls(key)
        return watcher

    def subscribe(self, job_id: str, hook: MidjourneyBackendHook, interval: float) -> _Subscription:
        sub = _Subscription(job_id, hook, interval)
        self.subscriptions[id(sub)] = sub
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name=f"midjourney-watch-{self.key[1]}")
        return sub

    def unsubscribe(self, sub: _Subscription) -> None:
        self.subscriptions.pop(id(sub), None)

    async def _run(self) -> None:
        """While anyone subscribes: every interval, one list call, and wake who must fetch."""
        try:
            while self.subscriptions:
                interval = min(s.interval for s in self.subscriptions.values())
                if len(self.subscriptions) >= HALF_INTERVAL_FROM:
                    interval /= 2
                await asyncio.sleep(interval)
                if not self.subscriptions:
                    break
                hook = next(reversed(self.subscriptions.values())).hook  # its trigger is asleep: hook open
                running = await self._list(hook, interval)
                self._deliver(running)
        finally:
            watchers = self._registry.get(asyncio.get_running_loop(), {})
            if watchers.get(self.key) is self and not self.subscriptions:
                del watchers[self.key]
            self.task = None

    async def _list(self, hook: MidjourneyBackendHook, interval: float) -> set[str] | None:
        from airflow_provider_midjourney.hooks.transport import SKIP_SHARED_QUEUE

        # Not behind the fetches queued on the shared client: when many jobs finish at once, the
        # list call waiting for them would delay every other trigger's news by that queue.
        SKIP_SHARED_QUEUE.set(True)  # this task's own context: only its requests skip the queue
        try:
            running = await asyncio.wait_for(hook.alist_running_job_ids(), timeout=max(interval, LIST_TIMEOUT))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure: this round, every trigger polls its own job
            log.warning("Listing the running jobs of %r failed; polling each job instead: %s", self.key[1], exc)
            return None
        if running is None:
            self.listable = False
        return running

    def _deliver(self, running: set[str] | None) -> None:
        woken = []
        for key, sub in self.subscriptions.items():
            if running is None:
                verdict = _NO_LIST
            elif sub.job_id not in running:
                verdict = _LEFT_LIST
            else:
                continue  # still running: it sleeps on, and sends nothing
            if not sub.future.done():
                sub.future.set_result(verdict)
            woken.append(key)
        for key in woken:
            del self.subscriptions[key]


async def wait_for_turn(hook: MidjourneyBackendHook, job_id: str, poll_interval: float, remaining: float) -> None:
    """Sleep until this trigger should fetch its job again (see the module docstring).

    Called by the trigger between two fetches, in place of ``asyncio.sleep(poll_interval)``.
    """
    started = time.monotonic()
    watcher = _Watcher.for_hook(hook)
    if not watcher.listable:
        await asyncio.sleep(min(poll_interval, remaining))
        return
    sub = watcher.subscribe(job_id, hook, poll_interval)
    polls = max(PROGRESS_EVERY_POLLS, len(watcher.subscriptions) / PROGRESS_FETCHES_PER_INTERVAL)
    try:
        verdict = await asyncio.wait_for(sub.future, timeout=min(remaining, polls * poll_interval))
    except TimeoutError:
        return  # progress due, or the deadline: fetch
    finally:
        watcher.unsubscribe(sub)
    if verdict == _NO_LIST:
        # Per-job polling for this round: keep to the trigger's own pace.
        await asyncio.sleep(max(0.0, started + min(poll_interval, remaining) - time.monotonic()))
