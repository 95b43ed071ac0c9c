"""The seam's HTTP transport (retries, dropped answers, read timeouts, one client per hook), driven through the v3 hook.

What a backend may resend and what not is the transport's rule, the same on every wing; the
contract suite (tests/contract) checks the outcome on every backend.
"""

from __future__ import annotations

import time

import httpx
import pytest

from airflow_provider_midjourney.exceptions import (
    MidjourneyBusyError,
    MidjourneyConnectError,
    MidjourneyServerError,
    MidjourneySubmitUncertainError,
    MidjourneyTransportError,
)
from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook
from airflow_provider_midjourney.retry import NO_RETRY, HttpRetry
from tests.backends.test_useapi_v3 import posts
from tests.conftest import FAST_RETRY, connection_json


def test_429_busy_is_retried_until_a_slot_frees(emulator, midjourney_conn) -> None:
    emulator.timings = emulator.timings.__class__(start_after=0.01, progress_after=0.02, complete_after=0.2)
    policy = HttpRetry(max_attempts=30, busy_wait=(0.03, 0.05))
    with UseapiV3Hook(midjourney_conn, retry=policy) as hook:
        for _ in range(3):
            hook.imagine("fill the channel")
        job = hook.imagine("waits for a slot")  # 429 until one of the three completes
    statuses = [r.status for r in posts(emulator, "imagine")]
    assert statuses[:3] == [201, 201, 201] and statuses[-1] == 201 and 429 in statuses[3:]
    assert len(emulator.created_jobs("imagine")) == 4 and job.jobid


def test_429_gives_up_after_the_policy_bound(emulator, midjourney_conn) -> None:
    emulator.never_finish = True
    policy = HttpRetry(max_attempts=3, busy_wait=(0.01, 0.01))
    with UseapiV3Hook(midjourney_conn, retry=policy) as hook:
        for _ in range(3):
            hook.imagine("fill")
        with pytest.raises(MidjourneyBusyError, match="busy executing 3 image jobs"):
            hook.imagine("one too many")
    assert [r.status for r in posts(emulator, "imagine")] == [201, 201, 201, 429, 429, 429]


def test_get_retries_5xx_bursts(hook, emulator) -> None:
    job = hook.imagine("p")
    emulator.fail_next(3, status=502, path_prefix="/v3/midjourney/jobs/j")
    assert hook.get_job(job.jobid).jobid == job.jobid
    assert [r.status for r in emulator.requests_to("GET", "/v3/midjourney/jobs/j")] == [502, 502, 502, 200]


def test_get_gives_up_after_max_attempts(hook, emulator) -> None:
    job = hook.imagine("p")
    emulator.fail_next(10, status=500, path_prefix="/v3/midjourney/jobs/j")
    with pytest.raises(MidjourneyServerError) as info:
        hook.get_job(job.jobid)
    assert info.value.status_code == 500
    assert len(emulator.requests_to("GET", "/v3/midjourney/jobs/j")) == FAST_RETRY.max_attempts


def test_post_is_not_retried_after_a_5xx(hook, emulator) -> None:
    emulator.fail_next(1, status=503, path_prefix="/v3/midjourney/jobs/imagine")
    with pytest.raises(MidjourneyServerError):
        hook.imagine("p")
    assert len(posts(emulator, "imagine")) == 1


def test_post_429_then_success(hook, emulator) -> None:
    emulator.fail_next(2, status=429, path_prefix="/v3/midjourney/jobs/imagine")
    assert hook.imagine("p").status == "created"
    assert [r.status for r in posts(emulator, "imagine")] == [429, 429, 201]
    assert len(emulator.created_jobs()) == 1


@pytest.mark.parametrize("after_handling", [False, True])
def test_post_is_not_resent_after_a_dropped_answer(hook, emulator, after_handling: bool) -> None:
    emulator.drop_next(1, path_prefix="/v3/midjourney/jobs/imagine", after_handling=after_handling)
    with pytest.raises(MidjourneySubmitUncertainError) as info:
        hook.imagine("p", reply_ref="task-key-1")
    assert info.value.reply_ref == "task-key-1" and "not sent again" in str(info.value)
    assert len(posts(emulator, "imagine")) == 1
    assert len(emulator.created_jobs()) == (1 if after_handling else 0)


