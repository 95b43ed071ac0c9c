"""Keep the pictures: stream a job's result files to any object storage the task can write to.

Midjourney and Discord CDN links expire or get refused, so a pipeline should end with files it
owns. :class:`MidjourneyDownloadOperator` fetches a job's images, videos or grid (or an explicit
list of URLs) and writes them under a destination URI (``file://``, ``s3://``, ``gs://``,
``memory://`` ... anything Airflow's object storage or an installed fsspec filesystem knows).

The transport (browser headers directly, or the token through the API's CDN proxy) is the hook's;
this module owns naming, the atomic write, the size-based skip, the content-type check, retries
and the bounded thread pool. Guarantees:

* a file only ever appears under its final name complete: bytes go to a hidden temporary name in
  the same directory (``.<name>.part-<random>``) that is moved into place once the declared length
  has arrived, and removed on any error (a worker killed outright can leave the hidden file, never
  a partial one under the final name);
* a rerun skips a file that already exists with the size the server announces;
* 403 (the CDN's bot protection), 408, 429, 5xx and lost connections are retried with exponential
  backoff and jitter, bounded in attempts and seconds; other answers fail at once;
* only image and video answers are stored;
* the API token never goes to the CDN (direct mode) and never appears in logs, XCom or errors.
"""

from __future__ import annotations

import html
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseOperator

from airflow_provider_midjourney.checks import check_count, check_seconds
from airflow_provider_midjourney.exceptions import (
    MidjourneyAPIError,
    MidjourneyChannelLockedError,
    MidjourneyContentTypeError,
    MidjourneyDownloadError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyTransportError,
)
from airflow_provider_midjourney.links import MidjourneyFilesLink
from airflow_provider_midjourney.retry import RetryPolicy

# Hooks, models and tenacity are imported where the task uses them, not on every DAG parse.
if TYPE_CHECKING:
    import logging

    from airflow.sdk import Asset, Context
    from fsspec import AbstractFileSystem

    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook
    from airflow_provider_midjourney.job import MidjourneyJob

__all__ = [
    "CONTACT_SHEET_NAME",
    "DOWNLOAD_RETRY",
    "Destination",
    "DownloadItem",
    "Downloader",
    "MidjourneyDownloadOperator",
    "StoredFile",
    "destination_asset",
    "extension_for",
]

_T = TypeVar("_T")
DownloadKind = Literal["images", "videos", "grid"]
KINDS: tuple[str, ...] = ("images", "videos", "grid")
CONTACT_SHEET_NAME = "index.html"
DOWNLOAD_RETRY = RetryPolicy(max_attempts=5, max_seconds=120.0, busy_wait=(5.0, 15.0), backoff_initial=1.0)
"""Per file: at most 5 tries within 120 s; 1 s, 2 s, 4 s... (full jitter, capped at 30 s) between them."""
DEFAULT_FILE_TIMEOUT = 600.0
CHUNK_SIZE = 256 * 1024
MAX_IN_MEMORY = 64 * 1024 * 1024  # a grid held whole to be cut into its pictures
RETRYABLE_STATUSES = frozenset({403, 408, 425, 429})
# Content type -> file extension. Other image/* and video/* types use their subtype.
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
    "image/svg+xml": "svg",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_JINJA = ("{{", "{%", "{#")


# -- names and content types ----------------------------------------------------------------------


def safe_name(text: str) -> str:
    """``text`` with every run of characters unsafe in file names and URLs (``:``, ``/``...) as ``-``."""
    return _UNSAFE.sub("-", text).strip("-.") or "file"


def extension_for(content_type: str | None, url: str = "") -> str:
    """The file extension for an image/video content type; anything else is refused."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type in EXTENSIONS:
        return EXTENSIONS[media_type]
    major, _, subtype = media_type.partition("/")
    if major in ("image", "video") and re.fullmatch(r"[a-z0-9.+-]{1,20}", subtype):
        return safe_name(subtype.split("+")[0])
    shown = media_type or "no content type"
    raise MidjourneyContentTypeError(
        f"{_shown_url(url)} answered {shown!r}, not an image or a video: refusing to store it (a CDN"
        " error page or a wrong URL; check the URL in a browser)",
        content_type=media_type,
    )


def _shown_url(url: str) -> str:
    """A URL for messages: without its query (signed CDN links carry expiry tokens there)."""
    return url.split("?", 1)[0].split("#", 1)[0] if url else "the URL"


def _url_stem(url: str) -> str:
    """A stable, meaningful file stem for an explicit URL: its last two path segments."""
    segments = [s for s in urlsplit(url).path.split("/") if s] or [urlsplit(url).netloc]
    segments[-1] = segments[-1].rsplit(".", 1)[0] or segments[-1]
    return safe_name("_".join(segments[-2:]))[:120]


def _expected_size(headers: Mapping[str, str]) -> int | None:
    """The body's length as the server announces it (unknown when compressed for transfer)."""
    if headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        return None
    try:
        size = int(headers.get("content-length", ""))
    except ValueError:
        return None
    return size if size >= 0 else None


