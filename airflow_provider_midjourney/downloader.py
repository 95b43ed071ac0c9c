"""Fetch files in parallel (bounded) and store them atomically under a :class:`Destination`.

The transport (browser headers directly, or the token through the API's CDN proxy) is the hook's;
this module owns naming, the size-based skip, the content-type check, retries and the bounded
thread pool. Guarantees:

* a file only ever appears under its final name complete (see :meth:`Destination.write_atomically`);
* a rerun skips a file that already exists with the size the server announces;
* 403 (the CDN's bot protection), 408, 429, 5xx and lost connections are retried with exponential
  backoff and jitter, bounded in attempts and seconds; other answers fail at once;
* only image and video answers are stored;
* the API token never goes to the CDN (direct mode) and never appears in logs, XCom or errors.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from airflow_provider_midjourney.checks import check_count, check_seconds
from airflow_provider_midjourney.exceptions import (
    MidjourneyAPIError,
    MidjourneyChannelLockedError,
    MidjourneyContentTypeError,
    MidjourneyDownloadError,
    MidjourneyTransportError,
)
from airflow_provider_midjourney.media_types import EXTENSIONS, SNIFF_BYTES, extension_of, sniff
from airflow_provider_midjourney.retry import HttpRetry

if TYPE_CHECKING:
    import logging

    from airflow_provider_midjourney.destinations import Destination
    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook

__all__ = [
    "DOWNLOAD_RETRY",
    "DownloadItem",
    "Downloader",
    "StoredFile",
    "check_download_numbers",
    "extension_for",
    "safe_name",
    "sniffed",
]

_T = TypeVar("_T")
DOWNLOAD_RETRY = HttpRetry(max_attempts=5, max_seconds=120.0, busy_wait=(5.0, 15.0), backoff_initial=1.0)
"""Per file: at most 5 tries within 120 s; 1 s, 2 s, 4 s... (full jitter, capped at 30 s) between them."""
DEFAULT_FILE_TIMEOUT = 600.0
CHUNK_SIZE = 256 * 1024
MAX_IN_MEMORY = 64 * 1024 * 1024  # a grid held whole to be cut into its pictures
RETRYABLE_STATUSES = frozenset({403, 408, 425, 429})
MAX_STEM = 120  # characters kept from a name's text (file names are limited to 255 bytes)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


# -- names and content types ----------------------------------------------------------------------


def safe_name(text: str) -> str:
    """A file name stem from ``text``: ``text`` itself when it only holds ``A-Z a-z 0-9 . _ -``, else
    those characters (every other run as ``-``) followed by ``~`` and a digest of the whole ``text``.

    Two different texts never get the same name (``17:00`` and ``17-00`` once overwrote each
    other): names kept as they were never contain ``~``, changed ones always end in their digest.
    No name contains a path character or starts with a dot.
    """
    cleaned = _UNSAFE.sub("-", text).strip("-.")[:MAX_STEM]
    if cleaned == text:
        return cleaned
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{cleaned or 'file'}~{digest}"


def extension_for(content_type: str | None, url: str = "") -> str:
    """The file extension for an allowed picture or video type (see :mod:`..media_types`); anything
    else is refused. Only for declared types: what is stored is decided by its bytes (:func:`sniffed`)."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    media_type = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}.get(media_type, media_type)
    if media_type in EXTENSIONS:
        return extension_of(media_type)
    shown = media_type or "no content type"
    raise MidjourneyContentTypeError(
        f"{_shown_url(url)} answered {shown[:60]!r}, not a PNG/JPEG/WEBP/GIF picture or an MP4/WEBM video:"
        " refusing to store it (a CDN error page or a wrong URL; check the URL in a browser)",
        content_type=media_type,
    )


def sniffed(chunks: Iterator[bytes], url: str, declared: str | None) -> tuple[str, Iterator[bytes]]:
    """The media type the body's first bytes show, and the whole body (the peeked bytes included).

    The server's ``Content-Type`` (``declared``) is untrusted and only named in the refusal.
    """
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break
    media_type = sniff(head)
    if media_type is None:
        shown = (declared or "no content type").split(";")[0].strip()[:60]
        raise MidjourneyContentTypeError(
            f"{_shown_url(url)} is not a PNG/JPEG/WEBP/GIF picture or an MP4/WEBM video by its first bytes"
            f" (the server called it {shown!r}): refusing to store it",
            content_type=shown,
        )
    return media_type, itertools.chain([head], chunks)


def _shown_url(url: str) -> str:
    """A URL for messages: without its query (signed CDN links carry expiry tokens there)."""
    return url.split("?", 1)[0].split("#", 1)[0] if url else "the URL"


