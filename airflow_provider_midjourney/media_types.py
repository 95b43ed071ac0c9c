"""What a file's first bytes show it to be: the only picture and video types stored or relayed.

A CDN's ``Content-Type`` header is untrusted (``image/html`` and ``image/svg+xml`` with a script
were seen): downloads and the gallery decide by the bytes alone, with :func:`sniff`, and name
files after the sniffed type with :func:`extension_of`. SVG, HTML, AVIF/HEIF containers and
anything unrecognised are refused: a stored or relayed file can never run script.
"""

from __future__ import annotations

__all__ = ["EXTENSIONS", "SNIFF_BYTES", "extension_of", "is_video", "sniff"]

#: Media type -> file extension, for every type that may be stored or relayed.
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
}
#: Bytes :func:`sniff` needs to decide.
SNIFF_BYTES = 16
# ISO base media (``ftyp``) major brands of MP4 files; AVIF/HEIF/QuickTime brands are not MP4.
_MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"dash", b"M4V ", b"mmp4", b"msnv"}
)


def sniff(head: bytes) -> str | None:
    """The media type the first :data:`SNIFF_BYTES` bytes show, or None when it is no allowed type."""
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
    if head[4:8] == b"ftyp" and head[8:12] in _MP4_BRANDS:
        return "video/mp4"
    return None


def extension_of(media_type: str) -> str:
    """The file extension of a sniffed media type (KeyError for any other)."""
    return EXTENSIONS[media_type]


def is_video(media_type: str | None) -> bool:
    return (media_type or "").startswith("video/")
