"""End to end on a real Airflow 3 stack: api-server, scheduler (LocalExecutor), dag-processor and
triggerer as separate processes on SQLite, with the emulator on loopback, plus fault injection.

Run with ``make e2e`` (CI runs it). Every wait is bounded; the stack is torn down even on failure.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_midjourney.backends import BACKENDS
from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator
from tests.e2e.stack import RESULTS, AirflowStack

pytestmark = pytest.mark.e2e

TOKEN = "e2e-SECRET-token-7f3a9c1d5b"
REPO = Path(__file__).resolve().parents[2]
DAG_FILES = [
    REPO / "example_dags" / "midjourney_imagine_upscale.py",
    Path(__file__).parent / "dags" / "e2e_scenarios.py",
    Path(__file__).parent / "dags" / "e2e_backends.py",
    Path(__file__).parent / "dags" / "e2e_video.py",
]
# The connection type picks the backend; the emulator serves every backend's routes at once.
BACKEND_CONN_TYPES = {backend.name: backend.conn_type for backend in BACKENDS}
BACKEND_MOUNTS = {backend.name: backend.emulator_path for backend in BACKENDS}
# Jobs last long enough that a trigger never fires before the deferring task process has exited:
# on 2 busy cores that exit can take seconds, and Airflow fails a task whose executor reports the
# old workload after the trigger has already requeued it (real Midjourney jobs take 30-60 s).
SLOW_JOBS = JobTimings(start_after=0.5, progress_after=1.0, complete_after=(9.0, 11.0))


@pytest.fixture(scope="module")
def emulator() -> Iterator[MidjourneyEmulator]:
    with MidjourneyEmulator(token=TOKEN, timings=SLOW_JOBS, max_jobs=15, max_image_jobs=12) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def stack(emulator: MidjourneyEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    home = tmp_path_factory.mktemp("airflow-e2e")
    connection = {"conn_type": "midjourney", "host": emulator.base_url, "password": TOKEN}
    stack = AirflowStack(
        home,
        DAG_FILES,
        connection,
        {
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
            "MIDJOURNEY_POLL_INTERVAL": "1",
            "MIDJOURNEY_DESTINATION": f"file://{home / 'pictures'}",
            **{
                f"AIRFLOW_CONN_MJ_{backend.upper()}": json.dumps(
                    {
                        "conn_type": conn_type,
                        "host": emulator.base_url + BACKEND_MOUNTS.get(backend, ""),
                        "password": TOKEN,
                    }
                )
                for backend, conn_type in BACKEND_CONN_TYPES.items()
            },
        },
    )
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.fixture(autouse=True)
def _defaults(emulator: MidjourneyEmulator) -> None:
    emulator.timings = SLOW_JOBS
    emulator.never_finish = False


def jobs_with(emulator: MidjourneyEmulator, marker: str) -> list[dict[str, Any]]:
    return [job for job in emulator.created_jobs() if marker in (job["request"].get("prompt") or "")]


def posts_with(emulator: MidjourneyEmulator, marker: str) -> list[Any]:
    return [
        r for r in emulator.requests_to("POST", "/v3/midjourney/jobs/") if marker in str((r.json or {}).get("prompt"))
    ]


def requests_for(emulator: MidjourneyEmulator, marker: str) -> str:
    """POST / GET / DELETE requests that belong to a scenario (its prompts and its jobs)."""
    ids = {job["jobid"] for job in jobs_with(emulator, marker)}
    posts = len(posts_with(emulator, marker))
    about = [r for r in emulator.requests if any(i in r.path for i in ids)]
    gets = sum(r.method == "GET" for r in about)
    deletes = sum(r.method == "DELETE" for r in about)
    return f"{posts + gets + deletes} ({posts}/{gets}/{deletes})"


def record(scenario: str, happened: str, jobs: int, requests: int | str, result: str) -> None:
    RESULTS.append({"scenario": scenario, "happened": happened, "jobs": jobs, "requests": requests, "result": result})
    print(f"\n[{scenario}] {happened}; jobs created: {jobs}; requests: {requests}; result: {result}")


def wait_states(stack: AirflowStack, dag_id: str, run_id: str, states: set[str], count: int, timeout: float) -> None:
    stack.wait_for(
        lambda: sum(ti["state"] in states for ti in stack.task_instances(dag_id, run_id)) >= count,
        timeout,
        f"{count} task(s) of {dag_id} in {states}",
    )


# -- the main job ---------------------------------------------------------------------------------


def test_imagine_upscale_end_to_end(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    before, requests_before = len(emulator.created_jobs()), len(emulator.requests)
    run_id = stack.trigger("midjourney_imagine_upscale")
    wait_states(stack, "midjourney_imagine_upscale", run_id, {"deferred"}, 1, 120)
    assert stack.wait_run("midjourney_imagine_upscale", run_id, 240) == "success"
    created = emulator.created_jobs()[before:]
    assert [j["verb"] for j in created].count("imagine") == 1 and len(created) == 6  # + 4 U + seed
    # The triggerer process wrote the trigger's progress lines (its own log file per task try).
    trigger_logs = [p.read_text() for p in stack.logs.rglob("*.trigger.*.log")]
    assert any("progress" in text for text in trigger_logs)
    pictures = sorted((stack.home / "pictures").rglob("*.png"))
    assert len(pictures) == 4 and all(p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in pictures)
    assert len(list((stack.home / "pictures").rglob("index.html"))) == 1
    record(
        "main job: imagine → U1..U4 → seed",
        f"deferred in the triggerer, {len(pictures)} PNG files on disk",
        len(created),
        f"{len(emulator.requests) - requests_before} (incl. {len(pictures)} CDN downloads)",
        "success",
    )


# -- fault scenarios ------------------------------------------------------------------------------


def test_1_triggerer_killed_while_jobs_are_deferred(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    emulator.timings = JobTimings(start_after=0.5, progress_after=1.0, complete_after=(12.0, 14.0))
    run_id = stack.trigger("e2e_triggerer_restart")
    wait_states(stack, "e2e_triggerer_restart", run_id, {"deferred"}, 4, 120)
    stack.kill_component("triggerer", signal.SIGKILL)
    time.sleep(3)
    stack.start_component("triggerer")
    assert stack.wait_run("e2e_triggerer_restart", run_id, 240) == "success"
    assert len(jobs_with(emulator, "[restart]")) == 4
    record(
        "1. triggerer SIGKILLed with 4 jobs deferred, restarted",
        "all 4 tasks completed after the restart",
        4,
        requests_for(emulator, "[restart]"),
        "success, one job per task",
    )


def test_2_worker_killed_right_after_submit(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    run_id = stack.trigger("e2e_worker_crash")
    assert stack.wait_run("e2e_worker_crash", run_id, 240) == "success"
    [ti] = stack.task_instances("e2e_worker_crash", run_id)
    assert ti["try_number"] == 2
    assert len(jobs_with(emulator, "[crash]")) == 1
    record(
        "2. task process SIGKILLed right after submit",
        "try 2 reattached to try 1's job",
        1,
        requests_for(emulator, "[crash]"),
        "success on try 2",
    )


def test_3_busy_channel_429_storm(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    channel = emulator.channels[0]
    emulator.timings = JobTimings(start_after=0.3, progress_after=0.6, complete_after=9.0)
    emulator.set_channel_limits(channel, max_jobs=1, max_image_jobs=1)
    started = time.monotonic()
    run_id = stack.trigger("e2e_busy")
    try:
        assert stack.wait_run("e2e_busy", run_id, 300) == "success"
    finally:
        emulator.set_channel_limits(channel, max_jobs=15, max_image_jobs=12)
    posts = posts_with(emulator, "[busy]")
    busy = sum(r.status == 429 for r in posts)
    elapsed = time.monotonic() - started
    assert len(jobs_with(emulator, "[busy]")) == 4
    # Each 429 is followed by a 2-4 s wait: far below one request per task per second.
    assert len(posts) <= 4 + elapsed / 2 * 4
    record(
        "3. 429 storm: 4 tasks, channel limited to 1 job",
        f"{busy} answers were 429, tasks waited 2-4 s each time",
        4,
        requests_for(emulator, "[busy]"),
        "success, no request storm",
    )


def test_4_errors_while_polling(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    emulator.fail_next(2, status=502, path_prefix="/v3/midjourney/jobs/j", method="GET")
    emulator.drop_next(2, path_prefix="/v3/midjourney/jobs/j", method="GET")
    run_id = stack.trigger("e2e_flaky_polling")
    assert stack.wait_run("e2e_flaky_polling", run_id, 180) == "success"
    record(
        "4a. 2×502 + 2 dropped connections while polling (bound 5)",
        "tolerated by the trigger",
        len(jobs_with(emulator, "[flaky-below]")),
        requests_for(emulator, "[flaky-below]"),
        "success",
    )

    # Long enough that try 2 (after its own GET retries) has deferred well before the job ends.
    emulator.timings = JobTimings(start_after=0.5, progress_after=1.0, complete_after=30.0)
    emulator.fail_next(6, status=503, path_prefix="/v3/midjourney/jobs/j", method="GET")
    run_id = stack.trigger("e2e_broken_polling")
    assert stack.wait_run("e2e_broken_polling", run_id, 240) == "success"
    [ti] = stack.task_instances("e2e_broken_polling", run_id)
    assert ti["try_number"] == 2 and len(jobs_with(emulator, "[flaky-above]")) == 1
    record(
        "4b. 503s above the bound (2) while polling",
        "try 1 failed, try 2 reattached to the same job",
        1,
        requests_for(emulator, "[flaky-above]"),
        "success on try 2",
    )


def test_4c_malformed_answers_and_lost_creation_answers(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    # Issue 10: three HTML pages in a row while polling failed a run whose job completed.
    emulator.malformed_next(3, path_prefix="/v3/midjourney/jobs/j", method="GET", kind="html")
    run_id = stack.trigger("e2e_html_polls")
    assert stack.wait_run("e2e_html_polls", run_id, 180) == "success"
    assert len(jobs_with(emulator, "[html]")) == 1
    record(
        "4c. 3 HTML pages (200) while polling",
        "malformed answers counted as transient by the trigger",
        1,
        requests_for(emulator, "[html]"),
        "success",
    )

    # Issue 10: a 502 or a dropped connection *after* the job was created; the same try finds it.
    emulator.fail_next(1, status=502, path_prefix="/v3/midjourney/jobs/imagine", method="POST", after_handling=True)
    emulator.drop_next(1, path_prefix="/v3/midjourney/jobs/imagine", method="POST", after_handling=True)
    run_id = stack.trigger("e2e_lost_answer")
    assert stack.wait_run("e2e_lost_answer", run_id, 240) == "success"
    tis = stack.task_instances("e2e_lost_answer", run_id)
    assert [ti["try_number"] for ti in tis] == [1, 1] and len(jobs_with(emulator, "[lost]")) == 2
    record(
        "4d. 502 / dropped connection after the job was created",
        "the same try found its job by replyRef among running jobs",
        2,
        requests_for(emulator, "[lost]"),
        "success on try 1, one job per task",
    )


def test_5_channel_locked(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    channel = emulator.channels[0]
    emulator.lock_channel(channel, "CAPTCHA detected")
    try:
        run_id = stack.trigger("e2e_locked")
        assert stack.wait_run("e2e_locked", run_id, 180) == "failed"
    finally:
        emulator.unlock_channel(channel)
    [ti] = stack.task_instances("e2e_locked", run_id)
    posts = emulator.requests_to("POST", "/v3/midjourney/jobs/imagine")
    locked_posts = [r for r in posts if r.status == 596]
    log = stack.log_text()
    assert ti["try_number"] == 1 and len(locked_posts) == 1
    assert f"channel {channel}: CAPTCHA detected" in log and "reset" in log
    record(
        "5. channel locked (596) mid-run",
        "failed at once naming the channel and the fix, retries=3 unused",
        0,
        len(locked_posts),
        "failed, no retry loop",
    )


def test_6_moderated_prompt(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    run_id = stack.trigger("e2e_moderated")
    assert stack.wait_run("e2e_moderated", run_id, 180) == "failed"
    [ti] = stack.task_instances("e2e_moderated", run_id)
    assert ti["try_number"] == 1 and len(posts_with(emulator, "[moderated]")) == 1
    record(
        "6. moderated prompt",
        "task failed, retries=3 not used",
        1,
        requests_for(emulator, "[moderated]"),
        "failed, exactly one submission",
    )


def test_7_job_that_never_finishes(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    run_id = stack.trigger("e2e_never_finishes")
    assert stack.wait_run("e2e_never_finishes", run_id, 180) == "failed"
    [job] = jobs_with(emulator, "[timeout]")
    deletes = emulator.requests_to("DELETE", f"/v3/midjourney/jobs/{job['jobid']}")
    assert [r.status for r in deletes] == [204] and emulator.jobs[job["jobid"]]["status"] == "failed"
    record(
        "7. job never finishes (timeout 8 s)",
        "trigger deadline → DELETE /jobs/<id> → task failed",
        1,
        requests_for(emulator, "[timeout]"),
        "failed, job cancelled",
    )


def test_8_user_marks_a_deferred_task_failed(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    from airflow.triggers.base import BaseTrigger

    if "on_kill" not in vars(BaseTrigger):
        pytest.skip("BaseTrigger.on_kill needs Airflow >= 3.3")
    run_id = stack.trigger("e2e_mark_failed")
    wait_states(stack, "e2e_mark_failed", run_id, {"deferred"}, 1, 120)
    [job] = jobs_with(emulator, "[kill]")
    # Act once the triggerer really runs the trigger (it is polling the job).
    stack.wait_for(lambda: emulator.requests_to("GET", f"/v3/midjourney/jobs/{job['jobid']}"), 60, "polling")
    stack.api("PATCH", f"/dags/e2e_mark_failed/dagRuns/{run_id}/taskInstances/imagine", json={"new_state": "failed"})
    stack.wait_for(lambda: emulator.jobs[job["jobid"]]["status"] == "failed", 60, "the job to be cancelled")
    deletes = emulator.requests_to("DELETE", f"/v3/midjourney/jobs/{job['jobid']}")
    assert [r.status for r in deletes] == [204]
    record(
        "8. user marks the deferred task failed",
        "the trigger's on_kill cancelled the job",
        1,
        requests_for(emulator, "[kill]"),
        "failed, job cancelled",
    )


def test_10_no_secret_anywhere(stack: AirflowStack, emulator: MidjourneyEmulator) -> None:
    """Runs last: every log file, the metadata DB (XCom, rendered templates, triggers) — no token."""
    needle = TOKEN.encode()
    places = [p for p in stack.home.rglob("*") if p.is_file()]
    leaks = [str(p) for p in places if needle in p.read_bytes()]
    assert leaks == []
    rows = stack.query("SELECT count(*) FROM xcom") + stack.query("SELECT count(*) FROM rendered_task_instance_fields")
    record(
        "10. token grep: logs, XCom, rendered templates, trigger rows (whole SQLite file)",
        f"{len(places)} files searched ({rows[0][0]} XComs, {rows[1][0]} rendered-field rows)",
        0,
        0,
        "0 occurrences",
    )


# -- the main job on every backend ------------------------------------------------------------------


@pytest.mark.parametrize("backend", list(BACKEND_CONN_TYPES))
def test_main_job_on_every_backend(stack: AirflowStack, emulator: MidjourneyEmulator, backend: str) -> None:
    """imagine → U1..U4 → download of four pictures, deferred in the real triggerer, on each backend."""
    dag_id = f"e2e_main_{backend}"
    before, requests_before = len(emulator.created_jobs()), len(emulator.requests)
    run_id = stack.trigger(dag_id)
    state = stack.wait_run(dag_id, run_id, 240)
    created = emulator.created_jobs()[before:]
    pictures = sorted((stack.home / "pictures" / backend).rglob("*.png"))
    record(
        f"main job on {backend}: imagine → U1..U4 → download",
        f"{len(pictures)} PNG files on disk",
        len(created),
        len(emulator.requests) - requests_before,
        state,
    )
    assert state == "success", [(ti["task_id"], ti["state"]) for ti in stack.task_instances(dag_id, run_id)]
    assert [j["verb"] for j in created].count("imagine") == 1 and len(created) == 5  # imagine + 4 upscales
    assert len(pictures) == 4 and all(p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in pictures)
    assert len({p.read_bytes() for p in pictures}) == 4  # four different pictures, not one grid four times
    results = [
        row[0] for row in stack.query("SELECT value FROM xcom WHERE dag_id = ? AND key = 'return_value'", dag_id)
    ]
    assert any(backend.encode() in (r if isinstance(r, bytes) else str(r).encode()) for r in results)


# -- video ------------------------------------------------------------------------------------------

VIDEO_BACKENDS = ("useapi_v3", "apiframe")


@pytest.mark.parametrize("backend", VIDEO_BACKENDS)
def test_video_on_backends(stack: AirflowStack, emulator: MidjourneyEmulator, backend: str) -> None:
    """imagine → animate picture 2 → download the clips, deferred in the real triggerer."""
    dag_id = f"e2e_video_{backend}"
    before, requests_before = len(emulator.created_jobs()), len(emulator.requests)
    run_id = stack.trigger(dag_id)
    state = stack.wait_run(dag_id, run_id, 240)
    created = emulator.created_jobs()[before:]
    clips = sorted((stack.home / "pictures" / "video" / backend).rglob("*.mp4"))
    record(
        f"video on {backend}: imagine → animate → download",
        f"{len(clips)} MP4 files on disk",
        len(created),
        len(emulator.requests) - requests_before,
        state,
    )
    assert state == "success", [(ti["task_id"], ti["state"]) for ti in stack.task_instances(dag_id, run_id)]
    assert len(created) == 2 and created[1]["jobType"] == "video"
    assert len(clips) == 4 and all(c.read_bytes()[4:8] == b"ftyp" for c in clips)
    assert len({c.read_bytes() for c in clips}) == 4
    sheet = next((stack.home / "pictures" / "video" / backend).rglob("index.html")).read_text()
    assert sheet.count("<video ") == 4
