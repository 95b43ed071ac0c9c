"""A hostile picture source on loopback: real HTTP, answers chosen by path, every loop bounded.

``/png`` a small real PNG; ``/html`` and ``/svg`` script with an image content type; ``/drip``
a PNG signature, then one byte every ``?every=`` seconds (at most ``?bytes=`` of them);
``/png-called-html`` a real PNG with a wrong content type; ``/big`` PNG bytes without end (at most
``?mb=`` MB); ``/redirect?to=URL`` a 302 there;
``/secret`` a text file any internal service might hold. Every request is counted by path.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_midjourney.testing.images import png_bytes

SECRET = b"internal-service-secret: root:x:0:0\n"
MAX_DRIP_SECONDS = 120.0


class HostileServer:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.stop_dripping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                server.hits[parts.path] += 1
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server.answer(self, parts.path, query)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_dripping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, handler: BaseHTTPRequestHandler, path: str, query: dict[str, str]) -> None:
        if path == "/png":
            self._send(handler, 200, "image/png", png_bytes("hostile"))
        elif path == "/png-called-html":
            self._send(handler, 200, "text/html", png_bytes("hostile"))
        elif path == "/html":
            self._send(handler, 200, "image/html", b"<!doctype html><script>alert(document.cookie)</script>")
        elif path == "/svg":
            self._send(
                handler, 200, "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'><script>1</script></svg>"
            )
        elif path == "/secret":
            self._send(handler, 200, "image/png", SECRET)
        elif path == "/redirect":
            handler.send_response(302)
            handler.send_header("Location", query["to"])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif path == "/drip":
            handler.send_response(200)
            handler.send_header("Content-Type", "image/png")
            handler.end_headers()
            self._drip(handler, float(query.get("every", "1")), int(query.get("bytes", "60")))
        elif path == "/big":
            handler.send_response(200)
            handler.send_header("Content-Type", "image/png")
            handler.end_headers()
            handler.wfile.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 8)
            for _ in range(int(query.get("mb", "300"))):
                handler.wfile.write(b"\0" * (1024 * 1024))
        else:
            self._send(handler, 404, "text/plain", b"no such thing")

    def _drip(self, handler: BaseHTTPRequestHandler, every: float, count: int) -> None:
        handler.wfile.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 8)
        handler.wfile.flush()
        started = time.monotonic()
        for _ in _bounded(count, started):
            if self.stop_dripping.wait(every):
                return
            handler.wfile.write(b"\0")
            handler.wfile.flush()

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def _bounded(count: int, started: float) -> Iterator[int]:
    for number in range(count):
        if time.monotonic() - started > MAX_DRIP_SECONDS:
            return
        yield number


@pytest.fixture(scope="module")
def cdn() -> Iterator[HostileServer]:
    """A hostile picture source the allow-list names (it plays a private CDN)."""
    with HostileServer() as server:
        yield server


@pytest.fixture(scope="module")
def internal() -> Iterator[HostileServer]:
    """An internal service on loopback that nobody allowed: it must never be contacted."""
    with HostileServer() as server:
        yield server