def url_stem(url: str) -> str:
    """A stable, meaningful file stem for an explicit URL: its last two path segments."""
    segments = [s for s in urlsplit(url).path.split("/") if s] or [urlsplit(url).netloc]
    segments[-1] = segments[-1].rsplit(".", 1)[0] or segments[-1]
    return safe_name("_".join(segments[-2:]))


def _expected_size(headers: Mapping[str, str]) -> int | None:
    """The body's length as the server announces it (unknown when compressed for transfer)."""
    if headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        return None
    try:
        size = int(headers.get("content-length", ""))
    except ValueError:
        return None
    return size if size >= 0 else None


# -- downloads ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadItem:
    """One file to fetch: its URL, the file name without extension, and what to show about it."""

    url: str
    stem: str
    job_id: str | None = None
    prompt: str | None = None
    #: ``url`` is a 2x2 grid to store as its four pictures ``<stem>_1.png``..``_4.png`` (see ``grid``).
    quadrants: bool = False


@dataclass(frozen=True)
class StoredFile:
    """A file in the destination, newly written or already there (``skipped``)."""

    name: str
    uri: str
    size: int
    content_type: str
    url: str
    skipped: bool
    job_id: str | None = None
    prompt: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "size": self.size,
            "content_type": self.content_type,
            "url": self.url,
            "skipped": self.skipped,
        }


def check_download_numbers(max_concurrency: Any, file_timeout: Any) -> tuple[int, float]:
    """Parallel files (1-64) and seconds per file (0.1 s-24 h): named, non-retryable errors (also
    ValueErrors) for 0, "4", nan, 1e15... The operator checks them at construction, the
    :class:`Downloader` for any other caller."""
    return (
        check_count(max_concurrency, "max_concurrency", maximum=64),
        check_seconds(file_timeout, "file_timeout", minimum=0.1, maximum=24 * 3600.0),
    )


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, MidjourneyTransportError):
        return True  # a GET is safe to repeat
    if isinstance(exc, MidjourneyChannelLockedError):
        return False
    if isinstance(exc, MidjourneyAPIError):
        return exc.status_code in RETRYABLE_STATUSES or exc.status_code >= 500
    return False


