"""The connection form's Test button through Airflow's own ``POST /api/v2/connections/test`` on a
real api-server, and the trigger's log lines as the real triggerer writes them.

The button is off unless ``AIRFLOW__CORE__TEST_CONNECTION=Enabled``; this stack enables it. Every
wrong setting must fail with a message that names the base URL and never the token; the client
gives up after 10 s, the longest a person should wait for that button. Times are printed.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator
from tests.e2e.stack import AirflowStack

pytestmark = pytest.mark.e2e

TOKEN = "e2e-button-SECRET-token-4b1e"
DAG_FILES = [Path(__file__).parent / "dags" / "e2e_logs.py"]
# Jobs outlast the deferring task's exit (see SLOW_JOBS in test_e2e.py).
SLOW_JOBS = JobTimings(start_after=0.5, progress_after=1.0, complete_after=(8.0, 10.0))
TIMINGS: list[str] = []
OUR_LOGGERS = ("airflow_provider_midjourney.", "airflow.task.operators.airflow_provider_midjourney.")


@pytest.fixture(scope="module")
def emulator() -> Iterator[MidjourneyEmulator]:
    with MidjourneyEmulator(token=TOKEN, timings=SLOW_JOBS) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def stack(emulator: MidjourneyEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    home = tmp_path_factory.mktemp("airflow-button")
    connection = {"conn_type": "midjourney", "host": emulator.base_url, "password": TOKEN}
    stack = AirflowStack(
        home, DAG_FILES, connection, {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled", "MIDJOURNEY_POLL_INTERVAL": "1"}
    )
    try:
        yield stack.start()
    finally:
        stack.stop()
        if TIMINGS:
            print("\nTest button, time per case:\n" + "\n".join(TIMINGS))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def press_test(stack: AirflowStack, case: str, host: str, token: str = TOKEN) -> tuple[bool, str]:
    body = {"connection_id": "mj_button", "conn_type": "midjourney", "host": host, "password": token}
    started = time.monotonic()
    # 10 s: if the button took longer, this raises and the test fails.
    response = httpx.post(f"http://127.0.0.1:{stack.port}/api/v2/connections/test", json=body, timeout=10)
    took = time.monotonic() - started
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    TIMINGS.append(f"  {case:<20} {took:5.2f} s  {answer['status']!s:<5}  {answer['message']}")
    print(TIMINGS[-1])
    assert token not in answer["message"] and TOKEN not in answer["message"]
    return bool(answer["status"]), str(answer["message"])


def test_right_token(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    ok, message = press_test(stack, "right token", emulator.base_url)
    assert ok and message.startswith(f"Connected to the useapi.net Midjourney API v3 at {emulator.base_url}")


def test_wrong_token(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    ok, message = press_test(stack, "wrong token", emulator.base_url, token="not-the-right-token-9c2d")
    assert not ok and "refused the API token (401 Unauthorized)" in message and emulator.base_url in message


def test_wrong_path(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    base = f"{emulator.base_url}/some/prefix"
    ok, message = press_test(stack, "wrong path", base)
    # The old button read this 404 as "no channels configured" and said Connected.
    assert not ok and "does not look like the useapi.net Midjourney API v3" in message and base in message


def test_wrong_scheme(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    base = emulator.base_url.replace("http://", "https://")
    ok, message = press_test(stack, "wrong scheme", base)
    assert not ok and f"TLS connection to {base}" in message and "use http://" in message


def test_nothing_listening(stack: AirflowStack) -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    ok, message = press_test(stack, "nothing listening", base)
    assert not ok and message.startswith(f"Nothing is listening at {base}")


def test_a_server_that_never_answers(stack: AirflowStack) -> None:
    with socket.socket() as silent:  # the kernel completes the handshake; nobody ever reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        base = f"http://127.0.0.1:{silent.getsockname()[1]}"
        ok, message = press_test(stack, "never answers", base)
    assert not ok and message.startswith(f"No complete answer from {base} within 8 s")


def test_another_web_server(stack: AirflowStack) -> None:
    base = f"http://127.0.0.1:{stack.port}"  # Airflow's own api-server: a web server, not the API
    ok, message = press_test(stack, "another web server", base)
    assert not ok and "does not look like the useapi.net Midjourney API v3" in message and base in message


def test_the_token_is_in_no_log(stack: AirflowStack) -> None:
    assert TOKEN not in stack.log_text()


# -- trigger log lines, as the real triggerer writes them -------------------------------------------


def log_events(paths: list[Path]) -> list[dict[str, Any]]:
    events = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
    return events


def test_trigger_and_sensor_log_lines_are_not_masked(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    run_id = stack.trigger("e2e_logs")
    assert stack.wait_run("e2e_logs", run_id, 240) == "failed"  # "explode" fails on purpose
    states = {ti["task_id"]: ti["state"] for ti in stack.task_instances("e2e_logs", run_id)}
    assert states == {"submit": "success", "sense": "success", "explode": "failed"}
    task_logs = sorted(p for p in stack.logs.rglob("*") if p.is_file() and "dag_id=e2e_logs" in str(p))
    trigger_logs = [p for p in task_logs if ".trigger." in p.name]
    assert trigger_logs, task_logs
    events = log_events(task_logs)
    job_lines = [e for e in events if "Job j" in str(e.get("event", ""))]
    loggers = {e.get("logger") for e in job_lines}
    print("loggers of the job lines:", loggers)
    assert "airflow_provider_midjourney.triggers.midjourney" in loggers  # the triggerer's lines
    assert not any("eyJ***" in str(name) for name in loggers)
    ours = [e for e in events if str(e.get("logger", "")).startswith(OUR_LOGGERS)]
    assert ours and not [e for e in ours if "eyJ***" in json.dumps(e)]
    text = "\n".join(p.read_text(errors="replace") for p in task_logs)
    assert "MidjourneyJobFailedError" in text  # the failed job's exception keeps its name
    # Still masked: Airflow's own lines that print a task's class name (<Task(MidjourneyJobSensor): sense>
    # in "Pushing xcom"); only a class name without "eyJ" would avoid them. Counted for the report.
    print("Airflow's own lines with a masked class name:", text.count("MidjourneyJ***"))
