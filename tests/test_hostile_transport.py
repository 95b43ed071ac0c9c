"""Hostile API servers on loopback: secrets never leave the connection's origin, answers are bounded.

Every backend's fetch (sync and on the trigger's shared pool), submit, cancel and list go through
one transport (``hooks/transport.py`` + ``hooks/answer_limits.py``); these tests drive each of them
against a server that redirects elsewhere, answers 150 MB, drips a byte at a time, nests JSON
thousands deep or compresses a bomb.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_midjourney.exceptions import (
    MidjourneyMalformedAnswerError,
    MidjourneyRedirectRefusedError,
    MidjourneySubmitUncertainError,
    MidjourneyTransportError,
)
from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook, hook_class_for
from airflow_provider_midjourney.job_requests import ImagineRequest
from airflow_provider_midjourney.retry import NO_RETRY
from tests.hostile import Answer, HostileServer, Seen, hostile_server

TOKEN = "hostile-test-token-Zq81-secret"
DISCORD = "discord-hostile-SECRET-9Kd2"
#: conn type, extras, a job id the backend accepts, the path part of its fetch
BACKENDS: dict[str, tuple[str, dict[str, Any], str]] = {
    "useapi_v3": ("midjourney", {}, "j1202005345571271493i-u12345-c1000000000000000001-bot:midjourney"),
    "useapi_v2": (
        "midjourney_useapi_v2",
        {"api_version": "v2", "discord_token": DISCORD, "server": "1234567890123456789", "channel": "1" * 19},
        "job-1234567890",
    ),
    "imaginepro": ("imaginepro", {}, "d15c1541-229a-442b-9873-d3494dede12a"),
    "midjourney_proxy": ("midjourney_proxy", {}, "1712345678901234"),
}


def make_hook(backend: str, base_url: str, *, shared: bool = False, timeout: float = 5.0) -> MidjourneyBackendHook:
    conn_type, extra, _ = BACKENDS[backend]
    conn = SimpleNamespace(
        host=base_url, port=None, password=TOKEN, extra_dejson={**extra, "timeout": timeout}, conn_type=conn_type
    )
    return hook_class_for(conn_type, "hostile")("hostile", connection=conn, retry=NO_RETRY, shared_async_client=shared)


def carries_secret(seen: Seen) -> bool:
    text = json.dumps(seen.headers) + seen.body.decode("latin-1")
    return TOKEN in text or DISCORD in text


def redirecting_to(target: str, status: int) -> Any:
    return lambda seen: Answer(status=status, headers=[("Location", target + seen.path)], body=b"")


# -- class 2: secrets follow redirects to other origins ---------------------------------------------


@pytest.mark.parametrize("status", [302, 307, 308])
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_no_request_follows_a_redirect_to_another_origin(backend: str, status: int) -> None:
    job_id = BACKENDS[backend][2]
    with (
        hostile_server(lambda _: Answer(body=b"{}")) as elsewhere,
        hostile_server(redirecting_to(elsewhere.base_url, status)) as api,
    ):
        hook = make_hook(backend, api.base_url)
        calls = {
            "fetch": lambda: hook.fetch_job(job_id),
            "submit": lambda: hook.submit_job(ImagineRequest.build(prompt="a cat")),
        }
        for what, call in calls.items():
            with pytest.raises((MidjourneyRedirectRefusedError, MidjourneySubmitUncertainError)) as refused:
                call()
            assert "another origin" in str(refused.value), what
            assert TOKEN not in str(refused.value)

        async def poll() -> None:
            async with make_hook(backend, api.base_url, shared=True) as trigger_hook:
                with pytest.raises(MidjourneyRedirectRefusedError):
                    await trigger_hook.afetch_job(job_id)
                # A backend may skip these (no cancel route, no list) or log the refusal: only
                # never following the redirect matters, checked on the other origin below.
                with contextlib.suppress(MidjourneyRedirectRefusedError):
                    await trigger_hook.acancel(job_id)
                with contextlib.suppress(MidjourneyRedirectRefusedError):
                    await trigger_hook.alist_running_job_ids()

        asyncio.run(poll())
        assert api.seen, "the API was asked"
        assert any(carries_secret(s) for s in api.seen)
    assert elsewhere.seen == []  # nothing, secret or not, went to the other origin


def test_a_same_origin_redirect_is_followed_with_the_secret() -> None:
    def answer(seen: Seen) -> Answer:
        if seen.path.startswith("/moved"):
            job = {"jobid": BACKENDS["useapi_v3"][2], "verb": "imagine", "status": "started", "created": "x"}
            return Answer(body=json.dumps(job).encode())
        return Answer(status=307, headers=[("Location", "/moved" + seen.path)], body=b"")

    with hostile_server(answer) as api:
        job = make_hook("useapi_v3", api.base_url).fetch_job(BACKENDS["useapi_v3"][2])
    assert str(job.status) == "started"
    assert [s.path.startswith("/moved") for s in api.seen] == [False, True]
    assert all(carries_secret(s) for s in api.seen)


def test_a_redirect_loop_on_the_origin_ends() -> None:
    loop = hostile_server(lambda seen: Answer(status=302, headers=[("Location", seen.path)], body=b""))
    with loop as api, pytest.raises(MidjourneyRedirectRefusedError, match="redirects"):
        make_hook("useapi_v3", api.base_url).fetch_job(BACKENDS["useapi_v3"][2])
    assert len(api.seen) == 6


# -- class 5: unbounded answers --------------------------------------------------------------------


def huge(_: Seen) -> Answer:
    return Answer(stream_bytes=150 * 1024 * 1024)


def nested(_: Seen) -> Answer:
    return Answer(body=b'{"a":' * 50_000 + b"1" + b"}" * 50_000)


@functools.cache
def _bomb() -> bytes:
    return gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)  # ~64 KB on the wire


def bomb(_: Seen) -> Answer:
    return Answer(headers=[("Content-Type", "application/json"), ("Content-Encoding", "gzip")], body=_bomb())


def drip(_: Seen) -> Answer:
    return Answer(steps=[(b"{", 0.0)] + [(b" ", 0.25)] * 400)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("server", [huge, nested, bomb], ids=["150MB", "deep-json", "gzip-bomb"])
def test_oversized_and_deep_answers_are_malformed_answers(backend: str, server: Any) -> None:
    job_id = BACKENDS[backend][2]
    with hostile_server(server) as api:
        hook = make_hook(backend, api.base_url)
        with pytest.raises(MidjourneyTransportError) as sync_error:
            hook.fetch_job(job_id)

        async def poll() -> BaseException:
            async with make_hook(backend, api.base_url, shared=True) as trigger_hook:
                with pytest.raises(MidjourneyTransportError) as async_error:
                    await trigger_hook.afetch_job(job_id)
            return async_error.value

        async_error = asyncio.run(poll())
    if server is huge:  # refused while streaming: the client hung up long before 150 MB
        deadline = time.monotonic() + 10  # the server's thread notes the hang-up at its next write
        while len(api.streamed) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(api.streamed) == 2 and max(api.streamed) < 40 * 1024 * 1024, api.streamed
    for error in (sync_error.value, async_error):
        assert isinstance(error, MidjourneyMalformedAnswerError), repr(error)
        assert "RecursionError" not in str(error)


def test_a_huge_answer_to_a_submit_is_uncertain_not_retried() -> None:
    with hostile_server(huge) as api, pytest.raises(MidjourneySubmitUncertainError):
        make_hook("useapi_v3", api.base_url).submit_job(ImagineRequest.build(prompt="a cat"))
    assert len(api.seen) == 1


@pytest.mark.parametrize("backend", ["useapi_v3", "midjourney_proxy"])
def test_a_drip_ends_at_the_request_deadline(backend: str) -> None:
    """A byte every 0.25 s never trips a per-read timeout; the total deadline (1 s) ends it."""
    job_id = BACKENDS[backend][2]
    with hostile_server(drip) as api:
        started = time.monotonic()
        with pytest.raises(MidjourneyTransportError):
            make_hook(backend, api.base_url, timeout=1.0).fetch_job(job_id)
        sync_took = time.monotonic() - started

        async def poll() -> float:
            async with make_hook(backend, api.base_url, shared=True, timeout=1.0) as trigger_hook:
                started = time.monotonic()
                with pytest.raises(MidjourneyTransportError):
                    await trigger_hook.afetch_job(job_id)
                return time.monotonic() - started

        async_took = asyncio.run(poll())
    # The drip would last 100 s: ending within a few seconds shows the deadline, not a timer's precision.
    assert sync_took < 10 and async_took < 10, (sync_took, async_took)


def test_hostile_server_helper_counts_what_it_saw() -> None:
    """The helper itself: a plain answer arrives whole (so the refusals above are the client's)."""
    with hostile_server(lambda _: Answer(body=b'{"ok": true}')) as api:
        import httpx

        assert httpx.get(api.base_url + "/x").json() == {"ok": True}
    assert isinstance(api, HostileServer) and [s.path for s in api.seen] == ["/x"]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_compressed_answers_within_the_bound_are_read(encoding: str) -> None:
    import zlib

    job = {"jobid": BACKENDS["useapi_v3"][2], "verb": "imagine", "status": "started", "created": "x"}
    raw = json.dumps(job).encode()
    if encoding == "gzip":
        packed = gzip.compress(raw)
    elif encoding == "deflate":
        packed = zlib.compress(raw)
    else:
        squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        packed = squeeze.compress(raw) + squeeze.flush()
    header = "gzip" if encoding == "gzip" else "deflate"
    answer = Answer(headers=[("Content-Type", "application/json"), ("Content-Encoding", header)], body=packed)
    with hostile_server(lambda seen: answer) as api:
        assert str(make_hook("useapi_v3", api.base_url).fetch_job(job["jobid"]).status) == "started"

        async def poll() -> str:
            async with make_hook("useapi_v3", api.base_url, shared=True) as trigger_hook:
                return str((await trigger_hook.afetch_job(job["jobid"])).status)

        assert asyncio.run(poll()) == "started"
