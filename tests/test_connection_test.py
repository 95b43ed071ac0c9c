"""The connection "Test" button: the generic probe and UseapiV3Hook.test_connection.

Real HTTP over loopback: the emulator for the API's own answers, and tiny socket servers for what a
wrong base URL can put behind it (a web page, another JSON API, a server that never finishes).
Every message must name the base URL and never the token.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from airflow_provider_midjourney.hooks.connection_test import probe
from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook
from airflow_provider_midjourney.testing import MidjourneyEmulator
from tests.conftest import TOKEN, connection_json

API = "the useapi.net Midjourney API v3"
JOBS = "/v3/midjourney/jobs"


def v3_shape(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("total"), int)


def run_probe(base_url: str, token: str = TOKEN, **kwargs: Any) -> tuple[bool, str]:
    kwargs.setdefault("timeout", 5.0)
    started = time.monotonic()
    ok, message = probe(
        base_url, JOBS, {"Authorization": f"Bearer {token}"}, looks_right=v3_shape, api_name=API, **kwargs
    )
    print(f"{time.monotonic() - started:.2f} s: {ok} {message}")  # numbers for the report, not asserted
    assert token.strip() not in message and "Bearer" not in message
    return ok, message


# -- tiny servers for what is not the API ------------------------------------------------------


@contextmanager
def raw_server(respond: Callable[[socket.socket], None]) -> Iterator[str]:
    """An HTTP/1.1 server on loopback whose every connection is handled by ``respond``."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                data += chunk
            with contextlib.suppress(OSError):  # the client gave up: that is the point of some tests
                respond(self.request)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


def answer(status: str, content_type: str, body: bytes) -> Callable[[socket.socket], None]:
    def respond(sock: socket.socket) -> None:
        head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        sock.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)

    return respond


def trickle(sock: socket.socket) -> None:
    """Headers, then one byte every 0.2 s of a body that would take 40 s: per-read timeouts never fire."""
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n")
    for _ in range(200):
        sock.sendall(b" ")
        time.sleep(0.2)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the probe ----------------------------------------------------------------------------------


def test_the_api_with_the_right_token_is_connected(emulator: MidjourneyEmulator) -> None:
    ok, message = run_probe(emulator.base_url)
    assert ok and emulator.base_url in message
    [request] = emulator.requests_to("GET", JOBS)
    assert request.path == JOBS


def test_a_wrong_token_is_refused(emulator: MidjourneyEmulator) -> None:
    ok, message = run_probe(emulator.base_url, token="wrong-token-abcdef")
    assert not ok and message.startswith("The useapi.net") and "refused the API token (401" in message
    assert emulator.base_url in message


def test_a_wrong_path_is_not_the_api(emulator: MidjourneyEmulator) -> None:
    base = f"{emulator.base_url}/some/prefix"
    ok, message = run_probe(base)
    assert not ok and f"does not look like {API}" in message and "404" in message and base in message


def test_a_web_page_is_not_the_api() -> None:
    page = b"<!doctype html><html><body>Welcome to nginx!</body></html>"
    with raw_server(answer("200 OK", "text/html; charset=utf-8", page)) as base:
        ok, message = run_probe(base)
    assert not ok and message == f"This URL does not look like {API}: got text/html from {base}{JOBS}."


@pytest.mark.parametrize("body", [b'{"status": "ok"}', b"[]", b'{"total": "2"}'])
def test_json_of_another_shape_is_not_the_api(body: bytes) -> None:
    with raw_server(answer("200 OK", "application/json", body)) as base:
        ok, message = run_probe(base)
    assert not ok and "unexpected shape" in message and base in message


def test_json_that_does_not_parse_is_not_the_api() -> None:
    with raw_server(answer("200 OK", "application/json", b"{not json")) as base:
        ok, message = run_probe(base)
    assert not ok and "not valid JSON" in message


def test_nothing_listening() -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    ok, message = run_probe(base)
    assert not ok and message.startswith(f"Nothing is listening at {base}")


def test_https_to_a_plain_http_server_says_to_use_http(emulator: MidjourneyEmulator) -> None:
    base = emulator.base_url.replace("http://", "https://")
    ok, message = run_probe(base)
    assert not ok and f"TLS connection to {base}" in message and "use http://" in message


@pytest.mark.parametrize("base", ["ftp://127.0.0.1:21", "127.0.0.1:8765", ""])
def test_a_base_url_that_is_not_http_is_refused_before_sending(base: str) -> None:
    ok, message = run_probe(base)
    assert not ok and ("http:// or https://" in message or "empty" in message)


