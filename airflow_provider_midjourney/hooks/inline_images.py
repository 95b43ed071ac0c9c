"""Images sent inside a JSON body as ``data:`` URLs, for APIs that take no uploads or image URLs.

A local file or bytes (already read by the models' local-image reader) is encoded as it is; a URL
is downloaded first through the hook's own asset stream (browser headers, no secret), at most
:data:`~airflow_provider_midjourney.image_intake.MAX_BLOB_BYTES`.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError
from airflow_provider_midjourney.image_intake import MAX_BLOB_BYTES, ImageBlob, image_type

if TYPE_CHECKING:
    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook


def image_bytes(hook: MidjourneyBackendHook, image: str | ImageBlob, field: str) -> tuple[bytes, str]:
    """The image's bytes and MIME type (a URL is fetched); refuses what is no PNG/JPEG/WebP/GIF."""
    content = image.content if isinstance(image, ImageBlob) else fetch_image(hook, image, field)
    mime = image_type(content)
    if mime is None:
        raise MidjourneyInvalidRequestError(f"{field}: not a PNG, JPEG, WebP or GIF image")
    return content, mime


def data_url(hook: MidjourneyBackendHook, image: str | ImageBlob, field: str) -> str:
    """``data:<mime>;base64,...`` of an image (a blob, or a URL fetched first)."""
    content, mime = image_bytes(hook, image, field)
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def fetch_image(hook: MidjourneyBackendHook, url: str, field: str) -> bytes:
    """Download an image URL (at most 10 MB) for an API that only takes base64 images."""
    data = bytearray()
    with hook.open_download(url) as (_, chunks):
        for chunk in chunks:
            data += chunk
            if len(data) > MAX_BLOB_BYTES:
                raise MidjourneyInvalidRequestError(f"{field}: {url[:80]} is larger than 10 MB")
    if not data:
        raise MidjourneyInvalidRequestError(f"{field}: {url[:80]} answered an empty body")
    return bytes(data)