class Downloader:
    """Fetch files in parallel (bounded) and store them atomically under a destination.

    One ``httpx.Client`` (the hook's) serves every thread.

    :param retry: per file: attempts, seconds and waits between tries.
    :param max_concurrency: files fetched at the same time.
    :param file_timeout: seconds one try of one file may take, body included.
    """

    def __init__(
        self,
        hook: MidjourneyBackendHook,
        destination: Destination,
        *,
        use_proxy: bool = False,
        retry: HttpRetry = DOWNLOAD_RETRY,
        max_concurrency: int = 4,
        file_timeout: float = DEFAULT_FILE_TIMEOUT,
        log: logging.Logger | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        max_concurrency, file_timeout = check_download_numbers(max_concurrency, file_timeout)
        self.hook = hook
        self.destination = destination
        self.use_proxy = use_proxy
        self.retry = retry
        self.max_concurrency = max_concurrency
        self.file_timeout = file_timeout
        self.log = log or hook.log
        self.cancel = cancel or threading.Event()

    def download_all(self, items: Sequence[DownloadItem]) -> list[StoredFile]:
        """Every item, in order; raises :class:`MidjourneyDownloadError` naming each failure.

        Files stored before a failure stay (a rerun skips them).
        """
        if not items:
            return []
        self.hook.get_conn()  # create the shared client before the threads use it
        try:
            self.destination.fs.makedirs(self.destination.root, exist_ok=True)
        except Exception as exc:  # object stores have no directories; a real problem shows on write
            self.log.debug("Could not create %s (%s); writing anyway", self.destination.uri, exc)
        if any(item.quadrants for item in items):  # a grid cut into its four pictures (grid.py)
            from airflow_provider_midjourney.grid import store_quadrants

            grids = [stored for item in items if item.quadrants for stored in store_quadrants(self, item)]
            return grids + self.download_all([item for item in items if not item.quadrants])
        workers = min(self.max_concurrency, len(items))
        budget = self._time_budget(len(items), workers)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="midjourney-download")
        finished = False
        try:
            futures = [pool.submit(self.download, item) for item in items]
            finished = _wait_all(futures, time.monotonic() + budget)
        finally:
            if not finished:  # killed, interrupted or out of time: the others stop at their next chunk
                self.cancel.set()
            pool.shutdown(wait=finished, cancel_futures=True)
        if not finished:
            raise MidjourneyDownloadError(f"the downloads did not finish within {budget:.0f} s")
        stored: list[StoredFile] = []
        failures: list[tuple[DownloadItem, BaseException]] = []
        for item, future in zip(items, futures, strict=True):
            error = future.exception()
            if error is None:
                stored.append(future.result())
            else:
                failures.append((item, error))
        if failures:
            details = "; ".join(f"{item.stem} ({_shown_url(item.url)}): {error}" for item, error in failures)
            raise MidjourneyDownloadError(
                f"{len(failures)} of {len(items)} downloads failed ({len(stored)} stored; a rerun skips"
                f" them): {details}"
            ) from failures[0][1]
        return stored

    def _time_budget(self, count: int, workers: int) -> float:
        """The longest the files can take if every try of every file uses all of its time."""
        timeout = self.hook.connection_settings.timeout
        per_file = self.retry.max_seconds + self.retry.backoff_max + self.file_timeout + 2 * timeout
        return -(-count // workers) * per_file + 30.0

    def fetch(self, item: DownloadItem, max_bytes: int = MAX_IN_MEMORY) -> tuple[bytes, str]:
        """One picture's bytes and content type in memory (a grid to cut), with the retry policy."""
        return self._retried(item, lambda: self._fetch_once(item, max_bytes))

    def _fetch_once(self, item: DownloadItem, max_bytes: int) -> tuple[bytes, str]:
        deadline = time.monotonic() + self.file_timeout
        with self.hook.open_download(item.url, use_proxy=self.use_proxy, chunk_size=CHUNK_SIZE) as (headers, chunks):
            declared = headers.get("content-type")
            content_type, body_chunks = sniffed(self._guarded(chunks, item, deadline), item.url, declared)
            body = bytearray()
            for chunk in body_chunks:
                body += chunk
                if len(body) > max_bytes:
                    raise MidjourneyDownloadError(f"{item.stem}: more than {max_bytes} bytes, refusing to hold it")
            expected = _expected_size(headers)
        if expected is not None and len(body) != expected:
            raise MidjourneyTransportError(f"received {len(body)} of {expected} bytes for {item.stem}")
        return bytes(body), content_type

    def download(self, item: DownloadItem) -> StoredFile:
        """One file, with the retry policy."""
        return self._retried(item, lambda: self._download_once(item))

    def _retried(self, item: DownloadItem, once: Callable[[], _T]) -> _T:
        """``once()`` under the per-file retry policy (one loop for files and in-memory grids)."""
        from tenacity import Retrying

        for attempt in Retrying(**self._retry_kwargs(item)):
            with attempt:
                return once()
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def _retry_kwargs(self, item: DownloadItem) -> dict[str, Any]:
        return self.retry.tenacity_kwargs(
            creates_job=False,
            log=self.log,
            what=f"Download of {item.stem}",
            retryable=lambda exc: _retryable(exc) and not self.cancel.is_set(),
        )

    def _download_once(self, item: DownloadItem) -> StoredFile:
        deadline = time.monotonic() + self.file_timeout
        with self.hook.open_download(item.url, use_proxy=self.use_proxy, chunk_size=CHUNK_SIZE) as (
            headers,
            chunks,
        ):
            declared = headers.get("content-type")
            content_type, body = sniffed(self._guarded(chunks, item, deadline), item.url, declared)
            name = f"{item.stem}.{extension_of(content_type)}"
            expected = _expected_size(headers)
            if expected is not None and self.destination.size_of(name) == expected:
                self.log.info("%s is already stored (%d bytes): skipped", name, expected)
                return self._stored(item, name, expected, content_type, skipped=True)
            size = self.destination.write_atomically(name, body, expected)
        self.log.info("Stored %s (%d bytes, %s)", self.destination.uri_of(name), size, content_type)
        return self._stored(item, name, size, content_type, skipped=False)

    def _guarded(self, chunks: Iterator[bytes], item: DownloadItem, deadline: float) -> Iterator[bytes]:
        """The body, stopping when the task is cancelled or the try runs out of time."""
        for chunk in chunks:
            if self.cancel.is_set():
                raise MidjourneyDownloadError(f"download of {item.stem} cancelled")
            if time.monotonic() > deadline:
                raise MidjourneyDownloadError(
                    f"download of {item.stem} took longer than file_timeout={self.file_timeout:g} s"
                )
            yield chunk

    def _stored(self, item: DownloadItem, name: str, size: int, content_type: str, *, skipped: bool) -> StoredFile:
        return StoredFile(
            name=name,
            uri=self.destination.uri_of(name),
            size=size,
            content_type=content_type,
            url=item.url,
            skipped=skipped,
            job_id=item.job_id,
            prompt=item.prompt,
        )


def _wait_all(futures: list[Future[StoredFile]], deadline: float) -> bool:
    """Wait for every future until ``deadline`` (monotonic); True when all are done."""
    pending = set(futures)
    while pending and (left := deadline - time.monotonic()) > 0:
        _, pending = wait(pending, timeout=min(1.0, left), return_when=FIRST_EXCEPTION)
    return not pending
