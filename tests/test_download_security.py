"""Downloads against a hostile CDN on loopback: the bytes decide what is stored, never the
content type; names cannot collide; a pixel bomb is refused from its header; bad destinations
are refused by name before any HTTP."""

# ruff: noqa: F811 - fixtures imported from tests.hostile_http
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_midjourney.contact_sheet import contact_sheet_html
from airflow_provider_midjourney.downloader import StoredFile
from airflow_provider_midjourney.exceptions import MidjourneyDownloadError, MidjourneyInvalidRequestError
from airflow_provider_midjourney.grid import MAX_GRID_PIXELS, GridTooLargeError, split_grid
from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook
from airflow_provider_midjourney.links import MidjourneyImageLink, image_link
from airflow_provider_midjourney.media_types import sniff
from airflow_provider_midjourney.operators.download import (
    Destination,
    Downloader,
    DownloadItem,
    MidjourneyDownloadOperator,
    safe_name,
)
from airflow_provider_midjourney.testing import MidjourneyEmulator
from airflow_provider_midjourney.testing.images import PNG_SIGNATURE, grid_png_bytes, png_bytes
from tests.conftest import FAST_RETRY
from tests.hostile_http import HostileServer, cdn  # noqa: F401 - the fixture
from tests.task_context import task_context


def store(hook: UseapiV3Hook, where: Path, *items: DownloadItem) -> list[StoredFile]:
    return Downloader(hook, Destination.resolve(str(where)), retry=FAST_RETRY).download_all(list(items))


def test_the_bytes_decide_what_is_stored(hook: UseapiV3Hook, cdn: HostileServer, tmp_path: Path) -> None:
    [stored] = store(hook, tmp_path, DownloadItem(f"{cdn.base_url}/png-called-html", "wrongly-typed"))
    assert stored.name == "wrongly-typed.png" and stored.content_type == "image/png"
    for path in ("/html", "/svg", "/secret"):
        with pytest.raises(MidjourneyDownloadError, match="not a PNG/JPEG/WEBP/GIF picture or an MP4/WEBM video"):
            store(hook, tmp_path, DownloadItem(f"{cdn.base_url}{path}", "hostile"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wrongly-typed.png"]  # no .html, no .svg, no parts


def test_sniffing_knows_only_the_allowed_types() -> None:
    assert sniff(png_bytes("x")) == "image/png" and sniff(b"\0\0\0\x18ftypisom\0\0\0\0") == "video/mp4"
    assert sniff(b"\x1a\x45\xdf\xa3\x01\0\0\0\0\0\0\0\0\0\0\0") == "video/webm"
    for head in (b"\0\0\0\x1cftypavif\0\0\0\0", b"\0\0\0\x14ftypqt  \0\0\0\0", b"<svg xmlns=", b"<!doctype html>"):
        assert sniff(head) is None


def test_names_cannot_collide_nor_hold_path_characters(hook: UseapiV3Hook, cdn: HostileServer, tmp_path: Path) -> None:
    texts = ["17:00", "17-00", "17/00", "../../etc/passwd", ".hidden", "a" * 300, "ü", "~"]
    names = [safe_name(text) for text in texts]
    assert len(set(names)) == len(texts)
    assert all("/" not in n and "\\" not in n and not n.startswith(".") and len(n) < 140 for n in names)
    assert safe_name("j1234-5678_a.b") == "j1234-5678_a.b"  # already safe: unchanged
    stored = store(hook, tmp_path, *(DownloadItem(f"{cdn.base_url}/png", safe_name(t)) for t in ("17:00", "17-00")))
    assert len({f.name for f in stored}) == 2 and len(list(tmp_path.iterdir())) == 2


def _png_header_only_bomb(side: int) -> bytes:
    """A real PNG of ``side``x``side`` grey pixels, all zero: a few hundred KB, ``side``² bytes decoded."""
    raw_row = b"\0" * (side + 1)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(raw_row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_a_pixel_bomb_grid_is_refused_from_its_header() -> None:
    pytest.importorskip("PIL")
    bomb = _png_header_only_bomb(13000)
    assert len(bomb) < 1_000_000 and MAX_GRID_PIXELS < 13000 * 13000
    with pytest.raises(GridTooLargeError, match="13000x13000"):
        split_grid(bomb)
    assert len(split_grid(grid_png_bytes("g", ("a", "b", "c", "d")))) == 4  # a real grid still cuts


@pytest.mark.parametrize(
    ("destination", "fragment"),
    [(None, "got NoneType"), (5, "got int"), ("ftp://127.0.0.1:9/x/", "'ftp'"), ("https://h/x/", "'https'")],
)
def test_bad_destinations_are_refused_by_name_before_any_http(
    destination: Any, fragment: str, midjourney_conn: str, emulator: MidjourneyEmulator
) -> None:
    before = len(emulator.requests)
    job_id = "j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney"
    operator = MidjourneyDownloadOperator(task_id="d", destination=destination, job_id=job_id)
    with pytest.raises(MidjourneyInvalidRequestError, match=rf"destination: .*{fragment}"):
        operator.execute(task_context())  # type: ignore[arg-type]
    assert len(emulator.requests) == before


def test_only_web_links_are_offered() -> None:
    for bad in (
        "javascript:alert(1)",
        "data:text/html,<script>",
        "file:///etc/passwd",
        " javascript:x",
        "JaVaScRiPt:1",
    ):
        assert image_link({"grid_url": bad}) == ""
        assert image_link({"grid_url": bad, "image_urls": ["https://cdn/ok.png"]}) == "https://cdn/ok.png"

    class Key:
        dag_id, run_id, task_id, map_index = "d", "r", "t", -1

    class Hostile:
        midjourney_result: dict[str, Any] = {"job_id": "j", "grid_url": "javascript:alert(1)"}  # noqa: RUF012

    assert MidjourneyImageLink().get_link(Hostile(), ti_key=Key()).endswith("/tasks/t/plugin/midjourney")


def test_the_contact_sheet_escapes_every_value() -> None:
    hostile = '"><script>alert(1)</script>'
    page = contact_sheet_html(
        [StoredFile(f"a{hostile}.png", "file:///x/a.png", 5, "image/png", hostile, False, hostile, hostile)],
        title=hostile,
    )
    figures = page.split('<div class="grid">', 1)[1]
    assert "<script>" not in page and "%3C/script" not in figures  # "/" of a name quoted too
