"""Shared polling (``triggers/watch.py``): one list call per interval instead of one GET per job.

Request counts come from the emulator's request log; nothing here asserts a duration.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook
from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook
from airflow_provider_midjourney.retry import NO_RETRY
from airflow_provider_midjourney.triggers import watch
from airflow_provider_midjourney.triggers.midjourney import MidjourneyJobTrigger
from tests.conftest import connection_json

LIST = "/v3/midjourney/jobs"
ONE = "/v3/midjourney/jobs/"
POLL = 0.03


def list_calls(emulator: Any) -> int:
    return sum(1 for r in emulator.requests if r.method == "GET" and r.path == LIST)


def gets(emulator: Any) -> Counter[str]:
    return Counter(r.path[len(ONE) :] for r in emulator.requests_to("GET", ONE))


async def until(condition: Callable[[], bool], what: str, limit: int = 1000) -> None:
    """Bounded wait (``limit`` short sleeps) for something the emulator will see."""
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def collect(trigger: MidjourneyJobTrigger) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]


@pytest.fixture
def running_jobs(emulator, hook) -> Callable[[int], list[str]]:
    """``n`` jobs that run until ``emulator.complete_job``."""

    def make(n: int) -> list[str]:
        emulator.set_channel_limits(emulator.channels[0], max_jobs=15, max_image_jobs=15)
        emulator.never_finish = True
        return [hook.imagine(f"watched {i}").jobid for i in range(n)]

    return make


@pytest.fixture
def no_progress_fetch(monkeypatch) -> None:
    """Counts below are exact: no progress refresh during the test, however slow the machine."""
    monkeypatch.setattr(watch, "PROGRESS_EVERY_POLLS", 10_000)


async def test_waiting_triggers_share_one_list_call_and_each_fetches_twice(
    emulator, running_jobs, no_progress_fetch
) -> None:
    ids = running_jobs(8)
    waiting = asyncio.gather(*(collect(MidjourneyJobTrigger(j, poll_interval=POLL)) for j in ids))
    await until(lambda: len(gets(emulator)) == 8 and list_calls(emulator) >= 6, "six list calls")
    assert all(count == 1 for count in gets(emulator).values())  # asleep: nothing sent per job
    for job_id in ids:
        emulator.complete_job(job_id)
    events = await asyncio.wait_for(waiting, timeout=30)
    assert [[e["status"] for e in evs] for evs in events] == [["completed"]] * 8  # exactly one event each
    assert [evs[0]["job_id"] for evs in events] == ids
    # Its first look, and one GET once it left the list: 8 x 2, however many intervals went by.
    assert gets(emulator) == {j: 2 for j in ids}
    assert watch._Watcher._registry.get(asyncio.get_running_loop(), {}) == {}  # the watcher stopped


async def test_a_failed_list_call_means_one_round_of_per_job_polling(emulator, running_jobs, no_progress_fetch) -> None:
    ids = running_jobs(4)
    waiting = asyncio.gather(*(collect(MidjourneyJobTrigger(j, poll_interval=POLL)) for j in ids))
    await until(lambda: len(gets(emulator)) == 4 and list_calls(emulator) >= 2, "triggers asleep")
    # Every trigger is asleep: the next GET under /jobs is the watcher's list call.
    emulator.fail_next(1, status=500, path_prefix=LIST, method="GET")
    await until(lambda: all(gets(emulator)[j] == 2 for j in ids), "one per-job round")
    listed = list_calls(emulator)
    await until(lambda: list_calls(emulator) >= listed + 3, "list calls again")
    assert all(gets(emulator)[j] == 2 for j in ids)  # back to sharing
    for job_id in ids:
        emulator.complete_job(job_id)
    events = await asyncio.wait_for(waiting, timeout=30)
    assert [[e["status"] for e in evs] for evs in events] == [["completed"]] * 4
    assert gets(emulator) == {j: 3 for j in ids}


class _NoListHook(UseapiV3Hook):
    """A backend whose API cannot list running jobs."""

    async def alist_running_job_ids(self) -> set[str] | None:
        return None


class _LaggingListHook(UseapiV3Hook):
    """A list that does not show one running job (a job listed late, or not at all)."""

    hidden: str = ""

    async def alist_running_job_ids(self) -> set[str] | None:
        running = await super().alist_running_job_ids()
        return None if running is None else running - {self.hidden}


class _Trigger(MidjourneyJobTrigger):
    hook_class: type[MidjourneyBackendHook] = UseapiV3Hook

    async def _hook(self) -> MidjourneyBackendHook:
        return self.hook_class(self.midjourney_conn_id, retry=NO_RETRY, shared_async_client=True)


async def test_without_a_list_call_each_trigger_polls_its_job(emulator, midjourney_conn, running_jobs) -> None:
    [job_id] = running_jobs(1)
    trigger = _Trigger(job_id, poll_interval=POLL)
    trigger.hook_class = _NoListHook
    waiting = asyncio.ensure_future(collect(trigger))
    await until(lambda: gets(emulator)[job_id] >= 5, "per-job polls")
    emulator.complete_job(job_id)
    [event] = await asyncio.wait_for(waiting, timeout=30)
    assert event["status"] == "completed" and list_calls(emulator) == 0


async def test_a_job_missing_from_the_list_is_polled_by_itself(
    emulator, midjourney_conn, running_jobs, no_progress_fetch
) -> None:
    ids = running_jobs(3)
    _LaggingListHook.hidden = ids[0]
    triggers = [_Trigger(j, poll_interval=POLL) for j in ids]
    for trigger in triggers:
        trigger.hook_class = _LaggingListHook
    waiting = asyncio.gather(*(collect(t) for t in triggers))
    await until(lambda: gets(emulator)[ids[0]] >= 5, "the hidden job polled by itself")
    assert gets(emulator)[ids[1]] == 1 and gets(emulator)[ids[2]] == 1
    for job_id in ids:
        emulator.complete_job(job_id)
    events = await asyncio.wait_for(waiting, timeout=30)
    assert [[e["status"] for e in evs] for evs in events] == [["completed"]] * 3
    assert gets(emulator)[ids[1]] == 2 and gets(emulator)[ids[2]] == 2


async def test_progress_is_still_fetched_now_and_then(emulator, running_jobs, monkeypatch) -> None:
    monkeypatch.setattr(watch, "PROGRESS_EVERY_POLLS", 3)
    [job_id] = running_jobs(1)
    waiting = asyncio.ensure_future(collect(MidjourneyJobTrigger(job_id, poll_interval=POLL)))
    await until(lambda: gets(emulator)[job_id] >= 3, "progress fetches")
    emulator.complete_job(job_id)
    [event] = await asyncio.wait_for(waiting, timeout=30)
    assert event["status"] == "completed" and list_calls(emulator) >= 1


async def test_a_cancelled_trigger_leaves_no_subscription(emulator, running_jobs) -> None:
    ids = running_jobs(2)
    tasks = [asyncio.ensure_future(collect(MidjourneyJobTrigger(j, poll_interval=POLL))) for j in ids]
    await until(lambda: list_calls(emulator) >= 2, "triggers asleep")
    [watcher] = watch._Watcher._registry[asyncio.get_running_loop()].values()
    assert len(watcher.subscriptions) == 2
    tasks[0].cancel()
    await asyncio.gather(tasks[0], return_exceptions=True)
    assert [s.job_id for s in watcher.subscriptions.values()] == [ids[1]]
    tasks[1].cancel()
    await asyncio.gather(tasks[1], return_exceptions=True)
    await until(lambda: watch._Watcher._registry.get(asyncio.get_running_loop(), {}) == {}, "watcher stopped")


async def test_triggers_of_a_connection_share_one_lookup(emulator, midjourney_conn, monkeypatch) -> None:
    first, second = await asyncio.gather(
        watch.shared_connection(midjourney_conn), watch.shared_connection(midjourney_conn)
    )
    assert first is second and first.host == emulator.base_url  # one lookup, both callers
    assert await watch.shared_connection(midjourney_conn) is first  # within CONNECTION_TTL
    monkeypatch.setattr(watch, "CONNECTION_TTL", -1.0)
    assert await watch.shared_connection(midjourney_conn) is not first  # then looked up again


async def test_a_failed_lookup_is_not_kept(emulator, midjourney_conn, monkeypatch) -> None:
    with pytest.raises(Exception, match="mj_later"):
        await watch.shared_connection("mj_later")
    monkeypatch.setenv("AIRFLOW_CONN_MJ_LATER", connection_json(emulator.base_url))
    assert (await watch.shared_connection("mj_later")).host == emulator.base_url


# -- how often the list call runs, and that it never queues behind the fetches --------------------


class _RecordingAsyncio:
    """``asyncio`` for watch.py, with the watcher's pauses recorded (the clock, not the API)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        self.sleeps.append(delay)
        return await asyncio.sleep(delay, result)