def test_post_is_not_resent_after_a_read_timeout(emulator, midjourney_conn) -> None:
    emulator.latency = 1.0
    with UseapiV3Hook(midjourney_conn, retry=FAST_RETRY, timeout=0.3) as hook:
        with pytest.raises(MidjourneySubmitUncertainError, match="ReadTimeout"):
            hook.imagine("slow answer")
        time.sleep(1.0)
    assert len(posts(emulator, "imagine")) == 1
    assert len(emulator.created_jobs()) == 1  # the job exists: a resend would have duplicated it


def test_get_is_retried_after_a_dropped_connection(hook, emulator) -> None:
    job = hook.imagine("p")
    emulator.drop_next(2, path_prefix="/v3/midjourney/jobs/j")
    assert hook.get_job(job.jobid).jobid == job.jobid
    assert len(emulator.requests_to("GET", "/v3/midjourney/jobs/j")) >= 3


def test_refused_connection_is_retried_then_reported(monkeypatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_MJ_DOWN", connection_json(f"http://127.0.0.1:{port}"))
    calls = []
    original = httpx.Client.send

    def counting_send(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", counting_send)
    with UseapiV3Hook("mj_down", retry=FAST_RETRY) as hook, pytest.raises(MidjourneyConnectError, match="not sent"):
        hook.imagine("p")  # even a POST: nothing reached a server
    assert len(calls) == FAST_RETRY.max_attempts


def test_no_retry_policy(emulator, midjourney_conn) -> None:
    job = UseapiV3Hook(midjourney_conn).imagine("p")
    emulator.fail_next(1, status=500, path_prefix="/v3/midjourney/jobs/j")
    with UseapiV3Hook(midjourney_conn, retry=NO_RETRY) as hook, pytest.raises(MidjourneyServerError):
        hook.get_job(job.jobid)


def test_one_client_per_hook(hook) -> None:
    client = hook.get_conn()
    hook.list_accounts()
    hook.list_jobs()
    assert hook.get_conn() is client
    hook.close()
    assert client.is_closed and hook.get_conn() is not client


# -- async --------------------------------------------------------------------------------------


async def test_async_job_methods_share_one_client(emulator, midjourney_conn, monkeypatch) -> None:
    job = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine("async cat")
    hook = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY)
    if hasattr(UseapiV3Hook, "aget_connection"):
        # Airflow >= 3.1: the coroutine path must never use the blocking connection lookup.
        monkeypatch.setattr(
            UseapiV3Hook, "get_connection", classmethod(lambda cls, conn_id: pytest.fail("sync lookup"))
        )
    async with hook:
        fetched = await hook.aget_job(job.jobid)
        client = hook._aclient
        assert fetched.jobid == job.jobid
        assert (await hook.alist_jobs()).total <= 1
        assert hook._aclient is client
    assert client is not None and client.is_closed


async def test_async_cancel_and_retry(emulator, midjourney_conn) -> None:
    emulator.never_finish = True
    job = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine("to cancel")
    emulator.fail_next(2, status=500, path_prefix="/v3/midjourney/jobs/j", method="DELETE")
    async with UseapiV3Hook(midjourney_conn, retry=FAST_RETRY) as hook:
        await hook.acancel_job(job.jobid)
        assert (await hook.aget_job(job.jobid)).status == "failed"
    assert [r.status for r in emulator.requests_to("DELETE", "/v3/midjourney/jobs/")] == [500, 500, 204]


async def test_async_get_drop_is_retried(emulator, midjourney_conn) -> None:
    job = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine("p")
    emulator.drop_next(1, path_prefix="/v3/midjourney/jobs/j")
    async with UseapiV3Hook(midjourney_conn, retry=FAST_RETRY) as hook:
        assert (await hook.aget_job(job.jobid)).jobid == job.jobid


async def test_async_transport_error_after_bound(emulator, midjourney_conn) -> None:
    job = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine("p")
    emulator.drop_next(10, path_prefix="/v3/midjourney/jobs/j")
    async with UseapiV3Hook(midjourney_conn, retry=FAST_RETRY) as hook:
        with pytest.raises(MidjourneyTransportError):
            await hook.aget_job(job.jobid)
