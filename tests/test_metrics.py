"""Metrics reach a real StatsD listener (UDP on loopback) through Airflow's own ``Stats``.

StatsD is switched on through Airflow's configuration ([metrics] statsd_on/host/port), and the
Task SDK's stats are initialised from it as Airflow's task runner does at start-up (``dag.test()``
runs tasks in-process, without that start-up).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import TOKEN
from tests.dag_runs import run_dag, task_states

pytest.importorskip("statsd", reason="StatsD metrics need the statsd package (the test extra installs it)")

pytestmark = pytest.mark.usefixtures("airflow_db", "midjourney_conn")


class UdpListener:
    """Collects every datagram sent to 127.0.0.1:<port>."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.lines.extend(data.decode(errors="replace").splitlines())

    def wait_for(self, prefix: str, seconds: float = 5.0) -> list[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = [line for line in self.lines if line.startswith(prefix)]
            if found:
                return found
            time.sleep(0.05)
        return []

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def statsd(monkeypatch: pytest.MonkeyPatch) -> Iterator[UdpListener]:
    # Set up as Airflow 3.3's task runner does; before 3.3 the factory lives elsewhere (metrics.py falls
    # back to airflow.stats there, which these tests do not cover).
    pytest.importorskip("airflow.sdk.observability", reason="Airflow < 3.2 has no airflow.sdk.observability")
    from airflow.sdk.observability import stats

    if not hasattr(stats, "initialize"):  # 3.2 has the module, not yet the task runner's set-up call
        pytest.skip("Airflow < 3.3 sets up its Stats differently; these tests drive 3.3's stats.initialize()")
    from airflow.sdk.observability.metrics.stats_utils import get_stats_factory

    listener = UdpListener()
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(listener.port))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PREFIX", "airflow")
    stats.initialize(factory=get_stats_factory(), export_legacy_names=False)  # as the task runner does
    try:
        yield listener
    finally:
        monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "False")
        stats.initialize(factory=get_stats_factory(), export_legacy_names=False)  # back to no metrics
        listener.close()


def test_submitted_failover_outcome_and_duration_reach_statsd(emulator, statsd, monkeypatch) -> None:
    conn = {"conn_type": "imaginepro", "host": emulator.base_url, "password": TOKEN, "extra": {"job_timeout": "120"}}
    monkeypatch.setenv("AIRFLOW_CONN_MJ_BACKUP", json.dumps(conn))
    emulator.fail_next(1, status=402, path_prefix="/v3/midjourney/jobs/imagine", method="POST")
    dr = run_dag(
        "metrics_failover",
        """
        ok = MidjourneyImagineOperator(task_id="ok", prompt="counted", poll_interval=0.05,
                                       fallback_conn_ids=["mj_backup"])
        ok >> MidjourneyImagineOperator(task_id="bad", prompt="something forbidden", poll_interval=0.05)
    """,
    )
    assert task_states(dr) == {"ok": "success", "bad": "failed"}
    assert statsd.wait_for("airflow.midjourney.failovers.useapi_v3.no_credits:1|c")
    assert statsd.wait_for("airflow.midjourney.jobs.submitted.imaginepro:1|c")
    assert statsd.wait_for("airflow.midjourney.jobs.submitted.useapi_v3:1|c")
    assert statsd.wait_for("airflow.midjourney.jobs.completed.imaginepro:1|c")
    assert statsd.wait_for("airflow.midjourney.jobs.moderated.useapi_v3:1|c")
    [duration] = statsd.wait_for("airflow.midjourney.job_duration.imaginepro:")
    milliseconds = float(re.fullmatch(r"airflow\.midjourney\.job_duration\.imaginepro:([0-9.]+)\|ms", duration)[1])
    assert 0 < milliseconds < 120_000
    assert not [line for line in statsd.lines if TOKEN in line]


def test_a_timed_out_job_is_counted(emulator, statsd) -> None:
    emulator.never_finish = True
    dr = run_dag(
        "metrics_timeout",
        """
        MidjourneyImagineOperator(task_id="slow", prompt="never done", poll_interval=0.05, timeout=0.5)
    """,
    )
    assert task_states(dr) == {"slow": "failed"}
    assert statsd.wait_for("airflow.midjourney.jobs.timed_out.useapi_v3:1|c")
    assert statsd.wait_for("airflow.midjourney.job_duration.useapi_v3:")
