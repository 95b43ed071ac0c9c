"""The HTTP plumbing every backend hook shares: header auth, the shared async pool, error mapping.

:mod:`.base` is the seam (what a backend offers); this module is how its requests travel.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import threading
import weakref
from collections.abc import Generator, Iterator
from typing import Any, ClassVar

import httpcore
import httpx

from airflow_provider_midjourney.exceptions import (
    MidjourneyConnectError,
    MidjourneySubmitUncertainError,
    MidjourneyTransportError,
)
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
SHARED_POOL_SIZE = 32
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
        limits = httpx.Limits(max_connections=SHARED_POOL_SIZE, max_keepalive_connections=SHARED_POOL_SIZE)
        self.client = httpx.AsyncClient(limits=limits, **client_kwargs)
        self.gate = asyncio.Semaphore(SHARED_POOL_SIZE)
        # For direct_get: the client's own pool (None when proxies are mounted), headers, timeouts.
        pool = getattr(self.client._transport, "_pool", None)
        self.pool: httpcore.AsyncConnectionPool | None = None if self.client._mounts else pool
        self.base = str(self.client.base_url).rstrip("/")
        self.headers = list(self.client.headers.raw)
        self.extensions: dict[str, Any] = {"timeout": self.client.timeout.as_dict()}
        self.users = 0

    async def direct_get(self, path: str, auth: tuple[bytes, bytes] | None) -> httpx.Response | None:
        """``GET`` base URL + ``path`` on the pool, as httpx would send it; None for a redirect.

        The same connections, headers and timeouts as ``client.request``, minus the per-request work
        a poll does not need (URL merging and encoding, cookies, the auth flow, event hooks).
        """
        assert self.pool is not None
        headers = self.headers if auth is None else [*self.headers, auth]
        try:
            answer = await self.pool.request("GET", self.base + path, headers=headers, extensions=self.extensions)
        except HTTPCORE_ERRORS as exc:
            raise as_httpx_error(exc) from None
        if 300 <= answer.status < 400:
            return None  # let httpx follow it
        return httpx.Response(answer.status, headers=answer.headers, content=answer.content)

    async def request(
        self, method: str, path: str, *, auth: httpx.Auth | None, body: HttpBody | None, params: dict[str, str] | None
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
        async with gate:
            response = None
            if direct:
                response = await self.direct_get(path, auth.raw() if isinstance(auth, HeaderAuth) else None)
            if response is None:
                response = await self.client.request(method, path, params=params, auth=auth, **body_kwargs(body))
        return response

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
) -> httpx.Response:
    """One API request on a sync client; transport failures become the provider's errors."""
    try:
        return client.request(method, path, params=params, headers=headers, auth=auth, **body_kwargs(body))
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
) -> httpx.Response:
    """:func:`send` for the event loop, on a hook's own client or the shared one."""
    try:
        if isinstance(client, SharedAsyncClient):
            return await client.request(method, path, auth=auth, body=body, params=params)
        return await client.request(method, path, params=params, auth=auth, **body_kwargs(body))
    except httpx.TransportError as exc:
        raise transport_error(exc, method, path, creates_job, None) from None
