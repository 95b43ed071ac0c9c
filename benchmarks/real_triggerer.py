"""N waiting Midjourney jobs in Airflow's real ``airflow triggerer``, at a real API's latency.

    python benchmarks/real_triggerer.py                      # N = 1,000 and 3,000, 3 worker slots
    python benchmarks/real_triggerer.py --n 1000 --workers 0 # one N, no comparator
    python benchmarks/real_triggerer.py --quick              # N = 200, short jobs, 1 worker slot

For each N: a fresh SQLite metadata DB (``airflow db migrate``, the benchmark DAG file serialised
by ``airflow dags reserialize``, the connection stored as a row), the emulator in its own process
answering after ``--latency`` +/- ``--jitter`` seconds, and the real ``airflow triggerer`` (its
supervisor process and the trigger-runner process it forks). After a warm-up (20 triggers on
finished jobs), N task instances are put in state ``deferred`` with their trigger rows, exactly
as ``defer()`` leaves them. Their N emulator jobs are held running until all N triggers run in
the triggerer (Airflow's supervisor starts them at its own pace: "all running after"), then each
gets a completion time ``--complete-after`` LO..HI seconds later.

Measured: RSS of the supervisor and the runner (psutil, every 0.5 s) while all N triggers wait,
minus their RSS after warm-up, per waiting trigger; the worst event-loop stall, both as Airflow's
own ``block_watchdog`` logs it (``Triggerer's async thread was blocked for X seconds``; the
threshold is lowered with ``--watchdog-threshold``) and from a probe trigger in the same loop
(``_loop_probe.py``, 50 ms); detection latency, from the job's completion in the emulator to the
task instance's row leaving ``deferred`` (its ``updated_at``); API requests per waiting job per
poll interval, from the emulator's request log while all N wait; CPU seconds of both processes.

The worker-polling comparator (``--workers M``) runs M real worker slots: Airflow's task
supervisor (``supervise_task``, what a LocalExecutor worker runs, here with the in-process
Execution API) and the task process it forks, running ``MidjourneyJobSensor`` in poke mode on
a job of the same kind; memory of both processes per slot, measured in the same invocation.

The floor (``--trigger datetime``): the same run with Airflow's own simplest trigger,
``DateTimeTrigger`` (``airflow.providers.standard.triggers.temporal``), instead of ours, to tell
Airflow's per-trigger cost from the Midjourney trigger's. Its moment is fixed in its row, so each
is the rows' insertion + ``--start-allowance`` (default max(15, N/50) s, about twice the time
Airflow takes to start N) + the same LO..HI spread; detection is measured from the moment. The
warm-up triggers are of the measured kind (20 DateTimeTriggers already due, for the floor).
No API requests (n/a). It logs a line every second in its last 20 s (the supervisor writes
each to the trigger's log file): ``--log-level WARNING`` shows the floor without them.

Detection is split (both modes) with the per-trigger log files: the runner's "Trigger fired
event" line is stamped in the runner, so DB time minus it is Airflow's part after the trigger's
event (runner loop, supervisor, DB). For the Midjourney trigger, "seen by the runner" is the answer
that showed the job finished: the trigger's last ``GET`` of its job (it stops polling once it saw
the job finished), at its arrival + the configured mean latency; Airflow's share = DB time minus it.
For the DateTimeTrigger, seeing its moment is firing: seen by the runner = the fired line.

Every run is bounded in time (``--max-minutes``), everything listens on loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))


from _common import (  # noqa: E402
    TOKEN,
    EmulatorConfig,
    EmulatorProcess,
    channels_for,
    median,
    percentile,
    print_machine,
    table,
)

WARMUP_JOBS = 20
TRIGGERS = {"midjourney": "Midjourney trigger", "datetime": "Airflow's DateTimeTrigger (floor)"}
BLOCKED = re.compile(r"^(\S+Z) .*async thread was blocked for ([0-9.]+) seconds", re.MULTILINE)

# Targets from the issue (real triggerer, SQLite, poll 5 s, latency 0.25 s).
DETECTION_TARGET = {1000: 7.0, 3000: 8.0}
STALL_TARGET = 0.2
REQUESTS_TARGET = 0.2
KB_TARGET = 25.0
RATIO_TARGET = 1000


@dataclass
class RealResult:
    n: int
    run: int
    label: str
    finished: int
    failed: int
    detect_p50_s: float
    detect_p99_s: float
    detect_max_s: float
    stall_watchdog_s: float  # the longest "blocked for" Airflow logged (0 when none above its threshold)
    watchdog_lines: int
    stall_probe_s: float  # the probe trigger's longest lag
    requests_per_job_interval: float
    requests_total: int
    list_requests: int
    supervisor_kb: float  # RSS added per waiting trigger
    runner_kb: float
    kb_per_trigger: float
    waiting_samples: int
    baseline_mb: float  # supervisor + runner RSS after warm-up
    waiting_mb: float
    cpu_supervisor_s: float
    cpu_runner_s: float
    gc_full: int
    gc_full_max_s: float
    start_s: float  # from the rows' insertion to all N trigger tasks running
    wall_s: float
    load: float = float("nan")  # mean 1-minute load average during the run (2 = both cores busy)
    # The same two, once all N triggers run (Airflow's creation of N triggers at once excluded):
    stall_watchdog_steady_s: float = float("nan")
    stall_probe_steady_s: float = float("nan")
    # Which trigger waits: "midjourney" (ours) or "datetime" (Airflow's DateTimeTrigger, the floor).
    trigger: str = "midjourney"
    start_allowance_s: float = float("nan")  # datetime: moments are insertion + this + LO..HI
    moments_before_running: int = -1  # datetime: moments that fell before all N triggers ran (-1: n/a)
    # Detection split at the runner. Seen by the runner: midjourney, the answer that showed the job
    # finished (arrival + the configured mean latency); datetime, the trigger's "Trigger fired event"
    # log line (a DateTimeTrigger sees its moment when it fires); minus the completion. Airflow's
    # share = DB detection minus that. Fired to DB: DB detection minus the runner's "Trigger fired
    # event" line (both modes: Airflow's part after the trigger's event, runner loop to supervisor to DB).
    runner_p50_s: float = float("nan")
    runner_p99_s: float = float("nan")
    airflow_p50_s: float = float("nan")
    airflow_p99_s: float = float("nan")
    runner_seen_jobs: int = 0
    fired_to_db_p50_s: float = float("nan")
    fired_to_db_p99_s: float = float("nan")
    fired_jobs: int = 0
    trigger_log_lines: int = -1  # lines in the per-trigger log files the supervisor wrote (-1: n/a)
    notes: list[str] = field(default_factory=list)
    detection: list[float] = field(default_factory=list, repr=False)


@dataclass
class WorkerSlotResult:
    slots: int
    finished: int
    rss_mb: float  # per slot: supervisor + task process
    uss_mb: float
    pss_mb: float
    supervisor_rss_mb: float
    task_rss_mb: float


# -- one run, in a spawned child (Airflow reads its configuration once per process) -------------


def _child(conn: Connection, kind: str, options: dict[str, Any]) -> None:
    try:
        conn.send(("ok", _run_real(options) if kind == "real" else _run_workers(options)))
    except BaseException as exc:  # report, do not hang the parent
        import traceback

        conn.send(("error", f"{exc!r}\n{traceback.format_exc()}"))


def in_child(kind: str, options: dict[str, Any], timeout: float) -> Any:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(child, kind, options), name=f"bench-{kind}")
    proc.start()
    try:
        if not parent.poll(timeout):
            raise TimeoutError(f"{kind} run did not finish in {timeout:.0f} s")
        status, value = parent.recv()
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    if status != "ok":
        raise RuntimeError(value)
    return value


def _setup(options: dict[str, Any], tag: str) -> tuple[Path, dict[str, str]]:
    import _airflow_db as db

    home = Path(tempfile.mkdtemp(prefix=f"midjourney-real-{tag}-"))
    settings = db.AirflowSettings(**options["settings"])
    env = db.airflow_env(home, settings, BENCH_DIR)
    os.environ.update(env)
    db.prepare_home(home, env, settings, options["poll_interval"])
    return home, env


def _airflow() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _probe_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def _run_real(options: dict[str, Any]) -> dict[str, Any]:
    import psutil

    n = int(options["n"])
    config = EmulatorConfig(
        hold=True,
        channels=channels_for(n + WARMUP_JOBS),
        latency=options["latency"],
        jitter=options["jitter"],
    )
    with EmulatorProcess(config) as emu:
        home, env = _setup(options, f"n{n}")
        import _airflow_db as db
        from _loop_probe import LoopProbeTrigger

        db.add_connection(emu.base_url, TOKEN)
        hard_stop = time.time() + options["max_minutes"] * 60
        probe_path = home / "probe.jsonl"
        warm = emu.create_jobs(WARMUP_JOBS)
        emu.complete_now([j.job_id for j in warm])
        # Warm-up triggers of the measured kind (their code imported before the baseline), firing at once.
        db.create_deferred(
            _triggers(options, [j.job_id for j in warm], [time.time()] * WARMUP_JOBS),
            LoopProbeTrigger(str(probe_path), until=hard_stop),
            first_index=0,
            run_id="warmup",
        )
        log_path = home / "triggerer.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [_airflow(), "triggerer", "--skip-serve-logs", "--capacity", str(options["settings"]["capacity"])],
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            return _measure(options, emu, proc, probe_path, log_path, hard_stop, psutil)
        finally:
            _stop(proc)


def _triggers(options: dict[str, Any], job_ids: list[str], moments: list[float]) -> list[Any]:
    """One trigger per job: ``MidjourneyJobTrigger`` on the job, or Airflow's ``DateTimeTrigger`` at its moment."""
    if options.get("trigger", "midjourney") == "datetime":
        from datetime import datetime

        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        return [DateTimeTrigger(moment=datetime.fromtimestamp(m, tz=UTC)) for m in moments]
    from airflow_provider_midjourney.triggers.midjourney import MidjourneyJobTrigger

    deadline = time.time() + 3600
    poll = float(options["poll_interval"])
    return [MidjourneyJobTrigger(job_id=j, poll_interval=poll, deadline=deadline) for j in job_ids]


