"""Shared pieces of the benchmark scripts: the emulator in its own process, machine facts, tables.

Not a test module and not part of the package. Nothing here imports Airflow at module level, so
the scripts can set ``AIRFLOW_HOME`` and connection variables before Airflow is imported.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

TOKEN = "benchmark-token"
JOBS_PREFIX = "/v3/midjourney/jobs/"
MAX_JOBS_PER_CHANNEL = 15  # the API's limit per Discord channel (Pro/Mega plans)


def isolate_airflow_home() -> str:
    """A throwaway ``AIRFLOW_HOME`` (no ``~/airflow`` side effects), quiet Airflow logging."""
    home = os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="midjourney-bench-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    return home


def connection_env(base_url: str, token: str = TOKEN) -> dict[str, str]:
    conn = {"conn_type": "midjourney", "host": base_url, "password": token}
    return {"AIRFLOW_CONN_MIDJOURNEY_DEFAULT": json.dumps(conn)}


# -- the emulator, in a child process --------------------------------------------------------


@dataclass(frozen=True)
class EmulatorConfig:
    complete_after: tuple[float, float] = (20.0, 80.0)
    start_after: float = 1.0
    progress_after: float = 2.0
    channels: int = 1
    seed: int = 7
    latency: float = 0.0  # s per API answer (the emulator's latency knob)
    jitter: float = 0.0  # +/- s around it, uniform (latency_jitter)
    hold: bool = False  # jobs run until plan_completions() gives each its completion time


@dataclass(frozen=True)
class PlannedJob:
    """A job created in the emulator: when it was created and when it is planned to finish (epoch s)."""

    job_id: str
    created: float
    completes: float


def _emulator_child(conn: Connection, config: EmulatorConfig) -> None:
    """Child process: the emulator's HTTP server thread, plus a command loop on ``conn``."""
    from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator
    from airflow_provider_midjourney.testing.useapi_v3_params import job_spec

    timings = JobTimings(config.start_after, config.progress_after, config.complete_after)
    emu = MidjourneyEmulator(
        token=TOKEN,
        channels=config.channels,
        max_jobs=MAX_JOBS_PER_CHANNEL,
        max_image_jobs=MAX_JOBS_PER_CHANNEL,
        max_video_jobs=MAX_JOBS_PER_CHANNEL,
        timings=timings,
        seed=config.seed,
    )
    emu.latency, emu.latency_jitter = config.latency, config.jitter
    emu.never_finish = config.hold
    emu.start()
    channels = emu.channels
    used: Counter[str] = Counter()
    conn.send(emu.base_url)
    try:
        while True:
            command, arg = conn.recv()
            if command == "create":
                # Created directly in the emulator's state (through the same validation as POST),
                # spread over channels so no channel exceeds the API's 15 concurrent jobs.
                planned = []
                for i in range(int(arg)):
                    free = next((c for c in channels if used[c] < MAX_JOBS_PER_CHANNEL), None)
                    if free is None:
                        raise RuntimeError(f"more than {len(channels) * MAX_JOBS_PER_CHANNEL} jobs: add channels")
                    used[free] += 1
                    spec = job_spec("imagine", {"prompt": f"benchmark {i}", "stream": False, "channel": free})
                    jobid = emu.state.create_job(spec)[0].id
                    planned.append(PlannedJob(jobid, *emu.state.planned_completion(jobid)))
                conn.send(planned)
            elif command == "complete":  # warm-up jobs: finished at once
                for jobid in arg:
                    emu.complete_job(jobid)
                conn.send(None)
            elif command == "release":  # the previous batch is done: its channel slots are free
                used.clear()
                conn.send(None)
            elif command == "requests":
                gets: Counter[str] = Counter()
                first: dict[str, float] = {}  # job id -> time.monotonic() of its first GET
                total = 0
                for record in emu.requests:
                    total += 1
                    if record.method == "GET" and record.path.startswith(JOBS_PREFIX):
                        jobid = record.path[len(JOBS_PREFIX) :]
                        gets[jobid] += 1
                        first.setdefault(jobid, record.time)
                conn.send((total, dict(gets), first))
            elif command == "plan":  # [(job id, epoch)]: each held job completes at its time
                for jobid, when in arg:
                    emu.state.complete_at(jobid, when)
                conn.send(None)
            elif command == "request_log":
                # (wall time, method, path) of every request; monotonic -> wall on this machine
                offset = time.time() - time.monotonic()
                conn.send([(r.time + offset, r.method, r.path) for r in emu.requests])
            elif command == "reset_requests":
                with emu._requests_lock:
                    emu._requests.clear()
                conn.send(None)
            elif command == "stop":
                break
    finally:
        emu.stop()


class EmulatorProcess:
    """``with EmulatorProcess(config) as emu:`` the emulator in a separate (spawned) process."""

    def __init__(self, config: EmulatorConfig, startup_timeout: float = 60.0) -> None:
        self.config = config
        self._timeout = startup_timeout
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_emulator_child, args=(child, config), name="midjourney-emulator")
        self.base_url = ""

    def __enter__(self) -> EmulatorProcess:
        self.process.start()
        if not self._conn.poll(self._timeout):
            self.process.kill()
            raise RuntimeError("the emulator process did not start in time")
        self.base_url = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(("stop", None))
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)

    def _call(self, command: str, arg: Any = None, timeout: float = 300.0) -> Any:
        self._conn.send((command, arg))
        if not self._conn.poll(timeout):
            raise TimeoutError(f"emulator command {command!r} took longer than {timeout}s")
        return self._conn.recv()

    def create_jobs(self, n: int) -> list[PlannedJob]:
        return list(self._call("create", n))

    def complete_now(self, job_ids: Sequence[str]) -> None:
        self._call("complete", list(job_ids))

    def release_channels(self) -> None:
        self._call("release")

    def requests(self) -> tuple[int, dict[str, int], dict[str, float]]:
        """(all requests received, GET /jobs/<jobid> count per job id, monotonic time of its first GET)."""
        total, gets, first = self._call("requests")
        return int(total), dict(gets), dict(first)

    def plan_completions(self, plan: Sequence[tuple[str, float]]) -> None:
        """Held jobs (``hold=True``): each completes at its epoch time, as if it ran that long."""
        self._call("plan", list(plan))

    def request_log(self) -> list[tuple[float, str, str]]:
        """(epoch seconds, method, path) of every request received, in arrival order."""
        return [tuple(r) for r in self._call("request_log")]  # type: ignore[misc]

    def reset_requests(self) -> None:
        self._call("reset_requests")


def channels_for(jobs: int) -> int:
    return max(1, -(-jobs // MAX_JOBS_PER_CHANNEL))


# -- facts and formatting ---------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    versions = {}
    for name in ("airflow", "httpx", "httpcore", "pydantic", "uvicorn"):
        try:
            from importlib.metadata import version

            versions[name] = version("apache-airflow" if name == "airflow" else name)
        except Exception:
            versions[name] = "?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "cpu": f"{cpu}, {os.cpu_count()} logical CPUs",
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "load average at start": load,
    }


def print_machine() -> None:
    for key, value in machine_info().items():
        print(f"  {key}: {value}")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (also readable in a terminal)."""
    cells = [[str(h) for h in headers], *[[_fmt(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
