"""The HTTP plumbing every backend hook shares: header auth, the shared async pool, error mapping.

:mod:`.base` is the seam (what a backend offers); this module is how its requests travel.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import threading
import time
import weakref
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any, ClassVar

import httpcore
import httpx

from airflow_provider_midjourney.exceptions import (
    MidjourneyConnectError,
    MidjourneyMalformedAnswerError,
    MidjourneyRedirectRefusedError,
    MidjourneySubmitUncertainError,
    MidjourneyTransportError,
)
from airflow_provider_midjourney.hooks import answer_limits
from airflow_provider_midjourney.models import HttpBody
from airflow_provider_midjourney.redaction import redact

# Some CDNs (cdn.midjourney.com behind Cloudflare) refuse clients without a browser User-Agent.
BROWSER_HEADERS = {
    "User-Agent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/139.0.0.0 Safari/537.36"
    ),
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate, br",
    "Connection": "keep-alive",
}
# Connections of the AsyncClient that hooks created with ``shared_async_client=True`` (the trigger's)
# share per event loop, base URL and timeout; requests beyond this many wait their turn. The pool
# serves at most SHARED_POOL_SIZE / latency requests a second, less while the event loop is busy:
# in Airflow's real triggerer, 16 connections at 0.25 s delivered ~40 a second, short of the ~50 a
# second that 3,000 waiting jobs finishing within a minute need (their news queued for up to 24 s,
# docs/benchmarks.md); 32 keep up. Only bursts use them: a waiting job sends ~2 requests in all.
SHARED_POOL_SIZE = 32  # the default of [midjourney] shared_pool_size (config.py)
# A poll on the shared client (a GET without body or query: what a trigger sends) goes straight to
# the client's own httpcore pool, with the client's headers and timeouts prebuilt: no cookie jar,
# no URL merging, no auth flow per request (benchmarks/poll_cost.py; the httpx path stays for
# everything else, for redirects, and where the client has proxy mounts).
DIRECT_POOL_GETS = True
#: Set (in its own task) by a request that must not queue behind the others on the shared client's
#: gate: the one "which jobs still run" call that all waiting triggers depend on (triggers/watch.py).
#: It still waits for a free connection in the pool, behind at most SHARED_POOL_SIZE requests.
SKIP_SHARED_QUEUE: contextvars.ContextVar[bool] = contextvars.ContextVar("midjourney_skip_shared_queue", default=False)
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9/._~:@!$&'()*+,;=-]*\Z")  # nothing httpx would have to encode


class HeaderAuth(httpx.Auth):
    """Adds the secret header per API request (never to CDN requests) and hides it from reprs."""

    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._name] = self._value
        yield request

    def __repr__(self) -> str:
        return f"HeaderAuth({self._name}: ***)"

    def raw(self) -> tuple[bytes, bytes]:
        """The header as bytes, for a request sent without httpx's auth flow."""
        return self._name.encode("latin-1"), self._value.encode("latin-1")


