"""Relay one picture to the browser: a CDN URL fetched with a browser's headers, or a stored file.

The gallery serves pictures itself because the Midjourney CDN refuses requests without browser
headers (and signed links expire), and because stored files (``file://``, ``s3://``...) are not
reachable from a browser at all. The URLs and paths come from XCom values, which are untrusted,
so what may be relayed is limited:

* only what the task's own result names (the caller looks it up by position, never by a URL or
  path from the request), and a stored file only when the task's own asset event lists it;
* only http(s) URLs whose host resolves to public addresses or is in
  ``[midjourney] relay_allowed_hosts`` (see :mod:`.addresses`); the connection goes to the
  address that was checked, and redirects are followed by hand, each checked again;
* only bodies whose first bytes are a PNG, JPEG, GIF, WebP, MP4 or WebM (never SVG or HTML,
  which could run script on Airflow's origin; never a text file named by a forged XCom);
* at most :data:`MAX_BYTES`, within :data:`DEADLINE` seconds per picture in total.

The relay is asynchronous and never holds a thread of the api-server's shared pool: one slow
source cannot starve Airflow's own routes. Stored files are read on a pool of their own
(:data:`FILE_THREADS`). At most :data:`MAX_RELAYS` pictures are relayed at once per api-server
worker, :data:`MAX_RELAYS_PER_VIEWER` per user; a picture waits :data:`SLOT_WAIT` seconds at most
for a slot.

Every refusal raises :class:`PictureUnavailable`, which the route answers identically: a forged
result learns nothing about which ports, endpoints or files exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import httpx

from airflow_provider_midjourney.media_types import SNIFF_BYTES, sniff
from airflow_provider_midjourney.plugins.addresses import AllowList, IPAddress, is_public, relay_allow_list

if TYPE_CHECKING:
    import anyio

    from airflow_provider_midjourney.plugins.results import Picture

log = logging.getLogger(__name__)

MAX_BYTES = 100 * 1024 * 1024
CHUNK = 256 * 1024
DEADLINE = 60.0  # seconds for one picture, from the first DNS lookup to the last byte
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
MAX_REDIRECTS = 3
MAX_RELAYS = 32
MAX_RELAYS_PER_VIEWER = 8
SLOT_WAIT = 10.0
FILE_THREADS = 4
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# The CDN in front of Midjourney's pictures turns away clients that do not look like a browser.
BROWSER_HEADERS = {
    "User-Agent": ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"),
    "Accept": "image/avif,image/webp,image/png,image/*,video/*;q=0.9,*/*;q=0.5",
    "Accept-Encoding": "identity",  # the bytes are relayed as they come: never a compressed body
}
RESPONSE_HEADERS = {
    "Cache-Control": "private, max-age=600",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Content-Disposition": "inline",
}
REFUSAL = "picture unavailable"
REFUSAL_STATUS = 404


class PictureUnavailable(Exception):
    """The picture cannot be relayed. The message is for the server log only, never the browser."""


class RelayBusy(Exception):
    """No relay slot became free in time (the viewer's or the worker's)."""


# -- concurrency ----------------------------------------------------------------------------------


@dataclass
class _Slots:
    """Relay slots of one event loop (one api-server worker)."""

    total: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_RELAYS))
    viewers: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    files: anyio.CapacityLimiter | None = None


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Slots] = weakref.WeakKeyDictionary()


def _slots() -> _Slots:
    loop = asyncio.get_running_loop()
    if loop not in _SLOTS:
        _SLOTS[loop] = _Slots()
    return _SLOTS[loop]


class Slot:
    """One of the viewer's relay slots and one of the worker's, held until :meth:`release` (idempotent)."""

    def __init__(self, slots: _Slots, viewer: str, semaphores: list[asyncio.Semaphore]) -> None:
        self._slots, self._viewer, self._semaphores = slots, viewer, semaphores

    def release(self) -> None:
        semaphores, self._semaphores = self._semaphores, []
        for semaphore in semaphores:
            semaphore.release()
        mine = self._slots.viewers.get(self._viewer)
        if semaphores and mine is not None and getattr(mine, "_value", 0) >= MAX_RELAYS_PER_VIEWER:
            self._slots.viewers.pop(self._viewer, None)  # nobody waits: forget the viewer


async def take_slot(viewer: str) -> Slot:
    """Wait at most :data:`SLOT_WAIT` seconds for a slot of ``viewer``'s and one of the worker's."""
    slots = _slots()
    mine = slots.viewers.setdefault(viewer, asyncio.Semaphore(MAX_RELAYS_PER_VIEWER))
    try:
        await asyncio.wait_for(mine.acquire(), SLOT_WAIT)
    except TimeoutError:
        raise RelayBusy(f"{viewer} already has {MAX_RELAYS_PER_VIEWER} pictures in flight") from None
    slot = Slot(slots, viewer, [mine])
    try:
        await asyncio.wait_for(slots.total.acquire(), SLOT_WAIT)
    except TimeoutError:
        slot.release()
        raise RelayBusy(f"{MAX_RELAYS} pictures are in flight") from None
    except BaseException:
        slot.release()
        raise
    slot._semaphores.append(slots.total)
    return slot


# -- bodies ---------------------------------------------------------------------------------------


class Body:
    """A relayed body: its sniffed media type and its chunks, bounded in bytes and time."""

    def __init__(self, media_type: str, head: bytes, rest: AsyncIterator[bytes], deadline: float, what: str) -> None:
        self.media_type = media_type
        self._head = head
        self._rest = rest
        self._deadline = deadline
        self._what = what

    async def chunks(self) -> AsyncIterator[bytes]:
        sent = len(self._head)
        try:
            yield self._head
            while True:
                try:
                    chunk = await _before(self._deadline, self._rest.__anext__())
                except StopAsyncIteration:
                    return
                sent += len(chunk)
                if sent > MAX_BYTES:
                    log.warning("Relay of %s stopped: more than %d bytes", self._what, MAX_BYTES)
                    return
                yield chunk
        except PictureUnavailable as exc:  # the answer has started: all that is left is to stop
            log.warning("Relay of %s stopped: %s", self._what, exc)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        closer = getattr(self._rest, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


async def _before(deadline: float, awaitable: Any) -> Any:
    """``await awaitable``, or :class:`PictureUnavailable` once the picture's deadline has passed."""
    left = deadline - asyncio.get_running_loop().time()
    try:
        if left <= 0:
            raise TimeoutError
        return await asyncio.wait_for(awaitable, left)
    except TimeoutError:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise PictureUnavailable(f"took longer than {DEADLINE:g} s") from None


