"""What one API answer may cost: its size, its time, its JSON nesting and where it may send us.

Every vendor answer is untrusted. An API request (with its secret) goes to the connection's own
origin only: a redirect to another origin is refused, never followed (a secret header or a body
holding a token would travel with it). The body is read in chunks up to :data:`MAX_ANSWER_BYTES`
after decompression, and the whole exchange, redirects included, gets one total deadline, so a
server dripping a byte a second cannot hold a request (or the triggerer's poll) past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from airflow_provider_midjourney.exceptions import MidjourneyRedirectRefusedError

#: The largest API answer read, after decompression (the biggest documented answer, a list of 15
#: jobs with their Discord messages, is well under 1 MB).
MAX_ANSWER_BYTES = 4 * 1024 * 1024
#: Deeper JSON is refused before anything walks it (documented answers nest less than 10 levels).
MAX_JSON_DEPTH = 64
#: Same-origin redirects followed per request.
MAX_REDIRECTS = 5
_INFLATE_STEP = 256 * 1024
#: What API clients accept: encodings decoded here with a bound, not by httpx without one.
ACCEPT_ENCODING = "gzip, deflate"


class AnswerRefusedError(httpx.TransportError):
    """An answer over a bound (size, encoding): the request failed; it may have been received."""


class AnswerTimeoutError(httpx.ReadTimeout):
    """No complete answer within the request's total deadline."""


def origin_of(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and effective port: what must not change for a secret to travel along."""
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, port


def next_hop(
    response: httpx.Response, origin: tuple[str, str, int | None], method: str, path: str
) -> httpx.Request | None:
    """The request a redirect asks for, if it stays on ``origin``; None when it is no redirect.

    A redirect elsewhere raises :class:`MidjourneyRedirectRefusedError` (not retried): the
    connection's secret and a job-creating body are only ever sent to the connection's own origin.
    """
    target = response.next_request
    if target is None:
        return None
    if origin_of(target.url) != origin:
        scheme, host, port = origin_of(target.url)
        raise MidjourneyRedirectRefusedError(
            response.status_code,
            f"redirected to another origin ({scheme}://{host}:{port}); API requests carry the connection's"
            " secret and are only sent to the connection's own origin, so the redirect was not followed."
            " If the API moved, put its new address in the connection's host",
            method=method,
            path=path,
        )
    return target


class _Decoder:
    """The body as the server encoded it → the bytes, never more than ``limit`` of them."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.parts: list[bytes] = []
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise AnswerRefusedError(f"the answer is encoded as {encoding[:40]!r}; only gzip and deflate are read")
        self.inflate: Any = None
        if codings:
            self.inflate = zlib.decompressobj(zlib.MAX_WBITS | 32 if "gzip" in codings[0] else zlib.MAX_WBITS)
            self.raw_deflate = codings[0] == "deflate"

    def feed(self, chunk: bytes) -> Iterator[None]:
        """Take one raw chunk, yielding after each bounded inflate step (the event loop may run then)."""
        if self.inflate is None:
            self._keep(chunk)
            return
        try:
            out = self.inflate.decompress(chunk, _INFLATE_STEP)
        except zlib.error:
            if not (self.raw_deflate and self.size == 0 and not self.parts):
                raise AnswerRefusedError("the answer's compressed body is corrupt") from None
            self.inflate, self.raw_deflate = zlib.decompressobj(-zlib.MAX_WBITS), False  # deflate without header
            out = self.inflate.decompress(chunk, _INFLATE_STEP)
        self._keep(out)
        while self.inflate.unconsumed_tail:  # a step at a time: a bomb stops at the bound
            yield
            self._keep(self.inflate.decompress(self.inflate.unconsumed_tail, _INFLATE_STEP))

    def _keep(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise AnswerRefusedError(f"the answer is larger than {self.limit // (1024 * 1024)} MB; it was not read")
        self.parts.append(data)

    def body(self) -> bytes:
        return b"".join(self.parts)


def _decoder(response: httpx.Response, limit: int) -> _Decoder:
    declared = response.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > limit and "content-encoding" not in response.headers:
        raise AnswerRefusedError(f"the answer announces {int(declared)} bytes, more than the {limit} read")
    return _Decoder(response.headers.get("content-encoding", ""), limit)


class ApiResponse(httpx.Response):
    """A complete, bounded API answer whose :meth:`json` refuses deep nesting with a ValueError."""

    def json(self, **kwargs: Any) -> Any:
        return load_json(self.content)


def _complete(response: httpx.Response, body: bytes) -> ApiResponse:
    """A read answer with its decoded body (headers of the encoding dropped: nothing left to decode)."""
    headers = [
        (k, v) for k, v in response.headers.multi_items() if k.lower() not in ("content-encoding", "content-length")
    ]
    return ApiResponse(
        response.status_code, headers=headers, content=body, request=response.request, extensions=response.extensions
    )


def read_bounded(response: httpx.Response, deadline: float, limit: int = MAX_ANSWER_BYTES) -> httpx.Response:
    """The streamed ``response`` read in full within ``deadline`` (monotonic) and ``limit`` bytes."""
    decoder = _decoder(response, limit)
    for chunk in response.iter_raw():
        for _ in decoder.feed(chunk):
            check_deadline(deadline)
        if time.monotonic() > deadline:
            raise AnswerTimeoutError("no complete answer within the request's deadline")
    return _complete(response, decoder.body())


async def aread_bounded(response: httpx.Response, limit: int = MAX_ANSWER_BYTES) -> httpx.Response:
    """:func:`read_bounded` for the event loop (the caller bounds its time with :func:`within`)."""
    decoder = _decoder(response, limit)
    async for chunk in response.aiter_raw():
        for _ in decoder.feed(chunk):
            await asyncio.sleep(0)  # between inflate steps, the other triggers run
    return _complete(response, decoder.body())


def timeouts_until(deadline: float, timeout: httpx.Timeout) -> dict[str, float | None]:
    """The client's timeouts, none longer than what is left until ``deadline``."""
    left = max(deadline - time.monotonic(), 0.001)
    return {name: left if value is None else min(value, left) for name, value in timeout.as_dict().items()}


def check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise AnswerTimeoutError("no complete answer within the request's deadline")


@contextlib.asynccontextmanager
async def within(seconds: float) -> AsyncIterator[None]:
    """Everything inside must finish within ``seconds``, else :class:`AnswerTimeoutError`."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise AnswerTimeoutError(f"no complete answer within {seconds:g} s") from None


def load_json(content: bytes | str) -> Any:
    """JSON of an answer; ValueError for non-JSON and for nesting deeper than :data:`MAX_JSON_DEPTH`."""
    try:
        data = json.loads(content)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    check_depth(data)
    return data


def check_depth(data: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """ValueError when ``data`` nests containers deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children: Iterator[Any]
        if isinstance(value, dict):
            children = iter(value.values())
        elif isinstance(value, list):
            children = iter(value)
        else:
            continue
        if depth > limit:
            raise ValueError(f"JSON nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