class SharedAsyncClient:
    """One pooled ``httpx.AsyncClient`` per (event loop, base URL, timeout), counted by its hooks.

    Requests pass a semaphore of :data:`SHARED_POOL_SIZE` first: httpcore's pool rescans its whole
    queue on every request and release, so thousands of requests queued in it at once cost
    quadratic CPU; queued on the semaphore they cost nothing. Closed when its last hook releases it.
    """

    _registry: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Any]]] = (
        weakref.WeakKeyDictionary()
    )
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, key: tuple[Any, ...], client_kwargs: dict[str, Any]) -> None:
        self.key = key
        self.loop = asyncio.get_running_loop()
        from airflow_provider_midjourney import config

        size = config.shared_pool_size()  # [midjourney] shared_pool_size, default SHARED_POOL_SIZE
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self.client = httpx.AsyncClient(limits=limits, **client_kwargs)
        self.gate = asyncio.Semaphore(size)
        # For direct_get: the client's own pool (None when proxies are mounted), headers, timeouts.
        pool = getattr(self.client._transport, "_pool", None)
        self.pool: httpcore.AsyncConnectionPool | None = None if self.client._mounts else pool
        self.base = str(self.client.base_url).rstrip("/")
        self.headers = [(b"Host", self.client.base_url.netloc), *self.client.headers.raw]
        self.extensions: dict[str, Any] = {"timeout": self.client.timeout.as_dict()}
        self.users = 0

    async def direct_get(self, path: str, auth: tuple[bytes, bytes] | None) -> httpx.Response | None:
        """``GET`` base URL + ``path`` on the pool, as httpx would send it, streamed; None for a redirect.

        The same connections, headers and timeouts as ``client.request``, minus the per-request work
        a poll does not need (URL merging and encoding, cookies, the auth flow, event hooks).
        """
        assert self.pool is not None
        headers = self.headers if auth is None else [*self.headers, auth]
        url = self.base + path
        try:
            answer = await self.pool.handle_async_request(
                httpcore.Request("GET", url, headers=headers, extensions=self.extensions)
            )
        except HTTPCORE_ERRORS as exc:
            raise as_httpx_error(exc) from None
        if 300 <= answer.status < 400:
            await answer.aclose()
            return None  # let httpx build the redirect (answer_limits.next_hop judges it)
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=_CoreStream(answer),
            request=httpx.Request("GET", url),
            extensions=answer.extensions,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        auth: httpx.Auth | None,
        body: HttpBody | None,
        params: dict[str, str] | None,
        timeout: float,  # noqa: ASYNC109 - httpx applies it per read; the total deadline is answer_limits.within
    ) -> httpx.Response:
        """One request through the gate; a plain GET goes straight to the pool (:data:`DIRECT_POOL_GETS`)."""
        direct = (
            DIRECT_POOL_GETS
            and self.pool is not None
            and method == "GET"
            and body is None
            and not params
            and (auth is None or isinstance(auth, HeaderAuth))
            and _PLAIN_PATH.match(path) is not None
        )
        gate = contextlib.nullcontext() if SKIP_SHARED_QUEUE.get() else self.gate
        async with gate, answer_limits.within(timeout):  # the deadline starts once the request may go
            if direct:
                response = await self.direct_get(path, auth.raw() if isinstance(auth, HeaderAuth) else None)
                if response is not None:
                    try:
                        return await answer_limits.aread_bounded(response)
                    finally:
                        await response.aclose()
            return await _aexchange(self.client, method, path, auth=auth, body=body, params=params)

    @classmethod
    def acquire(cls, client_kwargs: dict[str, Any]) -> SharedAsyncClient:
        loop = asyncio.get_running_loop()
        timeout: httpx.Timeout = client_kwargs["timeout"]
        key = (client_kwargs["base_url"], timeout.read, timeout.connect)
        with cls._lock:
            clients = cls._registry.setdefault(loop, {})
            shared: SharedAsyncClient | None = clients.get(key)
            if shared is None:
                shared = clients[key] = cls(key, client_kwargs)
            shared.users += 1
        return shared

    async def release(self) -> None:
        if self.loop is not asyncio.get_running_loop():
            self.forget()  # its loop is gone or elsewhere: closing it here would fail
            return
        with self._lock:
            self.users -= 1
            if self.users > 0:
                return
            clients = self._registry.get(self.loop, {})
            if clients.get(self.key) is self:
                del clients[self.key]
        await self.client.aclose()

    def forget(self) -> None:
        """Drop one user without closing (the client belongs to another event loop)."""
        with self._lock:
            self.users -= 1


# What httpcore raises where httpx would raise its TransportError of the same name. (This module is
# imported by tasks and the triggerer only, never on a DAG parse, so httpcore may be imported here.)
HTTPCORE_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)


def as_httpx_error(exc: Exception) -> httpx.TransportError:
    """httpx's exception of the same name (httpx raises these for the same httpcore errors)."""
    cls = getattr(httpx, type(exc).__name__, None)
    if isinstance(cls, type) and issubclass(cls, httpx.TransportError):
        return cls(str(exc))
    return httpx.TransportError(str(exc))


def body_kwargs(body: HttpBody | None) -> dict[str, Any]:
    if body is None:
        return {}
    if body.files is not None:
        return {"data": body.data or {}, "files": body.files}
    return {"json": body.json_body}