async def _sniffed(chunks: AsyncIterator[bytes], deadline: float, what: str) -> Body:
    """Read the first bytes: refuse what is no picture or video, else the whole body."""
    head = b""
    try:
        while len(head) < SNIFF_BYTES:
            try:
                head += await _before(deadline, chunks.__anext__())
            except StopAsyncIteration:
                break
        media_type = sniff(head)
        if media_type is None:
            raise PictureUnavailable(f"{what} is not a picture or a video")
    except BaseException:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
        raise
    return Body(media_type, head, chunks, deadline, what)


# -- URLs -----------------------------------------------------------------------------------------


_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def _client() -> httpx.AsyncClient:
    """One client per event loop. No kept-alive connections: each request goes to the address that
    was just checked, and a TLS connection made for one host name is never reused for another."""
    loop = asyncio.get_running_loop()
    if loop not in _CLIENTS:
        _CLIENTS[loop] = httpx.AsyncClient(
            timeout=TIMEOUT,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=MAX_RELAYS, max_keepalive_connections=0),
        )
    return _CLIENTS[loop]


def _shown(url: str) -> str:
    return url.split("?", 1)[0][:200]


async def _addresses(host: str, port: int, deadline: float) -> list[IPAddress]:
    import ipaddress

    loop = asyncio.get_running_loop()
    try:
        infos = await _before(deadline, loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    except OSError:
        raise PictureUnavailable(f"{host} does not resolve") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise PictureUnavailable(f"{host} does not resolve")
    return found


async def _checked_target(url: str, allow: AllowList, deadline: float) -> tuple[httpx.URL, str, IPAddress]:
    """The URL to connect to (the checked address in place of the host), the Host header, the address."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise PictureUnavailable("not a URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise PictureUnavailable(f"{parts.scheme or 'no'} scheme: only http(s) URLs are relayed")
    if parts.username is not None or parts.password is not None:
        raise PictureUnavailable("a URL with credentials is never fetched")
    host = parts.hostname.lower()
    addresses = await _addresses(host, port, deadline)
    if not allow.allows(host, port, addresses) and not all(is_public(address) for address in addresses):
        raise PictureUnavailable(f"{host}:{port} is not a public address nor in relay_allowed_hosts")
    address = addresses[0]
    target = httpx.URL(url).copy_with(host=str(address))
    default = port == (443 if parts.scheme.lower() == "https" else 80)
    host_header = host if default else f"{'[' + host + ']' if ':' in host else host}:{port}"
    return target, host_header, address


async def open_url(url: str, allow: AllowList | None = None, deadline: float | None = None) -> Body:
    """Fetch ``url`` with browser headers, following at most :data:`MAX_REDIRECTS` checked redirects."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE if deadline is None else deadline
    if allow is None:
        try:
            allow = relay_allow_list()
        except ValueError as exc:  # a broken setting refuses everything private, loudly
            log.error("%s", exc)
            allow = AllowList()
    client = _client()
    for _hop in range(MAX_REDIRECTS + 1):
        target, host_header, _address = await _checked_target(url, allow, deadline)
        request = client.build_request(
            "GET",
            target,
            headers={**BROWSER_HEADERS, "Host": host_header},
            extensions={"sni_hostname": urlsplit(url).hostname or ""},
        )
        try:
            response = await _before(deadline, client.send(request, stream=True))
        except httpx.HTTPError as exc:
            raise PictureUnavailable(f"{_shown(url)} could not be fetched ({type(exc).__name__})") from None
        if response.status_code in REDIRECTS and response.headers.get("location"):
            await response.aclose()
            url = urljoin(url, response.headers["location"])
            continue
        if response.status_code != 200:
            await response.aclose()
            raise PictureUnavailable(f"{_shown(url)} answered {response.status_code}")
        return await _sniffed(_response_chunks(response), deadline, _shown(url))
    raise PictureUnavailable(f"more than {MAX_REDIRECTS} redirects")


async def _response_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw():  # as it arrives: a chunk size would wait to fill it
            yield chunk
    finally:
        await response.aclose()


# -- stored files ---------------------------------------------------------------------------------


def _file_threads() -> anyio.CapacityLimiter:
    import anyio

    slots = _slots()
    if slots.files is None:
        slots.files = anyio.CapacityLimiter(FILE_THREADS)
    return slots.files


async def open_stored(uri: str, deadline: float | None = None) -> Body:
    """Read a stored file (any filesystem the download operator writes to) on the relay's own threads."""
    import anyio.to_thread

    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE if deadline is None else deadline
    limiter = _file_threads()

    def opened() -> Any:
        from airflow_provider_midjourney.destinations import Destination

        folder, _, name = uri.rstrip("/").rpartition("/")
        if not name:
            raise PictureUnavailable(f"{uri!r} names no file")
        try:
            destination = Destination.resolve(folder + "/" if "://" in folder else folder or "/")
            return destination.fs.open(destination.path(name), "rb")
        except Exception as exc:
            raise PictureUnavailable(f"{name} could not be opened ({type(exc).__name__})") from None

    handle = await _before(deadline, anyio.to_thread.run_sync(opened, limiter=limiter))

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while chunk := await anyio.to_thread.run_sync(handle.read, CHUNK, limiter=limiter):
                yield chunk
        finally:
            await anyio.to_thread.run_sync(handle.close, limiter=limiter)

    return await _sniffed(chunks(), deadline, uri.rsplit("/", 1)[-1])


async def open_picture(picture: Picture) -> Body:
    """The picture's body. A stored file is read only when the task's own asset event lists it;
    otherwise (or when it is gone) its original CDN URL is relayed, if it has one."""
    if picture.kind != "file":
        return await open_url(picture.source)
    if picture.stored_by_task:
        try:
            return await open_stored(picture.source)
        except PictureUnavailable as exc:
            log.info("Stored picture unavailable: %s", exc)
    if picture.fallback_url:
        return await open_url(picture.fallback_url)
    raise PictureUnavailable("a stored file the task's own asset event does not list, and no URL")