# -- destinations ---------------------------------------------------------------------------------


def _without_userinfo(uri: str) -> str:
    """``s3://aws_conn@bucket/x`` -> ``s3://bucket/x`` (a connection id is not part of the place)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


def _airflow_has_fs(scheme: str) -> bool:
    """Whether an installed Airflow provider registers a filesystem (with connections) for ``scheme``."""
    try:
        from airflow.sdk.io.fs import has_fs
    except ImportError:  # Airflow 3.0
        try:
            from airflow.io import has_fs
        except ImportError:
            return False
    try:
        return bool(has_fs(scheme))
    except Exception:  # a broken provider must not hide the fsspec route
        return False


@dataclass(frozen=True)
class Destination:
    """A directory on some filesystem: the fsspec filesystem, the directory's path on it, its URI."""

    fs: AbstractFileSystem
    root: str
    uri: str

    @classmethod
    def resolve(cls, destination: str | os.PathLike[str]) -> Destination:
        """An ``ObjectStoragePath`` or a URI string (a plain path means the local filesystem).

        Schemes an Airflow provider registers (``s3``, ``gs``... with their connections) go
        through Airflow's object storage; ``file``, plain paths and every other scheme through
        fsspec directly (``memory://``, or any installed fsspec implementation).
        """
        if not isinstance(destination, str) and hasattr(destination, "fs") and hasattr(destination, "path"):
            uri = _without_userinfo(str(destination))
            if "://" not in uri:
                uri = f"file://{os.path.abspath(uri)}"
            try:
                return cls(destination.fs, str(destination.path), uri)
            except (ValueError, TypeError):  # a scheme no Airflow provider registers: plain fsspec
                return cls.resolve(uri)
        text = os.fspath(destination).strip()
        if not text:
            raise MidjourneyInvalidRequestError("destination: must be a URI or a path, got an empty string")
        if any(marker in text for marker in _JINJA):
            raise MidjourneyInvalidRequestError(f"destination: {text!r} still contains a Jinja template")
        if "://" not in text:
            from fsspec.implementations.local import LocalFileSystem

            root = os.path.abspath(os.path.expanduser(text))
            return cls(LocalFileSystem(), root, f"file://{root}")
        scheme = text.split("://", 1)[0].lower()
        if scheme not in ("file", "local") and _airflow_has_fs(scheme):
            from airflow.sdk import ObjectStoragePath

            path = ObjectStoragePath(text)
            return cls(path.fs, str(path.path), _without_userinfo(text))
        import fsspec.core

        try:
            fs, root = fsspec.core.url_to_fs(text)
        except (ImportError, ValueError) as exc:
            raise MidjourneyInvalidRequestError(
                f"destination: no filesystem for {scheme}:// ({exc}); install the Airflow provider or the"
                " fsspec implementation for it (s3fs, gcsfs, adlfs...)"
            ) from None
        return cls(fs, str(root), _without_userinfo(text))

    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def uri_of(self, name: str) -> str:
        return f"{self.uri.rstrip('/')}/{name}"

    def size_of(self, name: str) -> int | None:
        """Size of an existing file, None when there is none."""
        try:
            info = self.fs.info(self.path(name))
        except (FileNotFoundError, OSError):
            return None
        if info.get("type", "file") != "file":
            return None
        size = info.get("size")
        return int(size) if size is not None else None

    def write_atomically(self, name: str, chunks: Iterable[bytes], expected: int | None = None) -> int:
        """Write ``chunks`` to a hidden temporary file beside ``name``, then move it into place.

        Raises (leaving nothing behind) when the byte count differs from ``expected``.
        """
        temporary = self.path(f".{name}.part-{uuid.uuid4().hex[:12]}")
        written = 0
        try:
            with self.fs.open(temporary, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    written += len(chunk)
            if expected is not None and written != expected:
                raise MidjourneyTransportError(f"received {written} of {expected} bytes for {name}")
            self.fs.mv(temporary, self.path(name))
        except BaseException:
            self._remove_quietly(temporary)
            raise
        return written

    def _remove_quietly(self, path: str) -> None:
        try:
            if self.fs.exists(path):
                self.fs.rm(path)
        except Exception:  # best effort: the temporary name is hidden and never the final one
            pass


def destination_asset(destination: Any) -> Asset | None:
    """The Airflow ``Asset`` for a destination, from its static part (known when the DAG is parsed).

    A templated destination (``file:///data/midjourney/{{ ds }}/``) gives the directory before
    the first template (``file:///data/midjourney``). None when no absolute location is known
    before rendering (``{{ params.destination }}``, a relative path).
    """
    text = str(destination).strip()
    cut = min((text.find(marker) for marker in _JINJA if marker in text), default=-1)
    if cut >= 0:
        text = text[: text.rfind("/", 0, cut) + 1]
    if "://" not in text:
        if not text.startswith("/"):
            return None
        text = f"file://{os.path.normpath(text)}"
    text = _without_userinfo(text)
    if not text.split("://", 1)[1].strip("/"):
        return None
    from airflow.sdk import Asset

    try:
        return Asset(uri=text.rstrip("/"))
    except (ValueError, TypeError):
        return None


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
        retry: RetryPolicy = DOWNLOAD_RETRY,
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
            content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
            extension_for(content_type, item.url)  # refuses an answer that is no image or video
            body = bytearray()
            for chunk in self._guarded(chunks, item, deadline):
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
            content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
            name = f"{item.stem}.{extension_for(content_type, item.url)}"
            expected = _expected_size(headers)
            if expected is not None and self.destination.size_of(name) == expected:
                self.log.info("%s is already stored (%d bytes): skipped", name, expected)
                return self._stored(item, name, expected, content_type, skipped=True)
            size = self.destination.write_atomically(name, self._guarded(chunks, item, deadline), expected)
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


# -- contact sheet --------------------------------------------------------------------------------

_SHEET_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;background:#151515;color:#eee}"
    "h1{font-size:1.3rem}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:1rem}"
    "figure{margin:0;background:#222;padding:.5rem;border-radius:6px}"
    "img,video{width:100%;height:auto;display:block;border-radius:4px}"
    "figcaption{font-size:.85rem;margin-top:.4rem;overflow-wrap:anywhere}code{color:#9cf}p.prompt{margin:.3rem 0}"
)