def test_a_server_that_never_finishes_hits_the_total_deadline() -> None:
    with raw_server(trickle) as base:
        ok, message = run_probe(base, timeout=1.0)
    # Only the total deadline can end this: every single read succeeds within 0.2 s.
    assert not ok and message.startswith(f"No complete answer from {base} within 1 s")


def test_a_redirect_is_reported_not_followed(emulator: MidjourneyEmulator) -> None:
    target = f"{emulator.base_url}{JOBS}"

    def redirect(sock: socket.socket) -> None:
        sock.sendall(f"HTTP/1.1 301 Moved\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n".encode())

    with raw_server(redirect) as base:
        ok, message = run_probe(base)
    assert not ok and "redirects (301)" in message and target in message
    assert emulator.requests_to("GET", JOBS) == []  # the token went nowhere else


@pytest.mark.parametrize(
    ("status", "fragment"), [(402, "402 Payment Required"), (403, "403 Forbidden"), (503, "answered 503")]
)
def test_other_statuses_in_plain_words(emulator: MidjourneyEmulator, status: int, fragment: str) -> None:
    emulator.fail_next(1, status=status, path_prefix=JOBS)
    ok, message = run_probe(emulator.base_url)
    assert not ok and fragment in message and emulator.base_url in message
    assert len(emulator.requests_to("GET", JOBS)) == 1  # no retries behind the button


@pytest.mark.parametrize("token", [f"{TOKEN}\n", f"{TOKEN[:6]}\n{TOKEN[6:]}", f"{TOKEN}\t", f"{TOKEN}\u2019"])
def test_a_token_httpx_cannot_send_is_refused_without_echoing_it(emulator: MidjourneyEmulator, token: str) -> None:
    ok, message = run_probe(emulator.base_url, token=token)
    assert not ok and "Authorization header" in message and "paste the token again" in message
    assert TOKEN[:6] not in message and TOKEN[6:] not in message
    assert emulator.requests == []  # refused before any request


def test_a_dropped_connection_is_a_plain_failure(emulator: MidjourneyEmulator) -> None:
    emulator.drop_next(1, path_prefix=JOBS)
    ok, message = run_probe(emulator.base_url)
    assert not ok and emulator.base_url in message and "closed the connection" in message


def test_a_password_in_the_base_url_is_not_shown(emulator: MidjourneyEmulator) -> None:
    base = emulator.base_url.replace("http://", "http://someone:hunter2-secret@") + "/wrong"
    ok, message = run_probe(base)
    assert not ok and "hunter2-secret" not in message and "404" in message and "someone:***@127.0.0.1" in message


def test_the_timeout_is_capped() -> None:
    ok, message = run_probe("http://127.0.0.1:1", timeout=30.0)
    assert not ok and "timeout must be more than 0 and at most 10 seconds" in message


# -- the hook's Test button ---------------------------------------------------------------------


def hook_test(monkeypatch: pytest.MonkeyPatch, base_url: str, token: str = TOKEN) -> tuple[bool, str]:
    monkeypatch.setenv("AIRFLOW_CONN_MJ_BUTTON", connection_json(base_url, token))
    ok, message = UseapiV3Hook("mj_button").test_connection()
    assert token.strip() not in message
    return ok, message


def test_hook_right_token(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = hook_test(monkeypatch, emulator.base_url)
    assert ok and message.startswith(f"Connected to {API} at {emulator.base_url}: ") and "0 job(s) running" in message
    assert [r.path for r in emulator.requests] == [JOBS]


def test_hook_wrong_token_and_wrong_path(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = hook_test(monkeypatch, emulator.base_url, token="not-the-token-123")
    assert not ok and "refused the API token" in message
    # The old button read the 404 of a wrong path as "no channels configured": Connected.
    ok, message = hook_test(monkeypatch, f"{emulator.base_url}/some/prefix")
    assert not ok and "does not look like" in message
    assert len(emulator.requests) == 2


def test_hook_wrong_scheme_in_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = hook_test(monkeypatch, "ftp://127.0.0.1:8765")
    assert not ok and "http(s)" in message


def test_hook_token_with_an_inner_line_break(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MJ_BUTTON", connection_json(emulator.base_url, token=f"{TOKEN[:8]}\r\n{TOKEN[8:]}")
    )
    ok, message = UseapiV3Hook("mj_button").test_connection()
    assert not ok and "control character" in message
    assert TOKEN[:8] not in message and TOKEN[8:] not in message and emulator.requests == []