class _AllRunningHook(UseapiV3Hook):
    """Lists every job as running, without a request: the subscriptions stay asleep."""

    listed = 0

    async def alist_running_job_ids(self) -> set[str] | None:
        type(self).listed += 1
        return {f"job-{i}" for i in range(100)}


@pytest.mark.parametrize(
    ("waiting", "pause"), [(watch.HALF_INTERVAL_FROM - 1, POLL), (watch.HALF_INTERVAL_FROM, POLL / 2)]
)
async def test_from_twenty_waiting_triggers_the_list_call_runs_twice_per_interval(
    midjourney_conn, monkeypatch, waiting: int, pause: float
) -> None:
    clock = _RecordingAsyncio()
    monkeypatch.setattr(watch, "asyncio", clock)
    _AllRunningHook.listed = 0
    async with _AllRunningHook(midjourney_conn, retry=NO_RETRY, shared_async_client=True) as hook:
        turns = [asyncio.ensure_future(watch.wait_for_turn(hook, f"job-{i}", POLL, 60.0)) for i in range(waiting)]
        await until(lambda: _AllRunningHook.listed >= 3, "three list calls")
        assert not any(turn.done() for turn in turns)  # all listed as running: nobody woke
        for turn in turns:
            turn.cancel()
        await asyncio.gather(*turns, return_exceptions=True)
    assert clock.sleeps and set(clock.sleeps) == {pause}


