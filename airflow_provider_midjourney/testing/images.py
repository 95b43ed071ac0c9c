"""Tiny, valid and distinct media files built with zlib + struct only.

PNG pixel data is stored in uncompressed deflate blocks, so a file's length is known from its
key and dimensions alone (:func:`png_length`) without rendering it: job snapshots can report
exact attachment sizes at no cost, and the bytes are only rendered when the CDN serves them.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from functools import lru_cache

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CELL_SIZE = 64
GRID_SIZE = 2 * CELL_SIZE
_STORED_BLOCK = 65535


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _text(key: str) -> bytes:
    return b"Comment\x00" + f"midjourney-emulator {key}".encode()


def _zlib_stored(raw: bytes) -> bytes:
    """A zlib stream holding ``raw`` in stored (uncompressed) deflate blocks."""
    out = bytearray(b"\x78\x01")
    blocks = [raw[i : i + _STORED_BLOCK] for i in range(0, len(raw), _STORED_BLOCK)] or [b""]
    for index, block in enumerate(blocks):
        final = 1 if index == len(blocks) - 1 else 0
        out += struct.pack("<BHH", final, len(block), len(block) ^ 0xFFFF) + block
    out += struct.pack(">I", zlib.adler32(raw) & 0xFFFFFFFF)
    return bytes(out)


def _corners(key: str) -> list[tuple[int, int, int]]:
    digest = hashlib.sha256(key.encode()).digest()
    return [(digest[i], digest[i + 1], digest[i + 2]) for i in (0, 3, 6, 9)]


@lru_cache(maxsize=256)
def _cell(key: str) -> tuple[bytes, ...]:
    """Rows of RGB pixels: a bilinear gradient between four corner colours seeded by ``key``."""
    c00, c10, c01, c11 = _corners(key)
    span = CELL_SIZE - 1
    top = [c00[c] + (c10[c] - c00[c]) * x / span for x in range(CELL_SIZE) for c in range(3)]
    bot = [c01[c] + (c11[c] - c01[c]) * x / span for x in range(CELL_SIZE) for c in range(3)]
    rows = []
    for y in range(CELL_SIZE):
        v = y / span
        rows.append(bytes(int(t + (b - t) * v) for t, b in zip(top, bot, strict=True)))
    return tuple(rows)


def _encode(rows: list[bytes], key: str) -> bytes:
    height, width = len(rows), len(rows[0]) // 3
    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"tEXt", _text(key))
        + _chunk(b"IDAT", _zlib_stored(raw))
        + _chunk(b"IEND", b"")
    )


def png_length(key: str, width: int = CELL_SIZE, height: int = CELL_SIZE) -> int:
    """Exact byte length of :func:`png_bytes` / :func:`grid_png_bytes` for that key and size."""
    raw = height * (1 + 3 * width)
    blocks = max(1, -(-raw // _STORED_BLOCK))
    idat = 2 + 5 * blocks + raw + 4
    return len(PNG_SIGNATURE) + (12 + 13) + (12 + len(_text(key))) + (12 + idat) + 12


@lru_cache(maxsize=512)
def png_bytes(key: str) -> bytes:
    """A 64x64 RGB PNG unique to ``key`` (the key is also embedded in a tEXt chunk)."""
    return _encode(list(_cell(key)), key)


@lru_cache(maxsize=128)
def grid_png_bytes(key: str, cell_keys: tuple[str, str, str, str]) -> bytes:
    """A 128x128 PNG made of the 2x2 cells ``cell_keys`` (like a Midjourney grid)."""
    cells = [_cell(k) for k in cell_keys]
    rows = [cells[top][y] + cells[top + 1][y] for top in (0, 2) for y in range(CELL_SIZE)]
    return _encode(rows, key)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR."""
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _mp4_boxes(key: str) -> list[bytes]:
    ftyp = b"ftypisom" + struct.pack(">I", 512) + b"isomiso2avc1mp41"
    free = b"free" + f"midjourney-emulator {key}".encode()
    mdat = b"mdat" + hashlib.sha256(key.encode()).digest() * 8
    return [ftyp, free, mdat]


@lru_cache(maxsize=256)
def mp4_bytes(key: str) -> bytes:
    """A small payload shaped like an MP4 file (``ftyp`` box, a ``free`` box naming ``key``)."""
    return b"".join(struct.pack(">I", len(box) + 4) + box for box in _mp4_boxes(key))


def mp4_length(key: str) -> int:
    return sum(len(box) + 4 for box in _mp4_boxes(key))
