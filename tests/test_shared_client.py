"""The pooled AsyncClient that triggers share (``UseapiV3Hook(shared_async_client=True)``).

A triggerer runs thousands of triggers in one event loop; a client of their own would cost each
an SSL context (~0.7 MB, ~20 ms of CPU) and a socket (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_midjourney.exceptions import MidjourneyAPIError, MidjourneyServerError
from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook, _SharedAsyncClient
from airflow_provider_midjourney.retry import NO_RETRY
from airflow_provider_midjourney.triggers.midjourney import MidjourneyJobTrigger
from tests.conftest import FAST_RETRY, connection_json


def _registered() -> dict:
    return dict(_SharedAsyncClient._registry.get(asyncio.get_running_loop(), {}))


async def test_hooks_of_one_loop_share_one_client_closed_by_the_last(emulator, midjourney_conn) -> None:
    job = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine("shared")
    first = UseapiV3Hook(midjourney_conn, retry=NO_RETRY, shared_async_client=True)
    second = UseapiV3Hook(midjourney_conn, retry=NO_RETRY, shared_async_client=True)
    assert (await first.aget_job(job.jobid)).jobid == (await second.aget_job(job.jobid)).jobid
    assert first._shared is second._shared and first._shared is not None
    client = first._shared.client
    assert first._aclient is None and second._aclient is None  # no client of their own
    assert list(_registered().values()) == [first._shared]
    await first.aclose()
    assert not client.is_closed  # still used by the second hook
    await second.aclose()
    assert client.is_closed and _registered() == {}
    # A closed hook that is used again takes a (new) shared client again.
    assert (await first.aget_job(job.jobid)).jobid == job.jobid
    await first.aclose()


async def test_token_stays_per_request(emulator, midjourney_conn, monkeypatch) -> None:
    """Two connections to the same base URL share the client, each request keeps its own token."""
    job = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine("p")
    monkeypatch.setenv("AIRFLOW_CONN_MJ_WRONG", connection_json(emulator.base_url, token="wrong-token"))
    good = UseapiV3Hook(midjourney_conn, retry=NO_RETRY, shared_async_client=True)
    bad = UseapiV3Hook("mj_wrong", retry=NO_RETRY, shared_async_client=True)
    async with good, bad:
        with pytest.raises(MidjourneyAPIError) as refused:
            await bad.aget_job(job.jobid)
        assert (await good.aget_job(job.jobid)).jobid == job.jobid
        assert good._shared is bad._shared
    assert refused.value.status_code == 401
    assert [r.authorized for r in emulator.requests_to("GET", "/v3/midjourney/jobs/")] == [False, True]


async def test_concurrent_requests_are_bounded_by_the_pool(emulator, midjourney_conn, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__MIDJOURNEY__SHARED_POOL_SIZE", "3")
    emulator.latency = 0.02
    job = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine("p")
    hooks = [UseapiV3Hook(midjourney_conn, retry=NO_RETRY, shared_async_client=True) for _ in range(40)]
    jobs = await asyncio.gather(*(h.aget_job(job.jobid) for h in hooks))
    shared = hooks[0]._shared
    assert shared is not None and len(shared.client._transport._pool.connections) <= 3
    await asyncio.gather(*(h.aclose() for h in hooks))
    assert {j.jobid for j in jobs} == {job.jobid} and _registered() == {}


async def test_different_base_urls_do_not_share(emulator, midjourney_conn, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MJ_OTHER", connection_json(emulator.base_url + "/", timeout=7))
    job = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine("p")
    async with (
        UseapiV3Hook(midjourney_conn, retry=NO_RETRY, shared_async_client=True) as one,
        UseapiV3Hook("mj_other", retry=NO_RETRY, shared_async_client=True) as other,
    ):
        await one.aget_job(job.jobid)
        await other.aget_job(job.jobid)
        assert one._shared is not other._shared  # another timeout: another client
        assert len(_registered()) == 2


async def test_single_attempt_policy_sends_once(emulator, midjourney_conn) -> None:
    job = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine("p")
    emulator.fail_next(1, status=503, path_prefix="/v3/midjourney/jobs/j", method="GET")
    async with UseapiV3Hook(midjourney_conn, retry=NO_RETRY, shared_async_client=True) as hook:
        with pytest.raises(MidjourneyServerError):
            await hook.aget_job(job.jobid)
        assert (await hook.aget_job(job.jobid)).jobid == job.jobid
    assert [r.status for r in emulator.requests_to("GET", "/v3/midjourney/jobs/")] == [503, 200]


async def test_many_triggers_share_a_few_connections(emulator, midjourney_conn) -> None:
    jobs = [UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine(f"p{i}") for i in range(3)]
    triggers = [
        MidjourneyJobTrigger(job_id=job.jobid, poll_interval=0.05, deadline=time.time() + 30)
        for job in jobs
        for _ in range(10)
    ]

    async def first_event(trigger: MidjourneyJobTrigger) -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    events = await asyncio.wait_for(asyncio.gather(*(first_event(t) for t in triggers)), timeout=60)
    assert {e["status"] for e in events} == {"completed"}
    assert _registered() == {}  # the last trigger closed the shared client


async def test_timeout_event_still_reports_the_last_progress(emulator, midjourney_conn) -> None:
    emulator.never_finish = True
    job = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine("p")
    await asyncio.sleep(0.1)  # past "progress_after"
    trigger = MidjourneyJobTrigger(job_id=job.jobid, poll_interval=0.05, deadline=time.time() + 0.3)
    events = [event.payload async for event in trigger.run()]
    assert len(events) == 1 and events[0]["status"] == "timeout"
    assert events[0]["last_status"] == "progress" and isinstance(events[0]["progress_percent"], int)
