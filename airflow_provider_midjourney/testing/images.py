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


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full(kind: bytes, *parts: bytes, version: int = 0, flags: int = 0) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_MP4_TIMESCALE, _MP4_DURATION, _MP4_SIDE = 1000, 5000, 64  # a 5-second 64x64 clip, as Midjourney's are 5 s


def _moov(mdat_offset: int, sample_size: int) -> bytes:
    """A movie box with one video track of one sample: every box a player or probe looks for."""
    times = struct.pack(">III", 0, 0, _MP4_TIMESCALE) + struct.pack(">I", _MP4_DURATION)
    mvhd = _full(
        b"mvhd", times, struct.pack(">IH", 0x10000, 0x100), bytes(10), _MATRIX, bytes(24), struct.pack(">I", 2)
    )
    tkhd = _full(
        b"tkhd",
        struct.pack(">IIII", 0, 0, 1, 0) + struct.pack(">I", _MP4_DURATION),
        bytes(8),
        struct.pack(">HHHH", 0, 0, 0, 0),
        _MATRIX,
        struct.pack(">II", _MP4_SIDE << 16, _MP4_SIDE << 16),
        flags=3,
    )
    mdhd = _full(b"mdhd", times, struct.pack(">HH", 0x55C4, 0))  # language "und"
    hdlr = _full(b"hdlr", bytes(4), b"vide", bytes(12), b"VideoHandler\x00")
    vmhd = _full(b"vmhd", bytes(8), flags=1)
    dinf = _box(b"dinf", _full(b"dref", struct.pack(">I", 1), _full(b"url ", flags=1)))
    stbl = _box(
        b"stbl",
        _full(b"stsd", struct.pack(">I", 0)),
        _full(b"stts", struct.pack(">III", 1, 1, _MP4_DURATION)),
        _full(b"stsc", struct.pack(">IIII", 1, 1, 1, 1)),
        _full(b"stsz", struct.pack(">III", sample_size, 1, 0)),
        _full(b"stco", struct.pack(">II", 1, mdat_offset)),
    )
    minf = _box(b"minf", vmhd, dinf, stbl)
    return _box(b"moov", mvhd, _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf)))


@lru_cache(maxsize=256)
def mp4_bytes(key: str) -> bytes:
    """A small, structurally valid ISO-BMFF (MP4) file unique to ``key``: ``ftyp``, ``free`` naming
    ``key``, ``moov`` (one 5-second 64x64 video track of one sample) and its ``mdat``."""
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2mp41")
    free = _box(b"free", f"midjourney-emulator {key}".encode())
    sample = hashlib.sha256(key.encode()).digest() * 8
    moov_length = len(_moov(0, len(sample)))
    mdat_offset = len(ftyp) + len(free) + moov_length + 8
    return ftyp + free + _moov(mdat_offset, len(sample)) + _box(b"mdat", sample)


def mp4_length(key: str) -> int:
    return len(mp4_bytes(key))