def transport_error(
    exc: httpx.TransportError, method: str, path: str, creates_job: bool, reply_ref: str | None
) -> MidjourneyTransportError:
    """Classify a transport failure: was the request possibly received by the API?"""
    reason = redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return MidjourneyConnectError(f"{method} {path} was not sent: {reason}")
    if isinstance(exc, answer_limits.AnswerRefusedError) and not creates_job:
        return MidjourneyMalformedAnswerError(f"{method} {path} answered something refused: {exc}")
    if creates_job:
        return MidjourneySubmitUncertainError(
            f"{method} {path} got no answer ({reason}). The job may have been created, so the request"
            " is not sent again; look it up (running jobs, or by replyRef) before resubmitting.",
            path=path,
            reply_ref=reply_ref,
        )
    return MidjourneyTransportError(f"{method} {path} failed: {reason}")


def body_chunks(response: httpx.Response, chunk_size: int) -> Iterator[bytes]:
    """The decoded body of a streamed response; transport failures become MidjourneyTransportError."""
    try:
        yield from response.iter_bytes(chunk_size)
    except httpx.RequestError as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise MidjourneyTransportError(f"GET {response.request.url.path} broke off in the body: {reason}") from None


class _CoreStream(httpx.AsyncByteStream):
    """httpcore's streamed body as httpx's, its errors as httpx's."""

    def __init__(self, answer: httpcore.Response) -> None:
        self._answer = answer

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._answer.aiter_stream():
                yield chunk
        except HTTPCORE_ERRORS as exc:
            raise as_httpx_error(exc) from None

    async def aclose(self) -> None:
        await self._answer.aclose()


def send(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    auth: httpx.Auth | None,
    body: HttpBody | None = None,
    params: dict[str, str] | None = None,
    creates_job: bool = False,
    reply_ref: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float,
) -> httpx.Response:
    """One API request on a sync client, read in full within ``timeout`` seconds and the size bound.

    Redirects are followed on the connection's origin only (:func:`.answer_limits.next_hop`);
    transport failures become the provider's errors.
    """
    deadline = time.monotonic() + timeout
    try:
        request = client.build_request(method, path, params=params, headers=headers, **body_kwargs(body))
        origin = answer_limits.origin_of(request.url)
        for _ in range(answer_limits.MAX_REDIRECTS + 1):
            request.extensions["timeout"] = answer_limits.timeouts_until(deadline, client.timeout)
            response = client.send(request, auth=auth, stream=True, follow_redirects=False)
            try:
                hop = answer_limits.next_hop(response, origin, method, path)
                if hop is None:
                    return answer_limits.read_bounded(response, deadline)
            finally:
                response.close()
            answer_limits.check_deadline(deadline)
            request = hop
        raise _too_many_redirects(method, path)
    except httpx.TransportError as exc:
        raise transport_error(exc, method, path, creates_job, reply_ref) from None


async def asend(
    client: httpx.AsyncClient | SharedAsyncClient,
    method: str,
    path: str,
    *,
    auth: httpx.Auth | None,
    body: HttpBody | None = None,
    params: dict[str, str] | None = None,
    creates_job: bool = False,
    timeout: float,  # noqa: ASYNC109 - httpx applies it per read; the total deadline is answer_limits.within
) -> httpx.Response:
    """:func:`send` for the event loop, on a hook's own client or the shared one."""
    try:
        if isinstance(client, SharedAsyncClient):
            return await client.request(method, path, auth=auth, body=body, params=params, timeout=timeout)
        async with answer_limits.within(timeout):
            return await _aexchange(client, method, path, auth=auth, body=body, params=params)
    except httpx.TransportError as exc:
        raise transport_error(exc, method, path, creates_job, None) from None


async def _aexchange(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    auth: httpx.Auth | None,
    body: HttpBody | None,
    params: dict[str, str] | None,
) -> httpx.Response:
    """The async request with its same-origin redirects, read in full (the caller bounds its time)."""
    request = client.build_request(method, path, params=params, **body_kwargs(body))
    origin = answer_limits.origin_of(request.url)
    for _ in range(answer_limits.MAX_REDIRECTS + 1):
        response = await client.send(request, auth=auth, stream=True, follow_redirects=False)
        try:
            hop = answer_limits.next_hop(response, origin, method, path)
            if hop is None:
                return await answer_limits.aread_bounded(response)
        finally:
            await response.aclose()
        request = hop
    raise _too_many_redirects(method, path)


def _too_many_redirects(method: str, path: str) -> MidjourneyRedirectRefusedError:
    return MidjourneyRedirectRefusedError(
        310, f"more than {answer_limits.MAX_REDIRECTS} redirects; not followed further", method=method, path=path
    )
