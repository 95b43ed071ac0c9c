"""N mapped imagines on a real Airflow stack against an account that runs K jobs at once.

    python benchmarks/admission.py --n 30 --k 3 --t 10            # before and after, one run
    python benchmarks/admission.py --n 300 --k 12 --t 10 --modes after

A real stack (api-server, scheduler with LocalExecutor, dag-processor, triggerer; SQLite) from
``tests/e2e/stack.py`` runs one DAG of N mapped ``MidjourneyImagineOperator`` tasks (``retries=2``)
against the emulator, whose one channel runs at most K jobs (K image jobs: its default of 3 image jobs
would cap every K) of T seconds and answers 429 beyond.

* ``before``: ``defer_when_busy=False`` (what the provider did until now): a busy answer is waited
  out in the worker slot by the HTTP retry policy (10-30 s, up to six tries), then Airflow retries.
* ``after``: the default: a busy account (the list at ``max_jobs``, or a busy answer) defers the
  task to the admission trigger, which wakes tasks first come, first served as slots free.

Printed per mode: makespan (DAG run, and first job created → last job done at the vendor) against
the ideal ceil(N/K)·T, 429 answers, tasks retried, worker-seconds per task, peak jobs running at
the vendor, requests per job, and jobs created (duplicates = created − N). Worker-seconds are the
time spent inside the operator's ``execute``/``execute_complete``/``execute_admitted`` (measured in
the task); the task runner's own start-up (~1-2 s a run here) is not included. Also: task runs
per task and per second (each ``execute``/``execute_admitted``/``execute_complete`` is one run of
the task in a worker process), runs and mean worker-seconds per operator method, the first moment
no task instance waited for a worker (``all_started_s``, from the trigger) and the most that did at
once; ``--json`` rows add the timeline of task-instance states every 5 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.stack import AirflowStack  # noqa: E402

TOKEN = "admission-benchmark-token"
DAG_ID = "midjourney_bench_admission"
#: Seconds between two samples of the task instances' states (the timeline in --json rows).
STATE_EVERY = 5.0
DAG_SOURCE = '''\
"""N mapped imagines; every operator call's time in the worker is appended to MJ_BENCH_TIMES."""
import json
import os
import time
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_midjourney.operators import MidjourneyImagineOperator

TIMES = os.environ["MJ_BENCH_TIMES"]


class TimedImagine(MidjourneyImagineOperator):
    def _timed(self, method, context, *args, **kwargs):
        if getattr(self, "_bench_inside", False):  # execute_admitted calls execute: one run, counted once
            return method(context, *args, **kwargs)
        self._bench_inside = True
        started = time.monotonic()
        try:
            return method(context, *args, **kwargs)
        finally:
            self._bench_inside = False
            record = {"map_index": context["ti"].map_index, "try": context["ti"].try_number,
                      "method": method.__name__, "seconds": time.monotonic() - started}
            with open(TIMES, "a") as out:
                out.write(json.dumps(record) + "\\n")

    def execute(self, context):
        return self._timed(super().execute, context)

    def execute_complete(self, context, event=None):
        return self._timed(super().execute_complete, context, event)

    def execute_admitted(self, context, event=None):
        return self._timed(super().execute_admitted, context, event)


with DAG(DAG_ID, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_tasks=1000):
    TimedImagine.partial(
        task_id="imagine",
        poll_interval=float(os.environ["MJ_BENCH_POLL"]),
        defer_when_busy=os.environ["MJ_BENCH_MODE"] == "after",
        retries=2,
        retry_delay=timedelta(seconds=5),
        timeout=3600,
    ).expand(prompt=[f"benchmark prompt {i}" for i in range(int(os.environ["MJ_BENCH_N"]))])
