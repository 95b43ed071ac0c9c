"""A 2x2 Midjourney grid as its four pictures, cut losslessly: what the APIs without separate images need.

useapi.net gives a grid job's four pictures as separate URLs (``imageUx``); ImaginePro (and other
relaying APIs) give only the grid picture. :class:`~airflow_provider_midjourney.operators.download.
MidjourneyDownloadOperator` with ``kind="images"`` then fetches the grid once and stores its four
quadrants under the same names separate pictures get (``<job>_1.png`` .. ``<job>_4.png``, in
Midjourney's order: top left, top right, bottom left, bottom right), so the files, the XCom list
and the contact sheet look the same whichever API ran the job.

"Losslessly" means every pixel of a file is the grid's pixel: the quadrants are written as PNG
(whatever the grid's format), keeping the colour mode and ICC profile; nothing is scaled or
re-compressed with loss. Pillow is an optional dependency: install
``airflow-provider-midjourney[images]``.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING, Any

from airflow_provider_midjourney.exceptions import AirflowFailException, MidjourneyDownloadError

if TYPE_CHECKING:
    from airflow_provider_midjourney.downloader import Downloader, DownloadItem, StoredFile

PILLOW_EXTRA = "airflow-provider-midjourney[images]"
CONTENT_TYPE = "image/png"
# zlib level of the quadrant files (every level is lossless). Measured on a 2048x2048 grid: level 6
# (Pillow's default) took about twice as long as 3 on photo-like noise for the same size; on smooth
# art 3 is ~25% larger than 6 and no slower. 3 keeps a worker's time per grid around a second.
PNG_COMPRESS_LEVEL = 3
# Colour modes PNG stores as they are; any other (CMYK, YCbCr...) becomes RGB(A) first.
PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})
# Pixels a grid may have, checked from its header before anything is decoded. Midjourney's largest
# grids are 2048x2048 and upscales 4096x4096; a crafted 13000x13000 PNG of a few KB decodes to
# ~500 MB. Pillow's own bomb limit (89 M pixels warns, 179 M raises) lets such a file through.
MAX_GRID_PIXELS = 8192 * 8192


class GridTooLargeError(MidjourneyDownloadError, AirflowFailException):
    """The grid's header announces more pixels than :data:`MAX_GRID_PIXELS` (another try cannot help)."""


class PillowMissingError(MidjourneyDownloadError, AirflowFailException):
    """The grid must be cut into pictures but Pillow is not installed (another try cannot help)."""


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise PillowMissingError(
            "Storing a grid job's four pictures from its grid needs Pillow, which is not installed: "
            f"pip install '{PILLOW_EXTRA}' (or download kind='grid' to keep the grid as one file)"
        ) from None
    return Image


def require_pillow() -> None:
    """Raise :class:`PillowMissingError` now, before anything is downloaded, if Pillow is missing."""
    _pillow()


def quadrant_names(stem: str) -> list[str]:
    """The four file names, as separate pictures of a grid are named."""
    return [f"{stem}_{n}.png" for n in range(1, 5)]


def split_grid(data: bytes) -> list[bytes]:
    """The four quadrants of a grid picture as PNG files: top left, top right, bottom left, bottom right."""
    image_module = _pillow()
    try:
        with warnings.catch_warnings():  # Pillow's bomb warning: the check below refuses those itself
            warnings.simplefilter("ignore", image_module.DecompressionBombWarning)
            opened = image_module.open(io.BytesIO(data))  # reads the header only
        with opened:
            width, height = opened.size
            if width * height > MAX_GRID_PIXELS:
                raise GridTooLargeError(
                    f"the grid is {width}x{height} pixels, more than {MAX_GRID_PIXELS} (8192x8192): refusing to"
                    " decode it (no Midjourney grid is that large)"
                )
            opened.load()
            grid = opened.copy()
            icc = opened.info.get("icc_profile")
    except (OSError, ValueError, image_module.DecompressionBombError) as exc:
        raise MidjourneyDownloadError(f"the grid is not a picture Pillow can read: {exc}") from None
    width, height = grid.size
    if width < 2 or height < 2:
        raise MidjourneyDownloadError(f"the grid is {width}x{height} pixels: too small to hold four pictures")
    if grid.mode not in PNG_MODES:
        grid = grid.convert("RGBA" if "A" in grid.getbands() else "RGB")
    half_w, half_h = width // 2, height // 2
    boxes = [
        (0, 0, half_w, half_h),
        (half_w, 0, width, half_h),
        (0, half_h, half_w, height),
        (half_w, half_h, width, height),
    ]
    pictures = []
    for box in boxes:
        buffer = io.BytesIO()
        grid.crop(box).save(
            buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL, **({"icc_profile": icc} if icc else {})
        )
        pictures.append(buffer.getvalue())
    return pictures


def store_quadrants(downloader: Downloader, item: DownloadItem) -> list[StoredFile]:
    """Fetch the grid of ``item`` once (with the downloader's retries) and store its four pictures.

    Each file is written atomically; a rerun finds all four stored and fetches nothing.
    """
    from airflow_provider_midjourney.downloader import StoredFile

    destination, names = downloader.destination, quadrant_names(item.stem)

    def stored(name: str, size: int, skipped: bool) -> StoredFile:
        return StoredFile(
            name=name,
            uri=destination.uri_of(name),
            size=size,
            content_type=CONTENT_TYPE,
            url=item.url,
            skipped=skipped,
            job_id=item.job_id,
            prompt=item.prompt,
        )

    sizes = [destination.size_of(name) for name in names]
    if all(sizes):
        downloader.log.info("The four pictures of %s are already stored: skipped", item.stem)
        return [stored(name, size or 0, True) for name, size in zip(names, sizes, strict=True)]
    require_pillow()
    data, _content_type = downloader.fetch(item)
    files = []
    for name, picture in zip(names, split_grid(data), strict=True):
        size = destination.write_atomically(name, [picture], len(picture))
        downloader.log.info("Stored %s (%d bytes, a quarter of the grid)", destination.uri_of(name), size)
        files.append(stored(name, size, False))
    return files
