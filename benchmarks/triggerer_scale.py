"""Triggerer scale and the cost of waiting: N concurrent MidjourneyJobTrigger.run() in one event loop.

    python benchmarks/triggerer_scale.py            # N = 100, 1,000, 5,000 + 30 worker-polling processes
    python benchmarks/triggerer_scale.py --quick    # N = 100, 1,000 + 10 processes, shorter jobs

Part 1 (triggerer scale): for each N, a fresh emulator process is started (jobs finish at
uniformly spread times, ``--complete-after``) and a fresh "triggerer" process runs N triggers as
asyncio tasks in one event loop, the way Airflow's triggerer does, after a warm-up. Measured in
the triggerer process: event-loop lag (a 50 ms sleep watchdog, like the triggerer's own
``block_watchdog``), the time each event is yielded, RSS; by this process: the triggerer's open TCP
connections; by the emulator: the requests it received per job. Detection latency is the time
from the job's planned completion in the emulator to the event being yielded.

Part 2 (waiting cost, same run): the same kind of jobs waited by worker-side polling, one process
per waiting task running exactly what ``deferrable=False`` runs (``_wait_in_worker``), and the
memory per waiting job of both compared.

Prints tables (Markdown) and, with ``--json``, writes the raw numbers; ``--plot`` draws
detection latency and memory vs N (needs matplotlib).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    EmulatorConfig,
    EmulatorProcess,
    PlannedJob,
    channels_for,
    connection_env,
    isolate_airflow_home,
    median,
    percentile,
    print_machine,
    table,
)

WARMUP_JOBS = 20
LAG_INTERVAL = 0.05
RSS_INTERVAL = 0.25

# Targets from the issue.
MAX_LAG_TARGET = 0.2  # s
DETECTION_SLACK = 1.0  # p99 detection <= poll_interval + this
RSS_PER_JOB_TARGET = 20 * 1024  # bytes
MEMORY_RATIO_TARGET = 1000


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- the triggerer process ------------------------------------------------------------------


def _triggerer_child(conn: Connection, env: dict[str, str], log_path: str) -> None:
    """Runs in a spawned process: one event loop, triggers run as tasks on command."""
    os.environ.update(env)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    import asyncio
    import gc
    import resource

    from airflow_provider_midjourney.triggers.midjourney import MidjourneyJobTrigger

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def run_all(
        job_ids: list[str], poll_interval: float, max_wait: float, profile: tuple[str, float] | None
    ) -> dict[str, Any]:
        lags: list[float] = []
        lag_times: list[float] = []
        rss: list[tuple[float, float, int]] = []
        events: dict[str, tuple[float, str]] = {}
        done = asyncio.Event()

        async def watchdog() -> None:
            while not done.is_set():
                before = time.perf_counter()
                await asyncio.sleep(LAG_INTERVAL)
                lags.append(time.perf_counter() - before - LAG_INTERVAL)
                lag_times.append(time.time())

        async def rss_sampler() -> None:
            while not done.is_set():
                rss.append((time.time(), time.monotonic(), _rss()))
                await asyncio.sleep(RSS_INTERVAL)

        async def run_trigger(trigger: MidjourneyJobTrigger) -> None:
            # What TriggerRunner.run_trigger does, minus its logging/telemetry.
            async for event in trigger.run():
                events[trigger.job_id] = (time.time(), str(event.payload.get("status")))

        if profile is not None:
            _profile_loop(*profile)
        gc_pauses: list[tuple[int, float, float]] = []  # (generation, seconds, when)
        gc_started = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
            else:
                gc_pauses.append((info["generation"], time.perf_counter() - gc_started[0], time.time()))

        gc.callbacks.append(on_gc)
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.time()
        monitors = [asyncio.create_task(watchdog()), asyncio.create_task(rss_sampler())]
        deadline = t0 + max_wait
        tasks = []
        for j in job_ids:  # like TriggerRunner.create_triggers: one at a time, yielding in between
            trigger = MidjourneyJobTrigger(job_id=j, poll_interval=poll_interval, deadline=deadline)
            tasks.append(asyncio.create_task(run_trigger(trigger)))
            await asyncio.sleep(0)
        _, pending = await asyncio.wait(tasks, timeout=max_wait + 30)
        for task in pending:
            task.cancel()
        t_end = time.time()
        done.set()
        await asyncio.gather(*monitors, *pending, return_exceptions=True)
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        gc.callbacks.remove(on_gc)
        full = [p for p in gc_pauses if p[0] == 2]
        errors = [repr(t.exception()) for t in tasks if t.done() and not t.cancelled() and t.exception()]
        return {
            "t0": t0,
            "t_end": t_end,
            "events": events,
            "lags": lags,
            "lag_times": lag_times,
            "rss": rss,
            "cpu_s": (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime),
            "gc_max_s": max((p[1] for p in gc_pauses), default=0.0),
            "gc_full": len(full),
            "gc_full_max_s": max((p[1] for p in full), default=0.0),
            "gc_full_at": [round(p[2] - t0, 2) for p in full],
            "errors": errors[:5],
            "n_errors": len(errors),
        }

    conn.send(_rss())
    while True:
        command, arg = conn.recv()
        if command == "run":
            conn.send(loop.run_until_complete(run_all(*arg)))
        elif command == "baseline":
            gc.collect()
            loop.run_until_complete(asyncio.sleep(0.5))
            started = time.perf_counter()
            gc.collect()  # how long a full collection of the start-up heap takes, before any trigger
            pause = time.perf_counter() - started
            objects = len(gc.get_objects())
            if arg:  # what a deployment can do once the triggerer has started: GC skips that heap
                gc.freeze()
            conn.send((_rss(), pause, objects))
        elif command == "stop":
            break
    loop.close()


def _profile_loop(path: str, seconds: float) -> None:
    """pyinstrument on the event-loop thread for the first ``seconds`` of the run (text + HTML)."""
    import asyncio

    from pyinstrument import Profiler

    profiler = Profiler(interval=0.002, async_mode="disabled")
    profiler.start()

    def stop() -> None:
        profiler.stop()
        Path(f"{path}.html").write_text(profiler.output_html())
        if profiler.last_session is not None:  # re-render with: pyinstrument --load <file> ...
            profiler.last_session.save(f"{path}.pyisession")
        text = profiler.output_text(unicode=True, color=False, show_all=False)
        Path(f"{path}.txt").write_text(text)

    asyncio.get_running_loop().call_later(seconds, stop)


@dataclass
class ScaleResult:
    n: int
    poll_interval: float
    all_finished: bool
    finished: int
    wall_s: float
    ideal_s: float
    max_lag_s: float
    max_lag_at_s: float
    p99_lag_s: float
    detect_p50_s: float
    detect_p99_s: float
    detect_max_s: float
    baseline_rss: int
    waiting_rss_added: int
    peak_rss_added: int
    rss_per_job: float
    peak_rss_per_job: float
    requests_per_job: float
    max_requests_per_job: int
    request_bound_mean: float
    over_bound: int
    max_connections: int
    cpu_s: float
    gc_max_s: float
    gc_full: int
    gc_full_max_s: float
    errors: list[str] = field(default_factory=list)
    detection: list[float] = field(default_factory=list, repr=False)
    gc_baseline_s: float = float("nan")  # one full collection of the start-up heap (no trigger yet)
    gc_baseline_objects: int = 0
    run: int = 1
    waiting_jobs: int = 0  # triggers that had polled when the waiting RSS was sampled

    @property
    def all_waited(self) -> bool:
        """All N triggers were waiting at once at some moment (else per-job memory is n/a)."""
        return self.waiting_jobs >= self.n

    def targets(self) -> dict[str, bool]:
        return {
            "all finish": self.all_finished,
            "max lag < 0.2 s": self.max_lag_s < MAX_LAG_TARGET,
            "p99 detection <= poll + 1 s": self.detect_p99_s <= self.poll_interval + DETECTION_SLACK,
            "<= 20 KB per waiting job": self.all_waited and self.rss_per_job <= RSS_PER_JOB_TARGET,
            "requests <= duration/poll + 2": self.over_bound == 0,
        }


def _connections(pid: int) -> int:
    import psutil

    try:
        return sum(1 for c in psutil.Process(pid).net_connections(kind="tcp") if c.status == "ESTABLISHED")
    except (psutil.Error, OSError):
        return -1


def run_scale(n: int, args: argparse.Namespace, log_dir: str) -> ScaleResult:
    config = EmulatorConfig(
        complete_after=tuple(args.complete_after),  # type: ignore[arg-type]
        channels=channels_for(max(n, WARMUP_JOBS)),
    )
    with EmulatorProcess(config) as emu:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        log_path = os.path.join(log_dir, f"triggerer-{n}.log")
        env = connection_env(emu.base_url)
        if args.pool_size:
            env["AIRFLOW__MIDJOURNEY__SHARED_POOL_SIZE"] = str(args.pool_size)
        proc = ctx.Process(target=_triggerer_child, args=(child, env, log_path))
        proc.start()
        try:
            if not parent.poll(120):
                raise RuntimeError("the triggerer process did not start")
            parent.recv()
            # Warm-up: a few triggers on finished jobs load every code path (and lazy import).
            warm = emu.create_jobs(WARMUP_JOBS)
            emu.complete_now([j.job_id for j in warm])
            parent.send(("run", ([j.job_id for j in warm], args.poll_interval, 60.0, None)))
            warm_result = parent.recv()
            if len(warm_result["events"]) != WARMUP_JOBS:
                raise RuntimeError(f"warm-up failed: {warm_result['errors']}")
            emu.release_channels()
            emu.reset_requests()
            parent.send(("baseline", args.gc_freeze))
            baseline, gc_baseline, objects = parent.recv()

            planned = emu.create_jobs(n)
            max_wait = max(j.completes for j in planned) - time.time() + 120 + n / 50
            profile = (str(Path(args.profile, f"triggerer-{n}")), args.profile_seconds) if args.profile else None
            parent.send(("run", ([j.job_id for j in planned], args.poll_interval, max_wait, profile)))
            max_conn = 0
            hard_stop = time.monotonic() + max_wait + 120
            while not parent.poll(2.0):
                max_conn = max(max_conn, _connections(proc.pid))
                if time.monotonic() > hard_stop or not proc.is_alive():
                    raise RuntimeError(f"N={n}: the triggerer process did not report in time")
            result = parent.recv()
            if args.profile:
                print(Path(args.profile, f"triggerer-{n}.txt").read_text(), flush=True)
            _, gets, first_get = emu.requests()
            parent.send(("stop", None))
        finally:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
    summary = _summarise(n, args.poll_interval, planned, result, gets, first_get, baseline, max_conn)
    summary.gc_baseline_s, summary.gc_baseline_objects = gc_baseline, objects
    return summary


def _summarise(
    n: int,
    poll: float,
    planned: list[PlannedJob],
    result: dict[str, Any],
    gets: dict[str, int],
    first_get: dict[str, float],
    baseline: int,
    max_conn: int,
) -> ScaleResult:
    t0, events = result["t0"], result["events"]
    completed = {j: t for j, (t, status) in events.items() if status == "completed"}
    detection = [completed[j.job_id] - j.completes for j in planned if j.job_id in completed]
    # "Waiting" memory: sampled while every trigger is still waiting (before the first event).
    # "Waiting" memory: the largest RSS sampled while all N triggers were waiting: each had polled
    # once (the emulator saw its first GET) and none had fired yet. When no such moment exists
    # (the loop could not start them all before the first job finished), the sample before the
    # first event is divided by the triggers that had polled by then, and reported as n/a.
    first_event = min((t for t, _ in events.values()), default=result["t_end"])
    all_polled = max(first_get.values()) if len(first_get) >= n else float("inf")
    window = [s for s in result["rss"] if all_polled <= s[1] and s[0] < first_event]
    if window:
        waiting_rss, waiting_jobs = max(s[2] for s in window), n
    else:
        early = [s for s in result["rss"] if s[0] < first_event] or result["rss"]
        _, sampled_at, waiting_rss = max(early, key=lambda s: s[2])
        waiting_jobs = max(1, sum(1 for t in first_get.values() if t <= sampled_at))
    peak = max(r for _, _, r in result["rss"])
    counts = [gets.get(j.job_id, 0) for j in planned]
    bounds = [max(0.0, j.completes - t0) / poll + 2 for j in planned]
    lags = result["lags"]
    return ScaleResult(
        n=n,
        poll_interval=poll,
        all_finished=len(completed) == n,
        finished=len(completed),
        wall_s=(max(completed.values()) if completed else result["t_end"]) - t0,
        ideal_s=max(j.completes for j in planned) - t0,
        max_lag_s=max(lags) if lags else float("nan"),
        max_lag_at_s=result["lag_times"][lags.index(max(lags))] - t0 if lags else float("nan"),
        p99_lag_s=percentile(lags, 99),
        detect_p50_s=percentile(detection, 50),
        detect_p99_s=percentile(detection, 99),
        detect_max_s=max(detection) if detection else float("nan"),
        baseline_rss=baseline,
        waiting_rss_added=waiting_rss - baseline,
        peak_rss_added=peak - baseline,
        rss_per_job=(waiting_rss - baseline) / waiting_jobs,
        waiting_jobs=waiting_jobs,
        peak_rss_per_job=(peak - baseline) / n,
        requests_per_job=sum(counts) / n,
        max_requests_per_job=max(counts),
        request_bound_mean=sum(bounds) / n,
        over_bound=sum(1 for c, b in zip(counts, bounds, strict=True) if c > b),
        max_connections=max_conn,
        cpu_s=result["cpu_s"],
        gc_max_s=result["gc_max_s"],
        gc_full=result["gc_full"],
        gc_full_max_s=result["gc_full_max_s"],
        errors=result["errors"],
        detection=detection,
    )


# -- worker-side polling ----------------------------------------------------------------------

WORKER_CODE = """
import sys, time
from airflow.sdk import DAG
from airflow_provider_midjourney.operators import MidjourneyImagineOperator
from airflow_provider_midjourney.triggers.midjourney import MidjourneyJobTrigger