'''.replace("DAG_ID", repr(DAG_ID))


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator

    timings = JobTimings(start_after=0.2, progress_after=1.0, complete_after=args.t)
    home = Path(tempfile.mkdtemp(prefix=f"mj-admission-{mode}-"))
    dag_file = home / "admission_dag.py"
    dag_file.write_text(DAG_SOURCE)
    times_file = home / "times.jsonl"
    with MidjourneyEmulator(token=TOKEN, max_jobs=args.k, max_image_jobs=args.k, timings=timings) as emulator:
        extra = {"max_jobs": args.k} if mode == "after" else {}
        connection = {"conn_type": "midjourney", "host": emulator.base_url, "password": TOKEN, "extra": extra}
        env = {
            "PYTHONPATH": str(ROOT),
            "MJ_BENCH_TIMES": str(times_file),
            "MJ_BENCH_POLL": str(args.poll),
            "MJ_BENCH_MODE": mode,
            "MJ_BENCH_N": str(args.n),
            "AIRFLOW__CORE__PARALLELISM": str(args.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "1000",
        }
        stack = AirflowStack(home, [dag_file], connection, env)
        peak = {"jobs": 0}
        timeline: list[dict[str, Any]] = []
        stop = threading.Event()
        clock = {"run_started": time.monotonic()}  # reset when the DAG run is triggered

        def sample() -> None:
            next_states = 0.0
            while not stop.wait(0.2):
                jobs = sum(len(j) for j in emulator.state.running().values())
                peak["jobs"] = max(peak["jobs"], jobs)
                if time.monotonic() >= next_states:
                    next_states = time.monotonic() + STATE_EVERY
                    at = round(time.monotonic() - clock["run_started"], 1)
                    timeline.append({"t": at, "vendor_jobs": jobs, **_states(stack)})

        sampler = threading.Thread(target=sample, daemon=True)
        try:
            stack.start()
            sampler.start()
            run_id = stack.trigger(DAG_ID, timeout=300)
            clock["run_started"] = time.monotonic()
            try:
                state = stack.wait_run(DAG_ID, run_id, timeout=args.timeout)
            except TimeoutError:
                state = f"unfinished after {args.timeout:.0f} s"  # still report what was done by then
        finally:
            stop.set()
            stack.stop()
        run = stack.query(
            "SELECT julianday(end_date) - julianday(start_date) FROM dag_run WHERE dag_id = ? AND run_id = ?",
            DAG_ID,
            run_id,
        )
        tries = stack.query("SELECT map_index, try_number, state FROM task_instance WHERE dag_id = ?", DAG_ID)
        requests = emulator.requests
        jobs = emulator.created_jobs("imagine")
    posts = [r for r in requests if r.method == "POST" and r.path.endswith("/imagine")]
    busy = sum(r.status == 429 for r in posts)
    created = sum(r.status in (200, 201) for r in posts)
    per_task: dict[int, float] = defaultdict(float)
    per_method: dict[str, list[float]] = defaultdict(list)
    runs = 0  # operator calls in a worker: execute, execute_admitted, execute_complete (one task run each)
    for line in times_file.read_text().splitlines() if times_file.exists() else []:
        record = json.loads(line)
        per_task[record["map_index"]] += record["seconds"]
        per_method[record["method"]].append(record["seconds"])
        runs += 1
    ideal = math.ceil(args.n / args.k) * args.t
    created_times = sorted(_epoch(j["created"]) for j in jobs)
    done_times = sorted(_epoch(j["updated"]) for j in jobs if j["status"] == "completed")
    vendor_span = done_times[-1] - created_times[0] if created_times and done_times else float("nan")
    dag_span = run[0][0] * 86400 if run and run[0][0] is not None else float("nan")
    return {
        "mode": mode,
        "n": args.n,
        "k": args.k,
        "t": args.t,
        "poll": args.poll,
        "state": state,
        "succeeded": sum(1 for _, _, s in tries if s == "success"),
        "ideal_s": ideal,
        "makespan_dag_s": round(dag_span, 1),
        "makespan_vendor_s": round(vendor_span, 1),
        "ratio_dag": round(dag_span / ideal, 2),
        "ratio_vendor": round(vendor_span / ideal, 2),
        "busy_429": busy,
        "jobs_created": created,
        "duplicates": created - args.n,
        "tasks_retried": sum(1 for _, t, _ in tries if t and t > 1),
        "worker_s_per_task": round(sum(per_task.values()) / max(1, args.n), 1),
        "peak_vendor_jobs": peak["jobs"],
        "requests_per_job": round(len(requests) / max(1, args.n), 1),
        "task_runs_per_task": round(runs / max(1, args.n), 2),
        "runs_by_method": {m: len(v) for m, v in sorted(per_method.items())},
        "worker_s_by_method": {m: round(sum(v) / len(v), 2) for m, v in sorted(per_method.items())},
        "task_runs_per_s": round(runs / dag_span, 2) if dag_span == dag_span and dag_span > 0 else None,
        "all_started_s": _first(timeline, lambda row: not any(row.get(s) for s in ("scheduled", "queued", None))),
        "max_waiting_for_worker": max((row.get("scheduled", 0) + row.get("queued", 0) for row in timeline), default=0),
        "timeline": timeline,
    }


def _states(stack: AirflowStack) -> dict[Any, int]:
    """How many of the benchmark's task instances are in each state (None: not yet scheduled)."""
    try:
        rows = stack.query("SELECT state, count(*) FROM task_instance WHERE dag_id = ? GROUP BY state", DAG_ID)
    except Exception:  # the stack is still starting, or SQLite is busy: skip this sample
        return {}
    return {state: count for state, count in rows}


def _first(timeline: list[dict[str, Any]], condition: Any) -> float | None:
    """Seconds from the DAG run's trigger to the first sample with task instances meeting ``condition``."""
    for row in timeline:
        if row["t"] > 0 and len(row) > 2 and condition(row):
            return float(row["t"])
    return None


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--t", type=float, default=10.0, help="seconds a job runs")
    parser.add_argument("--poll", type=float, default=1.0, help="the operators' poll_interval")
    parser.add_argument("--parallelism", type=int, default=16, help="[core] parallelism of the stack")
    parser.add_argument("--modes", default="before,after")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--json", type=Path, help="append the rows to this file")
    args = parser.parse_args()
    if not (1 <= args.n <= 1000 and 1 <= args.k <= 15 and 0.5 <= args.t <= 600):
        parser.error("--n 1-1000, --k 1-15 (the emulator's channel limit), --t 0.5-600 s")
    rows = []
    for mode in args.modes.split(","):
        rows.append(run_mode(mode, args))
        if args.json:  # each row as soon as it is measured: a long run keeps what it finished
            with args.json.open("a") as out:
                out.write(json.dumps({**rows[-1], "machine_load": os.getloadavg()[0]}) + "\n")
    keys = [key for key in rows[0] if key != "timeline"]
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))


if __name__ == "__main__":
    main()
