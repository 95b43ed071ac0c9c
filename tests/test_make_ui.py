"""`make ui` (airflow_provider_midjourney.testing.ui): what it hands `airflow standalone`, and that it
never mistakes another server on its port for the Airflow it starts."""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_midjourney.testing import ui


def test_standalone_finds_this_virtualenvs_airflow_and_short_heartbeats(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # make runs the venv's python without activating it
    env = ui.stack_env(tmp_path, 8099, {"conn_type": "imaginepro"})
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)  # standalone runs `airflow`
    assert env["AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL"] == "1"  # a 5 s job must not race the supervisor


@pytest.fixture
def healthy_server() -> Iterator[int]:
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/api/v2/monitor/health" else 404)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_a_port_that_already_answers_is_refused_before_anything_starts(healthy_server: int, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=f"Port {healthy_server} already answers"):
        ui.main(["--port", str(healthy_server), "--home", str(tmp_path / "home")])
    assert not (tmp_path / "home").exists()  # nothing copied, no Airflow started