poll, max_wait = float(sys.argv[1]), float(sys.argv[2])
op = MidjourneyImagineOperator(task_id="wait", prompt="x", deferrable=False, poll_interval=poll)
print("ready", flush=True)
job_id = sys.stdin.readline().strip()
trigger = MidjourneyJobTrigger(job_id=job_id, poll_interval=poll, deadline=time.time() + max_wait)
event = op._wait_in_worker(trigger)  # exactly what deferrable=False runs after submitting
print("done", event["status"], flush=True)
"""


@dataclass
class WorkerResult:
    processes: int
    finished: int
    rss_per_job: float
    uss_per_job: float
    pss_per_job: float
    startup_s: float


def run_workers(m: int, args: argparse.Namespace, log_dir: str) -> WorkerResult:
    import psutil

    config = EmulatorConfig(complete_after=tuple(args.complete_after), channels=channels_for(m))  # type: ignore[arg-type]
    with EmulatorProcess(config) as emu:
        env = {**os.environ, **connection_env(emu.base_url)}
        max_wait = args.complete_after[1] + 120
        procs: list[subprocess.Popen[str]] = []
        logs = []
        started = time.monotonic()
        try:
            for i in range(m):
                log = open(os.path.join(log_dir, f"worker-{i}.log"), "w")  # noqa: SIM115
                logs.append(log)
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", WORKER_CODE, str(args.poll_interval), str(max_wait)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=log,
                        text=True,
                        env=env,
                    )
                )
            deadline = time.monotonic() + 300
            for p in procs:  # bounded: "ready" comes within seconds of the start
                line = ""
                while line != "ready" and line != "<eof>":
                    line = _readline(p, timeout=max(0.1, deadline - time.monotonic()))
                    if line == "<timeout>":
                        raise RuntimeError("a worker process did not start in time")
                if line != "ready":
                    raise RuntimeError("a worker process exited before it was ready")
            startup = time.monotonic() - started
            planned = emu.create_jobs(m)
            for p, job in zip(procs, planned, strict=True):
                assert p.stdin is not None
                p.stdin.write(job.job_id + "\n")
                p.stdin.flush()
            # Sample while every job is still running (after each process's first poll).
            first_completion = min(j.completes for j in planned)
            samples: list[tuple[int, int, int]] = []
            time.sleep(min(args.poll_interval + 1, max(0.0, first_completion - time.time() - 1)))
            while time.time() < first_completion - 0.5 and len(samples) < 3 * m:
                for p in procs:
                    info = psutil.Process(p.pid).memory_full_info()
                    samples.append((info.rss, info.uss, getattr(info, "pss", info.uss)))
                time.sleep(1.0)
            if not samples:
                raise RuntimeError("jobs finished before the worker processes could be measured")
            finished = 0
            for p in procs:
                out, _ = p.communicate(timeout=max_wait + 30)  # stdout may also carry log lines
                finished += "done completed" in out.splitlines()
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
            for log in logs:
                log.close()
    return WorkerResult(
        processes=m,
        finished=finished,
        rss_per_job=median([s[0] for s in samples]),
        uss_per_job=median([s[1] for s in samples]),
        pss_per_job=median([s[2] for s in samples]),
        startup_s=startup,
    )


def _readline(p: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert p.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(p.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return "<timeout>"
    line = p.stdout.readline()
    return line.strip() if line else "<eof>"


# -- report -----------------------------------------------------------------------------------


def _kb(value: float) -> str:
    return f"{value / 1024:,.1f} KB"


def _mb(value: float) -> str:
    return f"{value / 2**20:,.1f} MB"


def report(results: list[ScaleResult], workers: WorkerResult | None) -> None:
    print("\n## Triggerer scale (one event loop)\n")
    print(
        table(
            [
                "N",
                "run",
                "all finished",
                "wall / ideal (s)",
                "max lag (s)",
                "p99 lag (s)",
                "detect p50 / p99 / max (s)",
                "RSS added / waiting job",
                "peak RSS / job",
                "req/job (bound)",
                "jobs over bound",
                "max open conns",
                "CPU s",
                "longest GC pause (s)",
                "full GCs",
            ],
            [
                [
                    r.n,
                    r.run,
                    r.all_finished if r.all_finished else f"NO ({r.finished})",
                    f"{r.wall_s:.1f} / {r.ideal_s:.1f}",
                    round(r.max_lag_s, 3),
                    round(r.p99_lag_s, 3),
                    f"{r.detect_p50_s:.2f} / {r.detect_p99_s:.2f} / {r.detect_max_s:.2f}",
                    _kb(r.rss_per_job) if r.all_waited else f"n/a (never all waiting; {r.waiting_jobs:,} had polled)",
                    _kb(r.peak_rss_per_job),
                    f"{r.requests_per_job:.2f} ({r.request_bound_mean:.2f})",
                    r.over_bound,
                    r.max_connections,
                    round(r.cpu_s, 1),
                    round(r.gc_max_s, 3),
                    r.gc_full,
                ]
                for r in results
            ],
        )
    )
    print("\n### Targets (runs that met each)\n")
    names = list(results[0].targets()) if results else []
    rows = []
    for n, runs in _by_n(results).items():
        met = [sum(r.targets()[name] for r in runs) for name in names]
        rows.append([n, *(f"{'yes' if k == len(runs) else 'NO'} ({k}/{len(runs)})" for k in met)])
    print(table(["N", *names], rows))
    for r in results:
        if r.errors:
            print(f"N={r.n}: trigger errors, e.g. {r.errors}")
    if workers is None:
        return
    print("\n## Waiting cost: triggerer vs worker-side polling\n")
    rows = [
        [
            f"worker polling ({workers.processes} processes, deferrable=False)",
            "1 (Airflow 3 adds a supervisor: 2)",
            _mb(workers.rss_per_job),
            _mb(workers.uss_per_job),
            f"{workers.finished}/{workers.processes}",
        ]
    ]
    per_job = {n: median([r.rss_per_job for r in runs if r.all_waited]) for n, runs in _by_n(results).items()}
    for n, runs in _by_n(results).items():
        finished = f"{sum(r.finished for r in runs)}/{n * len(runs)}"
        rows.append([f"triggerer, N={n} (median of {len(runs)})", f"1/{n}", _kb(per_job[n]), "-", finished])
    print(table(["waiting with", "processes per job", "RSS per job", "USS per job", "finished"], rows))
    print()
    for n, kb in per_job.items():
        if kb > 0:  # NaN (no run where all waited) compares False
            ratio = workers.uss_per_job / kb
            verdict = "met" if ratio >= MEMORY_RATIO_TARGET else "MISSED"
            print(f"N={n}: worker USS / trigger RSS per waiting job = {ratio:,.0f}x (target >= 1000x: {verdict})")


def _by_n(results: list[ScaleResult]) -> dict[int, list[ScaleResult]]:
    groups: dict[int, list[ScaleResult]] = {}
    for r in results:
        groups.setdefault(r.n, []).append(r)
    return groups


def plot(results: list[dict[str, Any]], path: str, baseline: list[dict[str, Any]] | None = None) -> None:
    """Detection latency (p50, p99) and memory per waiting job vs N; ``baseline`` dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    series = [("after", results, "-", "C0")]
    if baseline:
        series.insert(0, ("before", baseline, "--", "C3"))
    for label, all_rows, style, color in series:
        rows = _median_rows(all_rows)
        ns = [r["n"] for r in rows]
        left.plot(ns, [r["detect_p99_s"] for r in rows], style, c=color, marker="o", label=f"p99 {label}")
        left.plot(ns, [r["detect_p50_s"] for r in rows], style, c=color, marker=".", alpha=0.5, label=f"p50 {label}")
        memory = [(r["n"], r["rss_per_job"] / 1024) for r in rows if r["all_waited"]]
        right.plot(*zip(*memory, strict=True), style, c=color, marker="o", label=label)
    poll = results[0]["poll_interval"]
    left.axhline(poll + DETECTION_SLACK, ls=":", c="k", lw=1, label="target (p99)")
    left.set(xscale="log", yscale="log", xlabel="concurrent triggers (N)", ylabel="s", title="detection latency")
    left.legend(fontsize=7)
    right.axhline(RSS_PER_JOB_TARGET / 1024, ls=":", c="k", lw=1, label="target")
    right.set(xscale="log", yscale="log", xlabel="concurrent triggers (N)", ylabel="KB (RSS)")
    right.set_title("memory per waiting job")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=None, help="concurrent triggers (100 1000 5000)")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="trigger poll interval, s (5)")
    parser.add_argument(
        "--complete-after", type=float, nargs=2, default=None, metavar=("LO", "HI"), help="job durations, s (20 80)"
    )
    parser.add_argument("--workers", type=int, default=None, help="worker-polling processes (30; 0: skip part 2)")
    parser.add_argument("--pool-size", type=int, default=None, help="[midjourney] shared_pool_size in the triggerer")
    parser.add_argument("--repeat", type=int, default=1, help="runs per N, interleaved (1); the machine is noisy")
    parser.add_argument("--quick", action="store_true", help="N = 100 1000, jobs of 10-25 s, 10 worker processes")
    parser.add_argument("--json", default=None, help="write the raw results to this file")
    parser.add_argument("--plot", default=None, help="write a PNG of detection latency and memory vs N")
    parser.add_argument("--baseline", default=None, help="a --json file of an earlier run, drawn dashed in --plot")
    parser.add_argument("--from-json", default=None, help="no run: report (and --plot) a --json file")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() in the triggerer after start-up (a deployment knob)"
    )
    parser.add_argument(
        "--profile", default=None, metavar="DIR", help="pyinstrument the triggerer's loop; text/HTML reports to DIR"
    )
    parser.add_argument("--profile-seconds", type=float, default=20.0, help="profile length from the start (20)")
    args = parser.parse_args(argv)
    args.n = args.n or ([100, 1000] if args.quick else [100, 1000, 5000])
    args.complete_after = args.complete_after or ([10.0, 25.0] if args.quick else [20.0, 80.0])
    args.workers = (10 if args.quick else 30) if args.workers is None else args.workers
    if args.complete_after[0] < args.poll_interval + 2:
        parser.error("--complete-after LO must exceed poll interval + 2 s (memory is measured while all wait)")

    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
        results = [ScaleResult(**r) for r in data["scale"]]
        workers = WorkerResult(**data["workers"]) if data.get("workers") else None
        report(results, workers)
        if args.plot:
            plot(data["scale"], args.plot, _baseline(args))
        return 0

    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    isolate_airflow_home()
    log_dir = tempfile.mkdtemp(prefix="midjourney-bench-logs-")
    print("Machine:")
    print_machine()
    freeze = ", gc.freeze() after start-up" if args.gc_freeze else ""
    print(
        f"poll interval {args.poll_interval} s, jobs finish {args.complete_after[0]:g}-{args.complete_after[1]:g} s"
        f" after creation (uniform), emulator in its own process{freeze}; logs in {log_dir}"
    )
    results = []
    for run, n in ((run, n) for run in range(1, args.repeat + 1) for n in args.n):
        print(f"N={n}, run {run}/{args.repeat} ...", flush=True)
        results.append(run_scale(n, args, log_dir))
        r = results[-1]
        r.run = run
        print(
            f"  finished {r.finished}/{n}, max lag {r.max_lag_s:.3f} s (at {r.max_lag_at_s:.1f} s),"
            f" detect p99 {r.detect_p99_s:.2f} s, {r.rss_per_job / 1024:.1f} KB/job,"
            f" {r.requests_per_job:.2f} req/job, {r.max_connections} conns, {r.cpu_s:.1f} CPU-s,"
            f" longest GC pause {r.gc_max_s:.3f} s ({r.gc_full} full, max {r.gc_full_max_s:.3f} s;"
            f" {r.gc_baseline_s:.3f} s for the start-up heap of {r.gc_baseline_objects:,} objects)",
            flush=True,
        )
    workers = None
    if args.workers:
        print(f"worker polling with {args.workers} processes ...", flush=True)
        workers = run_workers(args.workers, args, log_dir)
    report(results, workers)
    if args.json:
        data = {
            "args": {k: v for k, v in vars(args).items() if k not in ("json", "plot")},
            "scale": [asdict(r) for r in results],
            "workers": asdict(workers) if workers else None,
        }
        Path(args.json).write_text(json.dumps(data, indent=1))
    if args.plot:
        plot([asdict(r) for r in results], args.plot, _baseline(args))
    return 0 if all(all(r.targets().values()) for r in results) else 1


def _median_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per N: the median of each plotted metric over that N's runs."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["n"], []).append(r)
    keys = ("detect_p50_s", "detect_p99_s")
    out = []
    for n, runs in sorted(groups.items()):
        waited = [r for r in runs if r.get("waiting_jobs", n) >= n]  # older --json files: all waited
        row = {"n": n, **{k: median([r[k] for r in runs]) for k in keys}, "all_waited": bool(waited)}
        row["rss_per_job"] = median([r["rss_per_job"] for r in waited]) if waited else float("nan")
        out.append(row)
    return out


def _baseline(args: argparse.Namespace) -> list[dict[str, Any]] | None:
    return json.loads(Path(args.baseline).read_text())["scale"] if args.baseline else None


if __name__ == "__main__":
    sys.exit(main())
