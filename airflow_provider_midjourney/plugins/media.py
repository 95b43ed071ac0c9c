"""Relay one picture to the browser: a CDN URL fetched with a browser's headers, or a stored file.

The gallery serves pictures itself because the Midjourney CDN refuses requests without browser
headers (and signed links expire), and because stored files (``file://``, ``s3://``...) are not
reachable from a browser at all. What may be relayed is limited three ways:

* only what the task's own result names (the caller looks it up by position, never by a URL or
  path from the request);
* only bodies whose first bytes are a PNG, JPEG, GIF, WebP, AVIF, MP4/MOV or WebM (never SVG or
  HTML, which could run script on Airflow's origin; never a text file named by a forged XCom);
* at most :data:`MAX_BYTES`, within :data:`TIMEOUT` per read, through at most 3 redirects.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from typing import Any

import httpx

from airflow_provider_midjourney.plugins.results import Picture

MAX_BYTES = 200 * 1024 * 1024
CHUNK = 256 * 1024
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# The CDN in front of Midjourney's pictures turns away clients that do not look like a browser.
BROWSER_HEADERS = {
    "User-Agent": ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"),
    "Accept": "image/avif,image/webp,image/png,image/*,video/*;q=0.9,*/*;q=0.5",
}
RESPONSE_HEADERS = {
    "Cache-Control": "private, max-age=600",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Content-Disposition": "inline",
}


class PictureUnavailable(Exception):
    """The picture cannot be relayed; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


def sniff(head: bytes) -> str | None:
    """The media type the first bytes of a file show, or None when it is no picture or video."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    return None


def _checked(chunks: Iterator[bytes], what: str) -> tuple[str, Iterator[bytes]]:
    """Peek at the first bytes: the media type, and every chunk (the peeked ones included)."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= 16:
            break
    media_type = sniff(head)
    if media_type is None:
        raise PictureUnavailable(f"{what} is not a picture or a video", 415)

    def body() -> Iterator[bytes]:
        sent = len(head)
        yield head
        for chunk in chunks:
            sent += len(chunk)
            if sent > MAX_BYTES:
                raise PictureUnavailable(f"{what} is larger than {MAX_BYTES} bytes")
            yield chunk

    return media_type, body()


def _shown(url: str) -> str:
    return url.split("?", 1)[0]


def open_url(url: str) -> tuple[str, Iterator[bytes]]:
    """Fetch ``url`` with browser headers; the caller must exhaust or close the iterator."""
    if not url.lower().startswith(("http://", "https://")):
        raise PictureUnavailable("only http(s) URLs are fetched", 404)
    client = httpx.Client(timeout=TIMEOUT, follow_redirects=True, max_redirects=3, headers=BROWSER_HEADERS)
    try:
        response = client.send(client.build_request("GET", url), stream=True)
    except httpx.HTTPError as exc:
        client.close()
        raise PictureUnavailable(f"{_shown(url)} could not be fetched ({type(exc).__name__})") from None
    if response.status_code != 200:
        response.close()
        client.close()
        raise PictureUnavailable(f"{_shown(url)} answered {response.status_code}")

    def chunks() -> Generator[bytes, None, None]:
        try:
            yield from response.iter_bytes(CHUNK)
        finally:
            response.close()
            client.close()

    stream = chunks()
    try:
        return _checked(stream, _shown(url))
    except BaseException:
        stream.close()
        raise


def open_stored(uri: str) -> tuple[str, Iterator[bytes]]:
    """Read a stored file (any filesystem the download operator writes to)."""
    from airflow_provider_midjourney.destinations import Destination

    folder, _, name = uri.rstrip("/").rpartition("/")
    if not name:
        raise PictureUnavailable(f"{uri!r} names no file", 404)
    try:
        destination = Destination.resolve(folder + "/" if "://" in folder else folder or "/")
        handle: Any = destination.fs.open(destination.path(name), "rb")
    except FileNotFoundError:
        raise PictureUnavailable(f"{name} is not in {folder} (any more)", 404) from None
    except Exception as exc:
        raise PictureUnavailable(f"{name} could not be opened ({type(exc).__name__})") from None

    def chunks() -> Generator[bytes, None, None]:
        with contextlib.closing(handle):
            while chunk := handle.read(CHUNK):
                yield chunk

    stream = chunks()
    try:
        return _checked(stream, name)
    except BaseException:
        stream.close()
        raise


def open_picture(picture: Picture) -> tuple[str, Iterator[bytes]]:
    """The picture's media type and body; a stored file that is gone falls back to its CDN URL."""
    if picture.kind != "file":
        return open_url(picture.source)
    try:
        return open_stored(picture.source)
    except PictureUnavailable:
        if picture.fallback_url:
            return open_url(picture.fallback_url)
        raise