def _py_spy(options: dict[str, Any], pids: dict[str, int]) -> list[subprocess.Popen[bytes]]:
    """``py-spy record`` of each process until stopped (stacks in py-spy's raw format)."""
    if not options.get("py_spy"):
        return []
    import shutil

    exe = shutil.which("py-spy") or "/tmp/tools/bin/py-spy"
    out = Path(options["py_spy"])
    out.mkdir(parents=True, exist_ok=True)
    label = options.get("label") or "run"
    return [
        subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "50",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(out / f"{label}-{options['n']}-{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]


def _runner_pid(proc: subprocess.Popen[bytes], psutil: Any) -> int:
    children = psutil.Process(proc.pid).children()
    if len(children) != 1:
        raise RuntimeError(f"expected one trigger-runner child of the triggerer, found {children}")
    return int(children[0].pid)


def _measure(
    options: dict[str, Any],
    emu: EmulatorProcess,
    proc: subprocess.Popen[bytes],
    probe_path: Path,
    log_path: Path,
    hard_stop: float,
    psutil: Any,
) -> dict[str, Any]:
    import _airflow_db as db

    n, poll = int(options["n"]), float(options["poll_interval"])
    floor = options.get("trigger", "midjourney") == "datetime"
    # Warm-up: the 20 triggers fire, the probe reports.
    started = time.time()
    while db.count_deferred("warmup") > 0 or not _probe_lines(probe_path):
        if proc.poll() is not None or time.time() - started > 180:
            raise RuntimeError(f"the triggerer did not warm up; see {log_path}")
        time.sleep(0.5)
    sup = psutil.Process(proc.pid)
    runner = psutil.Process(_runner_pid(proc, psutil))
    emu.release_channels()
    time.sleep(2.0)
    base: list[tuple[int, int]] = []
    for _ in range(6):
        base.append((sup.memory_info().rss, runner.memory_info().rss))
        time.sleep(0.5)
    base_sup, base_run = median([b[0] for b in base]), median([b[1] for b in base])
    base_tasks = _probe_lines(probe_path)[-1]["tasks"]
    cpu0 = (sum(sup.cpu_times()[:2]), sum(runner.cpu_times()[:2]))
    emu.reset_requests()
    profilers = _py_spy(options, {"supervisor": sup.pid, "runner": runner.pid})

    lo, hi = options["complete_after"]
    rng = random.Random(7)
    completes: dict[int, float] = {}
    allowance = float(options.get("start_allowance") or 0.0)
    if floor:
        # A DateTimeTrigger's moment is fixed in its row: insertion + a start allowance (longer than
        # Airflow takes to start all N) + the same LO..HI spread the Midjourney jobs get once all run.
        planned: list[Any] = []
        t_insert = time.time()
        completes = {i: t_insert + allowance + rng.uniform(lo, hi) for i in range(n)}
        db.create_deferred(_triggers(options, [], [completes[i] for i in range(n)]), None, first_index=0)
    else:
        planned = emu.create_jobs(n)
        db.create_deferred(_triggers(options, [j.job_id for j in planned], []), None, first_index=0)
    t0 = time.time()
    # Midjourney: the jobs run (held in the emulator) until every trigger is running; then each gets
    # its own completion time, --complete-after LO..HI s later. So detection measures waiting, not
    # start-up (which Airflow's supervisor paces: see "all running after").
    all_running = float("inf")
    first_moment = min(completes.values(), default=float("inf"))
    samples: list[tuple[float, int, int]] = []
    loads: list[float] = []
    last_count, remaining = 0.0, n
    while time.time() < hard_stop:
        now = time.time()
        samples.append((now, sup.memory_info().rss, runner.memory_info().rss))
        if all_running == float("inf") and now - t0 <= options["start_limit"]:
            # All N run: as many trigger tasks in the loop as triggers not yet fired (only the floor's
            # can fire before all run, if its start allowance was too short).
            fired = n - remaining if floor else 0
            running = [
                p["t"] for p in _probe_lines(probe_path) if p["t"] >= t0 and p["tasks"] >= base_tasks + n - fired
            ]
            all_running = running[0] if running else all_running
        if not completes and (all_running < float("inf") or now - t0 > options["start_limit"]):
            completes = {i: now + rng.uniform(lo, hi) for i in range(n)}
            emu.plan_completions([(planned[i].job_id, when) for i, when in completes.items()])
        counting = not floor or all_running < float("inf") or now >= first_moment - 2.0
        if completes and counting and now - last_count >= 2.0:
            loads.append(os.getloadavg()[0])
            remaining, last_count = db.count_deferred(), now
            if remaining == 0:
                break
        if proc.poll() is not None:
            raise RuntimeError(f"the triggerer exited; see {log_path}")
        time.sleep(0.5)
    t_end = time.time()
    cpu1 = (sum(sup.cpu_times()[:2]), sum(runner.cpu_times()[:2]))
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
        profiler.wait(60)
    states = db.ti_states()
    requests = emu.request_log()
    probe = [p for p in _probe_lines(probe_path) if p["t"] >= t0]
    log_text = log_path.read_text(errors="replace")

    first_done = min(completes.values(), default=float("inf"))
    # Waiting window: every trigger has had one poll interval (plus an answer) since all ran,
    # and no job has finished yet.
    w_start, w_end = all_running + poll + 2 * options["latency"] + 0.5, first_done - 0.5
    window = [s for s in samples if w_start <= s[0] <= w_end]
    notes = []
    if not window:
        notes.append("never all N waiting at once before the first job finished: memory and requests n/a")
    peak = max(window, key=lambda s: s[1] + s[2]) if window else (0.0, base_sup, base_run)
    api = [r for r in requests if r[1] != "POST"]
    # Each trigger's first look at its job is a one-off (the pool paces them at start-up, so they
    # can spill into the window): not counted as a request per interval.
    seen: set[str] = set()
    steady = []
    for r in api:
        if _per_job(r[2]) and r[2] not in seen:
            seen.add(r[2])
            continue
        steady.append(r)
    in_window = [r for r in steady if w_start <= r[0] <= w_end]
    intervals = (w_end - w_start) / poll if window and not floor else float("nan")
    detected = {i: states[i][1] - completes[i] for i in completes if i in states and states[i][0] != "deferred"}
    detection = list(detected.values())
    fired = {i: t - completes[i] for i, t in _fired_times(log_path.parent / "logs").items() if i in completes}
    after_fire = [detected[i] - fired[i] for i in detected if i in fired]
    runner: dict[int, float] = dict(fired) if floor else {}
    if not floor:
        runner = _runner_seen(requests, [j.job_id for j in planned], completes, options["latency"], options["jitter"])
        missing = sum(1 for i in detected if i not in runner)
        if missing:
            notes.append(f"{missing} detected jobs without a per-job GET that could have seen them finished")
        differ = _first_rule_differs(requests, [j.job_id for j in planned], completes, runner, options["latency"])
        if differ:
            notes.append(f"{differ} jobs: the first GET arriving after completion is not the last GET")
    if 0 < len(fired) < len(detected):
        notes.append(f"{len(detected) - len(fired)} detected jobs without a 'Trigger fired event' log line")
    share = [detected[i] - runner[i] for i in detected if i in runner]
    before = sum(1 for m in completes.values() if m < all_running) if floor else -1
    if before > 0:
        notes.append(f"{before} moments fell before all {n} triggers ran: raise --start-allowance")
    blocked = [(_epoch(when), float(x)) for when, x in BLOCKED.findall(log_text)]
    stalls = [x for when, x in blocked if when >= t0]  # not the triggerer's own start-up
    steady_from = all_running + 1.0
    full = sum(p.get("gc_full", 0) for p in probe)
    return asdict(
        RealResult(
            n=n,
            run=int(options.get("run", 1)),
            label=str(options.get("label", "")),
            finished=sum(1 for s in states.values() if s[0] == "scheduled" and s[2] == "execute_complete"),
            failed=sum(1 for s in states.values() if s[0] != "deferred" and s[2] != "execute_complete"),
            detect_p50_s=percentile(detection, 50),
            detect_p99_s=percentile(detection, 99),
            detect_max_s=max(detection, default=float("nan")),
            stall_watchdog_s=max(stalls, default=0.0),
            watchdog_lines=len(stalls),
            stall_probe_s=max((p["lag"] for p in probe), default=float("nan")),
            requests_per_job_interval=len(in_window) / (n * intervals) if intervals == intervals else float("nan"),
            requests_total=len(api),
            list_requests=sum(1 for r in api if not _per_job(r[2])),
            supervisor_kb=(peak[1] - base_sup) / n / 1024,
            runner_kb=(peak[2] - base_run) / n / 1024,
            kb_per_trigger=(peak[1] + peak[2] - base_sup - base_run) / n / 1024 if window else float("nan"),
            waiting_samples=len(window),
            baseline_mb=(base_sup + base_run) / 2**20,
            waiting_mb=(peak[1] + peak[2]) / 2**20,
            cpu_supervisor_s=cpu1[0] - cpu0[0],
            cpu_runner_s=cpu1[1] - cpu0[1],
            gc_full=full,
            gc_full_max_s=max((p.get("gc_full_max", 0.0) for p in probe), default=0.0),
            start_s=all_running - t0,
            wall_s=t_end - t0,
            load=median(loads),
            stall_watchdog_steady_s=max((x for when, x in blocked if when >= steady_from), default=0.0),
            stall_probe_steady_s=max((p["lag"] for p in probe if p["t"] >= steady_from), default=float("nan")),
            trigger="datetime" if floor else "midjourney",
            start_allowance_s=allowance if floor else float("nan"),
            moments_before_running=before,
            runner_p50_s=percentile(list(runner.values()), 50),
            runner_p99_s=percentile(list(runner.values()), 99),
            airflow_p50_s=percentile(share, 50),
            airflow_p99_s=percentile(share, 99),
            runner_seen_jobs=len(runner),
            fired_to_db_p50_s=percentile(after_fire, 50),
            fired_to_db_p99_s=percentile(after_fire, 99),
            fired_jobs=len(fired),
            trigger_log_lines=_log_lines(log_path.parent / "logs"),
            notes=notes,
            detection=detection,
        )
    )


def _runner_seen(
    requests: list[tuple[float, str, str]],
    job_ids: list[str],
    completes: dict[int, float],
    latency: float,
    jitter: float,
) -> dict[int, float]:
    """Job index -> when the runner saw it finished, minus its completion (s).

    The emulator decides a job's status after the answer's latency, so the answer that showed it
    finished is the trigger's last ``GET`` of the job (a trigger stops polling once it has seen its
    job finished); its time is the arrival plus the configured MEAN latency (the jitter of one answer
    is not recorded). A last GET that even the longest latency would answer before the completion
    could not have seen it: that job is left out.
    """
    last: dict[str, float] = {}
    for t, method, path in requests:
        if method == "GET" and _per_job(path):
            last[path.rstrip("/").rsplit("/", 1)[-1]] = t
    seen = {}
    for i, done in completes.items():
        t = last.get(job_ids[i])
        if t is not None and t + latency + jitter >= done:
            seen[i] = t + latency - done
    return seen


FIRED = b'"event":"Trigger fired event"'
MAP_INDEX = re.compile(r"map_index=(\d+)")


def _first_rule_differs(
    requests: list[tuple[float, str, str]],
    job_ids: list[str],
    completes: dict[int, float],
    seen: dict[int, float],
    latency: float,
) -> int:
    """How many jobs' first per-job GET arriving at or after completion is not the answer counted as seen."""
    index = {job_id: i for i, job_id in enumerate(job_ids)}
    first: dict[int, float] = {}
    for t, method, path in requests:
        i = index.get(path.rstrip("/").rsplit("/", 1)[-1]) if method == "GET" and _per_job(path) else None
        if i is not None and i not in first and t >= completes[i]:
            first[i] = t
    return sum(1 for i, s in seen.items() if i not in first or abs(first[i] + latency - completes[i] - s) > 1e-6)


def _fired_times(folder: Path, run_id: str = "bench") -> dict[int, float]:
    """Map index -> epoch of the runner's "Trigger fired event" line in that task's trigger log.

    The trigger runner stamps its log lines itself (structlog in the runner process) and sends them
    to the supervisor, which writes one file per trigger: the stamp is when the event left the trigger.
    """
    fired = {}
    for path in folder.glob(f"dag_id=*/run_id={run_id}/task_id=imagine/map_index=*/*trigger*"):
        found = MAP_INDEX.search(str(path))
        line = next((line for line in path.read_bytes().splitlines() if FIRED in line), None)
        if found and line:
            with contextlib.suppress(ValueError, KeyError):
                fired[int(found.group(1))] = _epoch(json.loads(line)["timestamp"])
    return fired


def _log_lines(folder: Path) -> int:
    """Lines of every log file under ``folder`` (the triggerer's per-trigger logs)."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                total += sum(1 for _ in f)
    return total


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _per_job(path: str) -> bool:
    """A request about one job (``GET /jobs/<id>``), as opposed to a list call."""
    return bool(re.search(r"/jobs?/[^/]+$", path)) and not path.rstrip("/").endswith(("/jobs", "/list-by-condition"))


# -- the worker-polling comparator ---------------------------------------------------------------

SLOT_CODE = """
import os, sys
from airflow.executors.workloads import BundleInfo, TaskInstanceDTO
from airflow.sdk.api.client import Client
from airflow.sdk.execution_time.supervisor import supervise_task
from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI

ti = TaskInstanceDTO.model_validate_json(sys.argv[1])
client = Client(base_url=None, token="", dry_run=True, transport=InProcessExecutionAPI().transport)
client.base_url = "http://in-process.invalid./"
sys.exit(supervise_task(ti=ti, bundle_info=BundleInfo(name="dags-folder"), dag_rel_path="midjourney_bench.py",
                        token="", client=client, log_path=sys.argv[2]))
"""


def _run_workers(options: dict[str, Any]) -> dict[str, Any]:
    import psutil

    m, duration = int(options["workers"]), float(options["worker_job_s"])
    config = EmulatorConfig(
        complete_after=(duration, duration),
        channels=channels_for(m),
        latency=options["latency"],
        jitter=options["jitter"],
    )
    with EmulatorProcess(config) as emu:
        home, env = _setup(options, "workers")
        import _airflow_db as db

        db.add_connection(emu.base_url, TOKEN)
        planned = emu.create_jobs(m)
        procs = []
        try:
            for i, job in enumerate(planned):
                ti = db.create_worker_run(f"worker-{i}", job.job_id)
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", SLOT_CODE, ti.model_dump_json(), str(home / f"slot-{i}.log")],
                        env={**os.environ, **env},
                        stdout=subprocess.DEVNULL,
                        stderr=open(home / f"slot-{i}.err", "w"),  # noqa: SIM115
                        start_new_session=True,
                    )
                )
            first_done = min(j.completes for j in planned)
            samples: list[tuple[int, int, int, int, int]] = []
            time.sleep(min(20.0, max(0.0, first_done - time.time() - 5)))
            while time.time() < first_done - 1 and len(samples) < 20 * m:
                for p in procs:
                    samples.append(_slot_memory(psutil.Process(p.pid), psutil))
                time.sleep(1.0)
            for p in procs:
                p.wait(timeout=max(30.0, first_done - time.time() + 120))
            finished = sum(1 for p in procs if p.returncode == 0)
        finally:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(10)
    if not samples:
        raise RuntimeError("the worker slots finished before they could be measured")
    full = [s for s in samples if s[4] == 2]  # supervisor and task process both alive
    if not full:
        raise RuntimeError("no sample saw a slot's task process: did the task start?")
    return asdict(
        WorkerSlotResult(
            slots=m,
            finished=finished,
            rss_mb=median([s[0] for s in full]) / 2**20,
            uss_mb=median([s[1] for s in full]) / 2**20,
            pss_mb=median([s[2] for s in full]) / 2**20,
            supervisor_rss_mb=median([s[3] for s in full]) / 2**20,
            task_rss_mb=median([s[0] - s[3] for s in full]) / 2**20,
        )
    )


def _slot_memory(sup: Any, psutil: Any) -> tuple[int, int, int, int, int]:
    """(RSS, USS, PSS of supervisor + task process, supervisor RSS, processes)."""
    procs = [sup, *sup.children(recursive=True)]
    rss = uss = pss = 0
    sup_rss = 0
    for p in procs:
        try:
            info = p.memory_full_info()
        except psutil.Error:
            continue
        rss, uss, pss = rss + info.rss, uss + info.uss, pss + getattr(info, "pss", info.uss)
        if p.pid == sup.pid:
            sup_rss = info.rss
    return rss, uss, pss, sup_rss, len(procs)


# -- report ----------------------------------------------------------------------------------------


def report(results: list[RealResult], workers: WorkerSlotResult | None, dag_parse: dict[str, float]) -> None:
    print("\n## Real triggerer\n")
    rows = []
    for r in results:
        rows.append(
            [
                r.n,
                TRIGGERS.get(r.trigger, r.trigger),
                r.label or "-",
                f"{r.finished}/{r.n}" + (f" ({r.failed} failed)" if r.failed else ""),
                f"{r.detect_p50_s:.2f} / {r.detect_p99_s:.2f} / {r.detect_max_s:.2f}",
                _pair(r.runner_p50_s, r.runner_p99_s),
                _pair(r.airflow_p50_s, r.airflow_p99_s),
                _pair(r.fired_to_db_p50_s, r.fired_to_db_p99_s),
                round(r.stall_watchdog_s, 3),
                r.watchdog_lines,
                round(r.stall_probe_s, 3),
                _num(r.requests_per_job_interval, 3),
                f"{r.kb_per_trigger:.1f} ({r.runner_kb:.1f} + {r.supervisor_kb:.1f})",
                f"{r.baseline_mb:.0f} -> {r.waiting_mb:.0f}",
                f"{r.cpu_runner_s:.0f} + {r.cpu_supervisor_s:.0f}",
                f"{r.gc_full}, {r.gc_full_max_s:.3f}",
                round(r.start_s, 1),
                _moments(r),
                _num(r.trigger_log_lines / r.n, 1) if r.trigger_log_lines >= 0 else "n/a",
                round(r.wall_s, 0),
                round(r.load, 1),
            ]
        )
    print(
        table(
            [
                "N",
                "trigger",
                "variant",
                "finished",
                "detection p50 / p99 / max (s)",
                "seen by the runner p50 / p99 (s)",
                "Airflow's share p50 / p99 (s)",
                "trigger fired -> DB p50 / p99 (s)",
                "watchdog worst (s)",
                "watchdog lines",
                "probe worst lag (s)",
                "requests / job / interval",
                "KB / trigger (runner + supervisor)",
                "RSS MB (warm -> waiting)",
                "CPU s (runner + supervisor)",
                "full GCs, longest (s)",
                "all running after (s)",
                "moments before all ran (allowance s)",
                "trigger log lines / trigger",
                "wall (s)",
                "load",
            ],
            rows,
        )
    )
    for r in results:
        for note in r.notes:
            print(f"N={r.n} {r.label}: {note}")
    if workers:
        print("\n## Worker slot polling the same kind of job\n")
        print(
            table(
                ["slots", "finished", "RSS per slot (MB)", "USS", "PSS", "supervisor RSS", "task process RSS"],
                [
                    [
                        workers.slots,
                        f"{workers.finished}/{workers.slots}",
                        round(workers.rss_mb, 1),
                        round(workers.uss_mb, 1),
                        round(workers.pss_mb, 1),
                        round(workers.supervisor_rss_mb, 1),
                        round(workers.task_rss_mb, 1),
                    ]
                ],
            )
        )
    print("\n## Summary\n")
    rows = []
    for r in results:
        ratio = workers.uss_mb * 1024 / r.kb_per_trigger if workers and r.kb_per_trigger > 0 else float("nan")
        rows.append(
            [
                r.n,
                TRIGGERS.get(r.trigger, r.trigger),
                r.label or "-",
                f"{r.finished}/{r.n}",
                round(r.detect_p99_s, 2),
                _num(r.runner_p99_s, 2),
                _num(r.airflow_p99_s, 2),
                _num(r.fired_to_db_p99_s, 2),
                round(max(r.stall_watchdog_s, r.stall_probe_s), 3),
                _num(r.requests_per_job_interval, 3),
                round(r.kb_per_trigger, 1),
                f"{ratio:,.0f}x" if ratio == ratio else "n/a",
                " / ".join(f"{k} {v:.0f}" for k, v in dag_parse.items()) or "-",
            ]
        )
    print(
        table(
            [
                "N",
                "trigger",
                "variant",
                "finished",
                "p99 detection (s)",
                "p99 seen by the runner (s)",
                "p99 Airflow's share (s)",
                "p99 trigger fired -> DB (s)",
                "worst stall (s)",
                "requests/job/interval",
                "KB per trigger",
                "vs a worker slot (USS)",
                "DAG parse added (ms)",
            ],
            rows,
        )
    )


def _num(x: float, digits: int) -> str:
    return "n/a" if x != x else f"{x:.{digits}f}"


def _pair(a: float, b: float) -> str:
    return "n/a" if a != a and b != b else f"{_num(a, 2)} / {_num(b, 2)}"


def _moments(r: RealResult) -> str:
    if r.trigger != "datetime" or r.moments_before_running < 0:
        return "n/a"
    return f"{r.moments_before_running} ({r.start_allowance_s:g})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=None, help="waiting triggers per run (1000 3000)")
    parser.add_argument(
        "--trigger",
        choices=sorted(TRIGGERS),
        default="midjourney",
        help="what waits: our MidjourneyJobTrigger, or Airflow's DateTimeTrigger (the floor) (midjourney)",
    )
    parser.add_argument(
        "--start-allowance",
        type=float,
        default=None,
        help="datetime: s between inserting the rows and the first possible moment (max(15, N/50))",
    )
    parser.add_argument("--poll-interval", type=float, default=5.0, help="trigger poll interval, s (5)")
    parser.add_argument("--latency", type=float, default=0.25, help="emulator API latency, s (0.25)")
    parser.add_argument("--jitter", type=float, default=0.1, help="+/- uniform jitter on the latency, s (0.1)")
    parser.add_argument(
        "--complete-after", type=float, nargs=2, default=None, metavar=("LO", "HI"), help="after all run (20 80)"
    )
    parser.add_argument("--capacity", type=int, default=None, help="[triggerer] capacity (default: N + 100)")
    parser.add_argument("--select-per-loop", type=int, default=None, help="max_trigger_to_select_per_loop (N)")
    parser.add_argument("--watchdog-threshold", type=float, default=0.15, help="block watchdog threshold (0.15)")
    parser.add_argument("--no-greenback", action="store_true", help="AIRFLOW_DISABLE_GREENBACK_PORTAL=true")
    parser.add_argument(
        "--log-level", default="", help="[logging] logging_level, e.g. WARNING (Airflow's INFO): trigger log lines"
    )
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() in airflow_local_settings.py")
    parser.add_argument("--workers", type=int, default=None, help="worker slots for the comparator (3; 0: skip)")
    parser.add_argument("--worker-job-s", type=float, default=60.0, help="worker comparator job duration (60)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per N (1)")
    parser.add_argument("--label", default="", help="a name for this variant in the tables")
    parser.add_argument("--start-limit", type=float, default=300.0, help="s to wait for all N to run (300)")
    parser.add_argument("--max-minutes", type=float, default=8.0, help="hard limit per run (8)")
    parser.add_argument("--quick", action="store_true", help="N = 200, jobs of 20-40 s, 1 worker slot")
    parser.add_argument(
        "--py-spy", default=None, metavar="DIR", help="py-spy record supervisor and runner (raw stacks to DIR)"
    )
    parser.add_argument("--json", default=None, help="append the raw results to this JSON file")
    parser.add_argument("--from-json", nargs="+", default=None, help="no run: report these --json files")
    parser.add_argument("--dag-parse", default=None, help="a dag_parse.py --json file to quote in the summary")
    args = parser.parse_args(argv)
    dag_parse = _dag_parse_summary(args.dag_parse)
    if args.from_json:
        results, workers = [], None
        for path in args.from_json:
            data = json.loads(Path(path).read_text())
            results += [RealResult(**r) for r in data["real"]]
            workers = WorkerSlotResult(**data["workers"]) if data.get("workers") else workers
        report(results, workers, dag_parse)
        return 0
    args.n = args.n or ([200] if args.quick else [1000, 3000])
    args.complete_after = args.complete_after or ([15.0, 30.0] if args.quick else [20.0, 80.0])
    args.workers = (1 if args.quick else 3) if args.workers is None else args.workers
    print("Machine:")
    print_machine()
    print(
        f"poll {args.poll_interval} s, API latency {args.latency} +/- {args.jitter} s, jobs finish"
        f" {args.complete_after[0]:g}-{args.complete_after[1]:g} s after all N triggers run",
        flush=True,
    )
    if args.trigger == "datetime":
        print(
            "trigger: Airflow's DateTimeTrigger (floor), moments = row insertion + start allowance + that spread;"
            " warm-up: 20 DateTimeTriggers already due",
            flush=True,
        )
    results: list[RealResult] = []
    for run in range(1, args.repeat + 1):
        for n in args.n:
            options = {
                "n": n,
                "run": run,
                "label": args.label,
                "trigger": args.trigger,
                "start_allowance": args.start_allowance if args.start_allowance is not None else max(15.0, n / 50),
                "poll_interval": args.poll_interval,
                "latency": args.latency,
                "jitter": args.jitter,
                "complete_after": args.complete_after,
                "max_minutes": args.max_minutes,
                "start_limit": args.start_limit,
                "py_spy": args.py_spy,
                "settings": {
                    "capacity": args.capacity or n + 100,
                    "select_per_loop": args.select_per_loop or n + 100,
                    "watchdog_threshold": args.watchdog_threshold,
                    "greenback_portal": not args.no_greenback,
                    "gc_freeze": args.gc_freeze,
                    "log_level": args.log_level,
                },
            }
            print(f"N={n}, run {run} ...", flush=True)
            r = RealResult(**in_child("real", options, timeout=args.max_minutes * 60 + 300))
            results.append(r)
            print(
                f"  finished {r.finished}/{n}, detection p99 {r.detect_p99_s:.2f} s,"
                f" watchdog {r.stall_watchdog_s:.2f} s"
                f" ({r.watchdog_lines} lines), probe {r.stall_probe_s:.3f} s, {r.requests_per_job_interval:.3f}"
                f" req/job/interval, {r.kb_per_trigger:.1f} KB/trigger, CPU {r.cpu_runner_s:.0f}+"
                f"{r.cpu_supervisor_s:.0f} s, all running after {r.start_s:.1f} s, load {r.load:.1f},"
                f" seen by the runner p50/p99 {_pair(r.runner_p50_s, r.runner_p99_s)} s, Airflow's share"
                f" {_pair(r.airflow_p50_s, r.airflow_p99_s)} s,"
                f" fired->DB {_pair(r.fired_to_db_p50_s, r.fired_to_db_p99_s)} s,"
                f" {r.trigger_log_lines} trigger log lines {r.notes}",
                flush=True,
            )
    workers = None
    if args.workers:
        options = {
            "workers": args.workers,
            "worker_job_s": args.worker_job_s,
            "poll_interval": args.poll_interval,
            "latency": args.latency,
            "jitter": args.jitter,
            "settings": {},
        }
        print(f"worker slots: {args.workers} ...", flush=True)
        workers = WorkerSlotResult(**in_child("workers", options, timeout=args.worker_job_s + 400))
    report(results, workers, dag_parse)
    if args.json:
        path = Path(args.json)
        data = json.loads(path.read_text()) if path.exists() else {"real": [], "workers": None}
        data["real"] += [asdict(r) for r in results]
        data["workers"] = asdict(workers) if workers else data.get("workers")
        path.write_text(json.dumps(data, indent=1))
    return 0


def _dag_parse_summary(path: str | None) -> dict[str, float]:
    if not path:
        return {}
    data = json.loads(Path(path).read_text())

    def total(name: str) -> float:
        return median([s["parse_ms"] + s["serialize_ms"] for s in data["samples"][name]])

    # The provider DAG's median minus the airflow.sdk-only DAG's, as dag_parse.py reports it.
    added = total("provider operators") - total("airflow.sdk only")
    return {str(data.get("airflow") or Path(path).stem.removeprefix("dag_parse-")): added}


if __name__ == "__main__":
    sys.exit(main())