def contact_sheet_html(files: Sequence[StoredFile], title: str = "Midjourney contact sheet") -> str:
    """A self-contained page showing every file (relative links) with its prompt and job id."""
    figures = []
    for stored in files:
        href = "./" + quote(stored.name)
        if stored.content_type.startswith("video/"):
            media = f'<video src="{href}" controls muted loop preload="metadata"></video>'
        else:
            alt = html.escape(stored.prompt or stored.name)
            media = f'<a href="{href}"><img src="{href}" alt="{alt}" loading="lazy"></a>'
        lines = [f"<b>{html.escape(stored.name)}</b> · {_human_size(stored.size)}"]
        if stored.job_id:
            lines.append(f"job <code>{html.escape(stored.job_id)}</code>")
        if stored.prompt:
            lines.append(f'<p class="prompt">{html.escape(stored.prompt)}</p>')
        figures.append(f"<figure>{media}<figcaption>{'<br>'.join(lines)}</figcaption></figure>")
    jobs = sorted({f.job_id for f in files if f.job_id})
    summary = f"{len(files)} file(s)" + (f" from job {', '.join(html.escape(j) for j in jobs)}" if jobs else "")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{_SHEET_STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1><p>{summary}</p>\n"
        f'<div class="grid">\n' + "\n".join(figures) + "\n</div></body></html>\n"
    )


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


# -- the operator ---------------------------------------------------------------------------------


def _prompt_of(job: MidjourneyJob) -> str | None:
    return job.prompt


