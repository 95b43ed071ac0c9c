"""The trigger's poll sent straight to the shared client's pool (``hooks.transport.DIRECT_POOL_GETS``).

It must be indistinguishable, for the API and for the caller, from the httpx path it replaces:
same request (path, headers, token), same answers, same errors.
"""

from __future__ import annotations

import pytest

from airflow_provider_midjourney.exceptions import (
    MidjourneyAPIError,
    MidjourneyServerError,
    MidjourneyTransportError,
)
from airflow_provider_midjourney.hooks import transport
from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook
from airflow_provider_midjourney.retry import NO_RETRY
from tests.conftest import FAST_RETRY

JOBS = "/v3/midjourney/jobs/"


def _seen(emulator) -> list[tuple[str, str, dict[str, str], str | None, bool]]:
    return [(r.method, r.path, r.query, r.user_agent, r.authorized) for r in emulator.requests_to("GET", JOBS)]


@pytest.mark.parametrize("direct", [True, False])
async def test_direct_and_httpx_polls_send_the_same_request(emulator, midjourney_conn, monkeypatch, direct) -> None:
    monkeypatch.setattr(transport, "DIRECT_POOL_GETS", direct)
    job = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine("same either way")
    async with UseapiV3Hook(midjourney_conn, retry=NO_RETRY, shared_async_client=True) as hook:
        first = await hook.afetch_job(job.jobid)
        again = await hook.afetch_job(job.jobid)
        assert hook._shared is not None and (hook._shared.pool is not None) is True
    assert first.job_id == again.job_id == job.jobid
    path = JOBS + job.jobid
    assert _seen(emulator) == [("GET", path, {}, "airflow-provider-midjourney", True)] * 2


async def test_direct_poll_errors_are_the_hooks_errors(emulator, midjourney_conn) -> None:
    job = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine("errors")
    async with UseapiV3Hook(midjourney_conn, retry=NO_RETRY, shared_async_client=True) as hook:
        emulator.fail_next(1, status=503, path_prefix=JOBS)
        with pytest.raises(MidjourneyServerError) as server:
            await hook.afetch_job(job.jobid)
        emulator.drop_next(1, path_prefix=JOBS)
        with pytest.raises(MidjourneyTransportError) as dropped:
            await hook.afetch_job(job.jobid)
        with pytest.raises(MidjourneyAPIError) as missing:
            await hook.afetch_job("j1111111111111111111i-u1-c1000000000000000001-bot:midjourney")
        assert (await hook.afetch_job(job.jobid)).job_id == job.jobid  # the pool recovered
    assert server.value.status_code == 503
    assert "GET" in str(dropped.value) and missing.value.status_code == 404


async def test_proxy_mounts_keep_the_httpx_path(emulator, midjourney_conn, monkeypatch) -> None:
    """With proxy variables the client mounts proxy transports: the direct path would bypass them."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    job = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY).imagine("proxied")
    async with UseapiV3Hook(midjourney_conn, retry=NO_RETRY, shared_async_client=True) as hook:
        assert (await hook.afetch_job(job.jobid)).job_id == job.jobid  # NO_PROXY: still answered
        assert hook._shared is not None and hook._shared.pool is None
