"""Images a task hands over: read a local file safely, wrap bytes, or keep a checked URL.

Every backend that uploads files uses this one reader: a templated path pointing at
``/proc/self/environ`` or a text file is never read into an upload.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError
from airflow_provider_midjourney.input_checks import check_http_url

MAX_BLOB_BYTES = 10 * 1024 * 1024

# Magic numbers of the image formats Midjourney takes. A local path is read only when its bytes
# start with one of these: a templated path pointing at /proc/self/environ, /etc/passwd or a text
# file must never be uploaded to a third-party API.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


def image_type(content: bytes) -> str | None:
    """The MIME type of PNG, JPEG, WebP or GIF bytes (from their signature), else None."""
    for signature, mime in _SIGNATURES:
        if content.startswith(signature):
            return mime
    if len(content) >= 12 and content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


def _image_problem(content: bytes) -> str | None:
    if not content:
        return "the image is empty"
    if len(content) > MAX_BLOB_BYTES:
        return f"is {len(content)} bytes or more; the API allows at most {MAX_BLOB_BYTES} bytes (10 MB)"
    if image_type(content) is None:
        return "is not a PNG, JPEG, WebP or GIF image (its first bytes are no image signature)"
    return None


class ImageBlob(BaseModel):
    """An image uploaded as ``multipart/form-data``. The bytes stay out of reprs and logs."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    content: bytes = Field(repr=False)
    filename: str = "image.png"
    content_type: str = "application/octet-stream"

    @classmethod
    def from_path(cls, path: str | Path, field: str = "image") -> ImageBlob:
        """Read a local image (see :func:`read_local_image`)."""
        return read_local_image(path, field)

    @classmethod
    def from_bytes(cls, content: bytes, field: str = "image", filename: str | None = None) -> ImageBlob:
        """Wrap image bytes given in code, refusing empty or oversized content naming ``field``.

        Bytes the DAG author hands over are sent as given (the API judges them); only bytes read
        from a path must carry an image signature (:func:`read_local_image`).
        """
        if not content:
            raise MidjourneyInvalidRequestError(f"{field}: the image is empty")
        if len(content) > MAX_BLOB_BYTES:
            raise MidjourneyInvalidRequestError(
                f"{field}: is {len(content)} bytes; the API allows at most {MAX_BLOB_BYTES} bytes (10 MB)"
            )
        mime = image_type(content)
        if mime is None:
            return cls(content=content, filename=filename or "image.png")
        return cls(content=content, filename=filename or f"image.{_EXTENSIONS[mime]}", content_type=mime)

    @field_validator("content")
    @classmethod
    def _at_most_10_mb(cls, value: bytes) -> bytes:
        if not value:
            raise ValueError("the image is empty")
        if len(value) > MAX_BLOB_BYTES:
            raise ValueError(f"is {len(value)} bytes; the API allows at most {MAX_BLOB_BYTES} bytes (10 MB)")
        return value


def read_local_image(path: str | Path, field: str = "image") -> ImageBlob:
    """Read a local image for upload, or raise naming ``field``; nothing is sent either way.

    Only a regular file (after symlinks) whose bytes are a PNG, JPEG, WebP or GIF image, not
    empty and at most 10 MB, is read, and never more than 10 MB + 1 bytes of it (``/proc`` files
    report a size of 0). Every backend that uploads files uses this one reader.
    """
    shown = str(path)[:120]
    try:
        if isinstance(path, str) and (not path.strip() or "\x00" in path):
            raise FileNotFoundError
        file = Path(path)
        info = os.stat(file)
    except (OSError, ValueError):
        raise MidjourneyInvalidRequestError(
            f"{field}: expected an http(s) URL or a readable local image file, got {shown!r}: no such local file"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise MidjourneyInvalidRequestError(f"{field}: {shown!r} is not a regular file (only image files are read)")
    if info.st_size > MAX_BLOB_BYTES:
        raise MidjourneyInvalidRequestError(
            f"{field}: {file.name} is {info.st_size} bytes; the API allows at most {MAX_BLOB_BYTES} bytes (10 MB)"
        )
    try:
        with open(file, "rb") as handle:
            content = handle.read(MAX_BLOB_BYTES + 1)
    except OSError as exc:
        raise MidjourneyInvalidRequestError(f"{field}: cannot read {shown!r}: {exc.strerror}") from None
    problem = _image_problem(content)
    if problem:
        raise MidjourneyInvalidRequestError(f"{field}: {file.name} {problem}")
    return ImageBlob(content=content, filename=file.name, content_type=image_type(content) or "image/png")


ImageSource = str | Path | bytes | ImageBlob
"""An image given by URL (``http(s)://...``), local path, raw bytes or :class:`ImageBlob`."""


def image_from_source(source: ImageSource, field: str) -> str | ImageBlob:
    """Resolve an image argument to a URL (checked, kept as is) or a blob (local image or bytes)."""
    if isinstance(source, ImageBlob):
        return source
    if isinstance(source, bytes | bytearray):
        return ImageBlob.from_bytes(bytes(source), field=field)
    if isinstance(source, str) and "://" in source[:16]:
        return check_http_url(source, field)
    if isinstance(source, str | Path):
        return read_local_image(source, field=field)
    raise MidjourneyInvalidRequestError(
        f"{field}: expected an http(s) URL, a local image path or image bytes, got {type(source).__name__}"
    )
