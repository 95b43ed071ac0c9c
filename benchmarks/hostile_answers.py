"""Event-loop lag of the trigger's poll on hostile answers, before and after issue #18, in one run.

Each case is a loopback server (in this parent process) answering a crafted poll: text that made the
old regexes backtrack, a moderation pattern that explodes, 150 MB, a byte every 0.25 s, JSON nested
50,000 deep, a gzip bomb. Two child processes, one importing the package as it was before (a
``git archive`` of ``--before``, default: where this branch left main) and one importing this
worktree, poll each case once through ``afetch_job`` on the shared client (what the triggerer
runs, connection timeout 3 s, no retries) while a probe coroutine sleeps 5 ms at a time and records
how late it wakes: the same measure as ``_loop_probe.py``, finer. The worst lag of each case is
what every other trigger in that triggerer would have waited.

    python benchmarks/hostile_answers.py [--before REF] [--out benchmarks/results/hostile_answers.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASE_LIMIT = 15.0  # seconds a case may run before the child gives up on it
TOKEN = "benchmark-hostile-token-Qx81"
V3_ID = "j1202005345571271493i-u12345-c1000000000000000001-bot:midjourney"
MESSAGE_ID = "d15c1541-229a-442b-9873-d3494dede12a"
TASK_ID = "1712345678901234"
SPACES = " " * 5000

# case → (connection type, extras, job id, answer as bytes/None, how the server answers)
CASES: dict[str, tuple[str, dict[str, Any], str]] = {
    "v3 seed text (5 KB spaces)": ("midjourney", {}, V3_ID),
    "v3 describe keycaps (5 KB spaces)": ("midjourney", {}, V3_ID),
    "useapi v2 job mode (5 KB spaces)": (
        "midjourney_useapi_v2",
        {"api_version": "v2", "discord_token": "discord-token-Bench-1234", "server": "1" * 19, "channel": "2" * 19},
        "job-1234567890",
    ),
    "imaginepro progress (5 KB spaces)": ("imaginepro", {}, MESSAGE_ID),
    "midjourney-proxy progress (5 KB spaces)": ("midjourney_proxy", {"flavour": "original"}, TASK_ID),
    "moderation_patterns (a+)+$": ("imaginepro", {"moderation_patterns": "(a+)+$"}, MESSAGE_ID),
    "150 MB answer": ("midjourney", {}, V3_ID),
    "drip 1 byte / 0.25 s": ("midjourney", {}, V3_ID),
    "JSON nested 50,000 deep": ("midjourney", {}, V3_ID),
    "gzip bomb (64 MB of spaces)": ("midjourney", {}, V3_ID),
}


def _answers() -> dict[str, Any]:
    """What each case's server sends (imported lazily: the parent only)."""
    from tests.hostile import Answer

    def body(value: Any) -> Any:
        return lambda seen: Answer(body=json.dumps(value).encode())

    v3 = {"jobid": V3_ID, "status": "completed", "created": "x"}
    bomb = gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)
    return {
        "v3 seed text (5 KB spaces)": body(v3 | {"verb": "seed", "response": {"content": "**seed**" + SPACES}}),
        "v3 describe keycaps (5 KB spaces)": body(
            v3 | {"verb": "describe", "response": {"content": "1\u20e3x" + SPACES + "y", "embeds": []}}
        ),
        "useapi v2 job mode (5 KB spaces)": body(
            {"jobid": "job-1234567890", "verb": "info", "status": "completed", "content": "**Job Mode**" + SPACES}
        ),
        "imaginepro progress (5 KB spaces)": body(
            {"messageId": MESSAGE_ID, "status": "PROCESSING", "progress": "5" + SPACES + "x"}
        ),
        "midjourney-proxy progress (5 KB spaces)": body(
            {"id": TASK_ID, "status": "IN_PROGRESS", "progress": "5" + SPACES + "x"}
        ),
        "moderation_patterns (a+)+$": body({"messageId": MESSAGE_ID, "status": "FAIL", "error": "a" * 24 + "!"}),
        "150 MB answer": lambda seen: Answer(stream_bytes=150 * 1024 * 1024),
        "drip 1 byte / 0.25 s": lambda seen: Answer(steps=[(b"{", 0.0)] + [(b" ", 0.25)] * 400),
        "JSON nested 50,000 deep": lambda seen: Answer(body=b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        "gzip bomb (64 MB of spaces)": lambda seen: Answer(
            headers=[("Content-Type", "application/json"), ("Content-Encoding", "gzip")], body=bomb
        ),
    }


# -- child: poll each case once with a lag probe running -------------------------------------------


async def _probe(lags: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append(time.perf_counter() - before - 0.005)


async def _case(conn_type: str, extra: dict[str, Any], job_id: str, base_url: str) -> dict[str, Any]:
    from types import SimpleNamespace

    from airflow_provider_midjourney.hooks.base import hook_class_for
    from airflow_provider_midjourney.retry import NO_RETRY

    lags: list[float] = []
    stop = asyncio.Event()
    probe: asyncio.Task[None] | None = None
    started = time.perf_counter()
    conn = SimpleNamespace(
        host=base_url, port=None, password=TOKEN, extra_dejson={**extra, "timeout": 3}, conn_type=conn_type
    )
    outcome = "answered"
    try:
        hook = hook_class_for(conn_type, "bench")("bench", connection=conn, retry=NO_RETRY, shared_async_client=True)
        try:
            with contextlib.suppress(Exception):  # the server's warm-up 404: client and imports ready
                await hook.afetch_job(job_id)
            probe = asyncio.create_task(_probe(lags, stop))
            await asyncio.sleep(0.05)
            lags.clear()
            started = time.perf_counter()
            job = await asyncio.wait_for(hook.afetch_job(job_id), CASE_LIMIT)
            outcome = f"answered: {job.status}"
        finally:
            await hook.aclose()
    except TimeoutError:
        outcome = f"still waiting after {CASE_LIMIT:g} s (given up)"
    except BaseException as exc:
        outcome = f"{type(exc).__name__}: {str(exc)[:90]}"
    took = time.perf_counter() - started
    stop.set()
    if probe is not None:
        await probe
    return {"worst_lag_ms": round(max(lags, default=0.0) * 1000, 1), "seconds": round(took, 2), "outcome": outcome}


def child(urls: dict[str, str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import isolate_airflow_home

    isolate_airflow_home()
    import airflow_provider_midjourney

    results = {"package": str(Path(airflow_provider_midjourney.__file__).parent)}
    for name, (conn_type, extra, job_id) in CASES.items():
        results[name] = asyncio.run(_case(conn_type, extra, job_id, urls[name]))
        print(f"  {name}: {results[name]}", file=sys.stderr, flush=True)
    print(json.dumps(results))


# -- parent ------------------------------------------------------------------------------------------


def _export(ref: str, into: Path) -> Path:
    archive = into / "before.tar"
    subprocess.run(
        ["git", "archive", "--format=tar", "-o", str(archive), ref, "airflow_provider_midjourney"], cwd=ROOT, check=True
    )
    with tarfile.open(archive) as tar:
        tar.extractall(into / "before", filter="data")
    return into / "before"


def _run_child(tree: Path, urls: dict[str, str], cwd: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(urls)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CASE_LIMIT * len(CASES) + 120,
    )
    if done.returncode:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/hostile_answers.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    sys.path.insert(0, str(ROOT))
    from tests.hostile import hostile_server

    before_ref = (
        args.before
        or subprocess.run(
            ["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    answers = _answers()
    served: dict[str, int] = {}

    def first_a_404(name: str) -> Any:
        """The first request of a child gets a plain 404 (imports, client, TLS context: not measured)."""
        from tests.hostile import Answer

        def answer(seen: Any) -> Any:
            served[name] = served.get(name, 0) + 1
            return Answer(status=404, body=b'{"error": "warm-up"}') if served[name] == 1 else answers[name](seen)

        return answer

    with tempfile.TemporaryDirectory(prefix="hostile-bench-") as tmp, ExitStack() as servers:
        urls = {name: servers.enter_context(hostile_server(first_a_404(name))).base_url for name in CASES}
        runs = {}
        for label, tree in (("before", _export(before_ref, Path(tmp))), ("after", ROOT)):
            print(f"{label} ({tree}):", file=sys.stderr, flush=True)
            served.clear()
            runs[label] = _run_child(tree, urls, tmp)
    report = {"before_ref": before_ref, "after": "worktree", "cases": {}}
    print("| case | before: worst lag | before: poll took, outcome | after: worst lag | after: poll took, outcome |")
    print("| --- | ---: | --- | ---: | --- |")
    for name in CASES:
        before, after = runs["before"][name], runs["after"][name]
        report["cases"][name] = {"before": before, "after": after}
        cells = [f"{r['worst_lag_ms']:g} ms | {r['seconds']:g} s, {r['outcome'][:60]}" for r in (before, after)]
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
