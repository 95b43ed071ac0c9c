"""Where downloads go: a directory on any filesystem Airflow's object storage or fsspec knows.

:class:`Destination` resolves a URI, an ``ObjectStoragePath`` or a plain path once, before any
HTTP call, and writes files atomically: bytes go to a hidden temporary name in the same directory
(``.<name>.part-<random>``) that is moved into place once complete, and removed on any error.
:func:`destination_asset` names the Airflow ``Asset`` a destination stands for.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError, MidjourneyTransportError

if TYPE_CHECKING:
    from airflow.sdk import Asset
    from fsspec import AbstractFileSystem

__all__ = ["Destination", "destination_asset"]

_JINJA = ("{{", "{%", "{#")
# Schemes fsspec writes objects to without a login at construction. Others (ftp, sftp, http...)
# are refused before any connection unless an Airflow provider registers a filesystem for them.
STORAGE_SCHEMES = frozenset(
    {"file", "local", "memory", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "oss", "hdfs", "webhdfs"}
)


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
        if not isinstance(destination, (str, os.PathLike)):
            raise MidjourneyInvalidRequestError(
                "destination: must be a URI string (file:///data/mj/, s3://bucket/prefix/...), a path or an"
                f" ObjectStoragePath, got {type(destination).__name__}"
            )
        text = os.fspath(destination)
        if not isinstance(text, str):
            raise MidjourneyInvalidRequestError(f"destination: must be a text path, got {type(text).__name__}")
        text = text.strip()
        if not text:
            raise MidjourneyInvalidRequestError("destination: must be a URI or a path, got an empty string")
        if any(marker in text for marker in _JINJA):
            raise MidjourneyInvalidRequestError(f"destination: {text!r} still contains a Jinja template")
        if "://" not in text:
            from fsspec.implementations.local import LocalFileSystem

            root = os.path.abspath(os.path.expanduser(text))
            return cls(LocalFileSystem(), root, f"file://{root}")
        scheme = text.split("://", 1)[0].lower()
        registered = scheme not in ("file", "local") and _airflow_has_fs(scheme)
        if not registered and scheme not in STORAGE_SCHEMES:
            raise MidjourneyInvalidRequestError(
                f"destination: {scheme[:20]!r}:// is not a storage scheme; use one of"
                f" {', '.join(sorted(STORAGE_SCHEMES))} or a scheme an installed Airflow provider registers"
            )
        if registered:
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
