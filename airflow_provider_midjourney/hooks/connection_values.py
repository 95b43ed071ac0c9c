"""Reading a connection's host and token: refused with a message naming the field, never printed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow_provider_midjourney.exceptions import MidjourneyConfigurationError
from airflow_provider_midjourney.redaction import register_secret


def base_url_from_host(host: str | None, port: int | None = None, default: str = "https://api.useapi.net") -> str:
    """``http://127.0.0.1:8765`` stays as is; a bare host gets https; empty means ``default``."""
    if host is not None and not isinstance(host, str):
        raise MidjourneyConfigurationError(f"Connection host must be text, got {type(host).__name__}")
    host = (host or "").strip().rstrip("/")
    if not host:
        return default
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in host) or not host.isascii():
        raise MidjourneyConfigurationError(
            f"Connection host {host[:80]!r} contains spaces, control or non-ASCII characters;"
            " expected an http(s) base URL"
        )
    if "://" not in host:
        host = f"https://{host}"
    try:
        parts = urlsplit(host)
        has_port = parts.port is not None
    except ValueError:
        raise MidjourneyConfigurationError(f"Connection host {host[:80]!r} is not a valid http(s) base URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MidjourneyConfigurationError(f"Connection host {host[:80]!r} is not an http(s) base URL")
    if port and not has_port:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise MidjourneyConfigurationError(f"Connection port must be 1-65535, got {port!r}")
        host = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
    return host


def check_token(token: Any, conn_id: str, api_name: str, *, required: bool = True) -> str:
    """The connection's secret without surrounding whitespace, registered for redaction.

    A pasted token often ends with a newline: sent as is, the HTTP library refuses the header
    and prints it, token included. Control and non-ASCII characters are refused with a message
    that does not contain them (nor the token).
    """
    if token is None:
        token = ""
    if not isinstance(token, str):
        raise MidjourneyConfigurationError(f"Connection {conn_id!r}: the API token (password) must be text")
    secret = str(token).strip()
    if required and not secret:
        raise MidjourneyConfigurationError(
            f"Connection {conn_id!r} has no API token: put the {api_name} token in its password"
            " (it is empty or only whitespace)"
        )
    if secret and (not secret.isascii() or any(ord(char) < 32 or ord(char) == 127 for char in secret)):
        raise MidjourneyConfigurationError(
            f"Connection {conn_id!r}: the API token (password) contains a control character or a non-ASCII character"
            f" ({len(secret)} characters in all); copy the {api_name} token again"
        )
    register_secret(secret)
    return secret