async def test_the_list_call_does_not_queue_behind_the_fetches(emulator, midjourney_conn, running_jobs) -> None:
    from airflow_provider_midjourney.hooks.transport import SKIP_SHARED_QUEUE

    [job_id] = running_jobs(1)
    async with UseapiV3Hook(midjourney_conn, retry=NO_RETRY, shared_async_client=True) as hook:
        await hook.afetch_job(job_id)  # the shared client exists
        assert hook._shared is not None
        gate, held = hook._shared.gate, 0
        while not gate.locked() and held < 1000:  # every place taken, as by a burst of fetches
            await gate.acquire()
            held += 1
        try:
            watcher = watch._Watcher(("test", midjourney_conn))
            running = await asyncio.wait_for(asyncio.ensure_future(watcher._list(hook, 5.0)), timeout=20)
            assert running is not None and job_id in running  # it went past the full queue
            assert SKIP_SHARED_QUEUE.get() is False  # only the watcher's own task skips the queue
            fetch = asyncio.ensure_future(hook.afetch_job(job_id))
            await asyncio.sleep(0.3)
            assert not fetch.done()  # an ordinary fetch still waits for its turn
        finally:
            for _ in range(held):
                gate.release()
        assert (await asyncio.wait_for(fetch, timeout=20)).job_id == job_id