class MidjourneyDownloadOperator(BaseOperator):
    """Download a job's results (or explicit URLs) to any object storage, atomically and in parallel.

    Files are named ``<job id>_<id>.<ext>`` (``id``: the ``imageUx``/``videoUx`` id, ``grid`` for
    the grid; ``ext`` from the answer's content type; characters unsafe in file names, such as the
    job id's ``:``, become ``-``). Explicit ``urls`` are numbered 1, 2... after the job id, or
    named after their last two path segments without a job id.

    Returns one ``{"uri", "size", "content_type", "url", "skipped"}`` per file, in order; with
    ``contact_sheet`` the ``index.html`` URI is also pushed under the XCom key ``contact_sheet``.
    Declares the destination as an ``Asset`` outlet (see :func:`destination_asset`) unless
    ``outlets`` is given; the asset event's ``extra`` lists the stored URIs.

    :param job_id: a completed job (``imagine.output["job_id"]``). Optional with ``urls``.
    :param destination: a directory: an ``ObjectStoragePath`` or a URI (``file:///data/mj/{{ ds }}/``,
        ``s3://bucket/prefix/``, ``memory://x/``, a plain local path). Templated.
    :param kind: ``images`` (the job's separate pictures; where the API gives only the grid, as
        ImaginePro does, its four quadrants cut losslessly into ``<job id>_1.png``..``_4.png``, which
        needs Pillow: ``airflow-provider-midjourney[images]``), ``videos`` or ``grid`` (one file).
    :param urls: fetch these URLs instead of the job's.
    :param use_proxy: fetch through ``GET /v1/proxy/cdn-midjourney`` (sends the API token to the API,
        never to the CDN) instead of directly with browser headers.
    :param contact_sheet: also write ``index.html`` showing every file with its prompt and job id.
        One per destination directory: give each download task its own directory.
    :param max_concurrency: files fetched at the same time (threads sharing one HTTP client).
    :param retry: per-file retry policy; default :data:`DOWNLOAD_RETRY`.
    :param file_timeout: seconds one try of one file may take, body included.
    """

    template_fields: Sequence[str] = ("job_id", "destination", "kind", "urls")
    ui_color = "#d9f2e6"
    operator_extra_links = (MidjourneyFilesLink(),)

    def __init__(
        self,
        *,
        destination: str | os.PathLike[str],
        job_id: str | None = None,
        kind: DownloadKind = "images",
        urls: Sequence[str] | None = None,
        use_proxy: bool = False,
        contact_sheet: bool = False,
        midjourney_conn_id: str = "midjourney_default",
        max_concurrency: int = 4,
        retry: RetryPolicy | None = None,
        file_timeout: float = DEFAULT_FILE_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        max_concurrency, file_timeout = check_download_numbers(max_concurrency, file_timeout)
        asset = None if "outlets" in kwargs else destination_asset(destination)
        if asset is not None:
            kwargs["outlets"] = [asset]
        super().__init__(**kwargs)
        self.job_id = job_id
        self.destination = destination
        self.kind = kind
        self.urls = urls
        self.use_proxy = use_proxy
        self.contact_sheet = contact_sheet
        self.midjourney_conn_id = midjourney_conn_id
        self.max_concurrency = max_concurrency
        self.retry = retry
        self.file_timeout = file_timeout
        self.destination_asset = asset
        self._cancel: threading.Event | None = None  # made in execute: operators get deep-copied

    @cached_property
    def hook(self) -> MidjourneyBackendHook:
        """The hook of the connection's backend (chosen by its connection type)."""
        from airflow_provider_midjourney.hooks.base import hook_for_connection

        return hook_for_connection(self.midjourney_conn_id)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        if self.kind not in KINDS:
            raise MidjourneyInvalidRequestError(f"kind: must be one of {', '.join(KINDS)}, got {self.kind!r}")
        urls = self._checked_urls()
        job_id = self.hook.check_job_id(self.job_id, "job_id") if self.job_id else None
        if urls is None and job_id is None:
            raise MidjourneyInvalidRequestError("job_id: required unless urls is given")
        destination = Destination.resolve(self.destination)  # validated before any HTTP call
        self._cancel = threading.Event()
        try:
            items = self._items(job_id, urls)
            downloader = Downloader(
                self.hook,
                destination,
                use_proxy=self.use_proxy,
                retry=self.retry or DOWNLOAD_RETRY,
                max_concurrency=self.max_concurrency,
                file_timeout=self.file_timeout,
                log=self.log,
                cancel=self._cancel,
            )
            started = time.monotonic()
            stored = downloader.download_all(items)
            elapsed = time.monotonic() - started
        finally:
            self.hook.close()
        fresh = sum(not f.skipped for f in stored)
        self.log.info(
            "%d file(s) in %s (%d new, %d already there) in %.2f s",
            len(stored),
            destination.uri,
            fresh,
            len(stored) - fresh,
            elapsed,
        )
        sheet = self._write_contact_sheet(destination, stored) if self.contact_sheet else None
        self.contact_sheet_uri = sheet  # for MidjourneyFilesLink, evaluated when the task ends
        if sheet is not None:
            context["ti"].xcom_push(key="contact_sheet", value=sheet)
        self._annotate_asset_event(context, stored, sheet)
        return [f.to_xcom() for f in stored]

    def on_kill(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _checked_urls(self) -> list[str] | None:
        if self.urls is None:
            return None
        urls = [self.urls] if isinstance(self.urls, str) else list(self.urls)
        if not urls:
            raise MidjourneyInvalidRequestError("urls: give at least one URL (or leave it out to use the job's)")
        for url in urls:
            if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
                raise MidjourneyInvalidRequestError(f"urls: every entry must be an http(s) URL, got {str(url)[:80]!r}")
        return urls

    def _items(self, job_id: str | None, urls: list[str] | None) -> list[DownloadItem]:
        if urls is not None:
            prompt = self._prompt_for_sheet(job_id)
            if job_id is None:
                return [DownloadItem(url, _url_stem(url)) for url in urls]
            return [
                DownloadItem(url, f"{safe_name(job_id)}_{n}", job_id, prompt) for n, url in enumerate(urls, start=1)
            ]
        from airflow_provider_midjourney.vocabulary import JobStatus

        assert job_id is not None
        job = self.hook.fetch_job(job_id)
        if job.status != JobStatus.COMPLETED:
            raise MidjourneyDownloadError(f"Job {job_id} is {job.status}: only a completed job has files to download")
        return self._job_items(job)

    def _prompt_for_sheet(self, job_id: str | None) -> str | None:
        if not (self.contact_sheet and job_id):
            return None
        try:
            return _prompt_of(self.hook.fetch_job(job_id))
        except MidjourneyError as exc:  # only decoration: the files matter
            self.log.warning("Could not read job %s for its prompt: %s", job_id, exc)
            return None

    def _job_items(self, job: MidjourneyJob) -> list[DownloadItem]:
        stem, prompt = safe_name(job.job_id), _prompt_of(job)
        if self.kind == "grid":
            pairs = [("grid", job.grid_url)] if job.grid_url else []
        elif self.kind == "images" and not job.image_urls and not job.video_urls and job.grid_url:
            from airflow_provider_midjourney.grid import require_pillow

            require_pillow()  # the API gives only the grid: cut it into its four pictures
            return [DownloadItem(job.grid_url, stem, job.job_id, prompt, quadrants=True)]
        else:
            urls = job.image_urls if self.kind == "images" else job.video_urls
            pairs = [(str(n), url) for n, url in enumerate(urls, start=1)]
        if not pairs:
            grid = "a grid" if job.grid_url else "no grid"
            has = f"{len(job.image_urls)} image(s), {len(job.video_urls)} video(s), {grid}"
            raise MidjourneyDownloadError(f"Job {job.job_id} has no {self.kind} to download (it has {has})")
        return [DownloadItem(url, f"{stem}_{suffix}", job.job_id, prompt) for suffix, url in pairs]

    def _write_contact_sheet(self, destination: Destination, stored: list[StoredFile]) -> str:
        jobs = sorted({f.job_id for f in stored if f.job_id})
        title = f"Midjourney {jobs[0]}" if len(jobs) == 1 else "Midjourney contact sheet"
        page = contact_sheet_html(stored, title).encode()
        destination.write_atomically(CONTACT_SHEET_NAME, [page], len(page))
        uri = destination.uri_of(CONTACT_SHEET_NAME)
        self.log.info("Contact sheet: %s", uri)
        return uri

    def _annotate_asset_event(self, context: Context, stored: list[StoredFile], sheet: str | None) -> None:
        """Put the stored URIs in the destination asset's event, for DAGs scheduled on it."""
        events = context.get("outlet_events")
        if self.destination_asset is None or events is None:
            return
        extra: dict[str, Any] = {"files": [f.uri for f in stored][:100], "count": len(stored)}
        # Job ids and prompts, for DAGs scheduled on the asset and for the gallery's download view.
        extra["job_ids"] = list(dict.fromkeys(f.job_id for f in stored if f.job_id))[:100]
        extra["prompts"] = list(dict.fromkeys(f.prompt for f in stored if f.prompt))[:100]
        if sheet is not None:
            extra["contact_sheet"] = sheet
        try:
            events[self.destination_asset].extra.update(extra)
        except Exception as exc:  # only decoration: the asset event happens anyway
            self.log.warning("Could not annotate the asset event: %s", exc)
