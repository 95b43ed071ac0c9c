"""Operators, trigger and sensor: through dag.test() on the emulator, and each branch directly."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_midjourney.exceptions import (
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyJobFailedError,
    MidjourneyJobModeratedError,
    MidjourneyJobTimeoutError,
)
from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook
from airflow_provider_midjourney.operators import (
    MidjourneyBlendOperator,
    MidjourneyButtonOperator,
    MidjourneyDescribeOperator,
    MidjourneyImagineOperator,
    MidjourneySeedOperator,
    MidjourneySettingsOperator,
)
from airflow_provider_midjourney.sensors import MidjourneyJobSensor
from airflow_provider_midjourney.triggers import MidjourneyJobTrigger
from tests.conftest import TOKEN, connection_json, example_dag
from tests.dag_runs import run_dag, task_states, xcom
from tests.task_context import FakeTI, StateStore, task_context

JOB_ID = "j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney"


pytestmark = pytest.mark.usefixtures("airflow_db", "midjourney_conn")


# -- example DAGs ---------------------------------------------------------------------------------


def test_example_imagine_upscale(emulator) -> None:
    dr = example_dag("midjourney_imagine_upscale").test()
    assert set(task_states(dr).values()) == {"success"} and len(task_states(dr)) == 7  # ... and download
    imagine = xcom(dr, "imagine")
    assert imagine["status"] == "completed" and len(imagine["image_urls"]) == 4 and imagine["grid_url"]
    assert xcom(dr, "imagine", key="job_id") == imagine["job_id"]
    upscales = [xcom(dr, "upscale", map_index=i) for i in range(4)]
    assert all(u["status"] == "completed" and len(u["image_urls"]) == 1 for u in upscales)
    assert len({u["job_id"] for u in upscales}) == 4
    assert isinstance(xcom(dr, "seed")["seed"], int)
    assert [len(emulator.created_jobs(v)) for v in ("imagine", "button", "seed")] == [1, 4, 1]


def test_dag_test_builds_the_in_process_execution_api_once_per_process(emulator, monkeypatch) -> None:
    """Airflow's dag.test() builds one per task (about 2.5 s of CPU each on 3.1/3.2); the session reuses one."""
    from airflow.api_fastapi.execution_api import app

    built: list[object] = []
    build = app.create_task_execution_api_app
    monkeypatch.setattr(app, "create_task_execution_api_app", lambda *a, **k: built.append(1) or build(*a, **k))
    dr = example_dag("midjourney_imagine_upscale").test()
    assert len(task_states(dr)) == 7 and set(task_states(dr).values()) == {"success"}
    assert len(built) <= 1  # none when an earlier test of this process built it


def test_example_describe_to_imagine(emulator) -> None:
    dr = example_dag("midjourney_describe_to_imagine").test()
    assert set(task_states(dr).values()) == {"success"}
    prompts = xcom(dr, "describe")["prompts"]
    assert len(prompts) == 4
    assert xcom(dr, "imagine_from_description")["prompt"] == prompts[0]


def test_example_blend(emulator) -> None:
    dr = example_dag("midjourney_blend").test()
    assert task_states(dr) == {"blend": "success"}
    [sent] = emulator.requests_to("POST", "/v3/midjourney/jobs/blend")
    assert sent.json and sent.json["blendDimensions"] == "Portrait" and sent.json["imageUrl_3"]
    assert len(xcom(dr, "blend")["image_urls"]) == 4


def test_example_preflight_through_a_pool(emulator) -> None:
    from airflow.models.pool import Pool

    Pool.create_or_update_pool("midjourney", slots=3, description="maxJobs", include_deferred=True)
    dr = example_dag("midjourney_preflight").test()
    assert set(task_states(dr).values()) == {"success"} and len(task_states(dr)) == 7
    assert set(xcom(dr, "info")["settings"]) == {"fast", "relax", "turbo"}
    assert "suffix" in xcom(dr, "settings")["settings"]
    assert len(emulator.created_jobs("imagine")) == 5


# -- outcomes through dag.test() ------------------------------------------------------------------


def test_non_deferrable_mode_polls_in_the_worker(emulator) -> None:
    dr = run_dag(
        "non_deferrable",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="worker side", deferrable=False, poll_interval=0.05)
    """,
    )
    assert task_states(dr) == {"imagine": "success"}
    assert len(xcom(dr, "imagine")["image_urls"]) == 4


def test_invalid_input_fails_before_any_request(emulator) -> None:
    dr = run_dag(
        "invalid",
        """
        MidjourneyButtonOperator(task_id="button", job_id="not-a-job-id", button="U9", retries=2,
                                 retry_delay=timedelta(0))
    """,
    )
    assert task_states(dr) == {"button": "failed"}
    assert emulator.requests == []


def test_upscaling_twice_is_success(emulator) -> None:
    dr = run_dag(
        "upscale_twice",
        """
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt="fox", poll_interval=0.05)
        first = MidjourneyButtonOperator(task_id="first", job_id=imagine.output["job_id"], button="U1",
                                         poll_interval=0.05)
        second = MidjourneyButtonOperator(task_id="second", job_id=imagine.output["job_id"], button="U1",
                                          poll_interval=0.05)
        imagine >> first >> second
    """,
    )
    assert set(task_states(dr).values()) == {"success"}
    assert xcom(dr, "first")["job_id"] == xcom(dr, "second")["job_id"]
    assert [r.status for r in emulator.requests_to("POST", "/v3/midjourney/jobs/button")] == [201, 200]


def test_retry_after_polling_errors_reattaches(emulator, capfd) -> None:
    # Long enough to be still running when the retry looks (Airflow < 3.3 finds running jobs only).
    emulator.timings = emulator.timings.__class__(start_after=0.05, progress_after=0.1, complete_after=4.0)
    emulator.fail_next(3, status=502, path_prefix="/v3/midjourney/jobs/j", method="GET")
    dr = run_dag(
        "retry_polling",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="reattach me", retries=1, retry_delay=timedelta(0),
                                  poll_interval=0.05, max_consecutive_errors=2)
    """,
    )
    assert task_states(dr) == {"imagine": "success"}
    assert len(emulator.requests_to("POST", "/v3/midjourney/jobs/imagine")) == 1
    assert len(emulator.created_jobs()) == 1


def test_retry_after_a_lost_creation_answer_finds_the_job_by_reply_ref(emulator) -> None:
    # Long enough to be still running when the retry looks (Airflow < 3.3 finds running jobs only).
    emulator.timings = emulator.timings.__class__(start_after=0.05, progress_after=0.1, complete_after=4.0)
    emulator.drop_next(1, path_prefix="/v3/midjourney/jobs/imagine", after_handling=True)
    dr = run_dag(
        "retry_lost_answer",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="answer lost", retries=1, retry_delay=timedelta(0),
                                  poll_interval=0.05)
    """,
    )
    assert task_states(dr) == {"imagine": "success"}
    assert len(emulator.created_jobs()) == 1
    [job] = emulator.created_jobs()
    assert job["request"]["replyRef"].startswith("airflow:retry_lost_answer/")


def test_wait_for_completion_false_then_sensor(emulator) -> None:
    dr = run_dag(
        "submit_then_sense",
        """
        submit = MidjourneyImagineOperator(task_id="submit", prompt="sensed", wait_for_completion=False)
        sense = MidjourneyJobSensor(task_id="sense", job_id=submit.output["job_id"], poll_interval=0.05)
        poke = MidjourneyJobSensor(task_id="poke", job_id=submit.output["job_id"], deferrable=False,
                                   poll_interval=0.05)
        submit >> [sense, poke]
    """,
    )
    assert set(task_states(dr).values()) == {"success"}
    assert xcom(dr, "submit")["status"] == "created"
    assert len(xcom(dr, "sense")["image_urls"]) == 4 and xcom(dr, "poke") == xcom(dr, "sense")


def test_sensor_soft_fail_skips_on_a_moderated_job(emulator) -> None:
    dr = run_dag(
        "sensor_soft_fail",
        """
        submit = MidjourneyImagineOperator(task_id="submit", prompt="forbidden thing", wait_for_completion=False)
        MidjourneyJobSensor(task_id="sense", job_id=submit.output["job_id"], poll_interval=0.05, soft_fail=True)
        MidjourneyJobSensor(task_id="strict", job_id=submit.output["job_id"], poll_interval=0.05)
    """,
    )
    assert task_states(dr) == {"submit": "success", "sense": "skipped", "strict": "failed"}


# -- the operator directly: deferral and every event branch ---------------------------------------


def context(store: StateStore | None = None) -> dict[str, Any]:
    return task_context(store)


def test_execute_defers_with_the_right_trigger(emulator) -> None:
    from airflow.exceptions import TaskDeferred

    op = MidjourneyImagineOperator(task_id="t", prompt="deferred", poll_interval=2, timeout=timedelta(minutes=10))
    store, ctx = StateStore(), context(StateStore())
    ctx["task_state_store"] = store
    started = time.time()
    with pytest.raises(TaskDeferred) as info:
        op.execute(ctx)
    trigger = info.value.trigger
    [job] = emulator.created_jobs("imagine")
    assert isinstance(trigger, MidjourneyJobTrigger) and trigger.job_id == job["jobid"]
    assert trigger.poll_interval == 2 and started + 590 < trigger.deadline < time.time() + 601
    assert info.value.method_name == "execute_complete" and trigger.try_number == 1
    assert info.value.timeout > timedelta(minutes=10)
    # the id is persisted before deferring
    assert store["midjourney_job_id"] == job["jobid"] and ctx["ti"].xcoms["job_id"] == job["jobid"]
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_midjourney.triggers.midjourney.MidjourneyJobTrigger"
    assert TOKEN not in repr(kwargs) and MidjourneyJobTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_execute_reattaches_to_a_stored_completed_job(emulator, hook) -> None:
    job = hook.imagine("done before")
    emulator.complete_job(job.jobid)
    store = StateStore(midjourney_job_id=job.jobid)
    op = MidjourneyImagineOperator(task_id="t", prompt="done before")
    result = op.execute(task_context(store))
    assert result["job_id"] == job.jobid and result["status"] == "completed"
    assert len(emulator.created_jobs()) == 1


def test_execute_refuses_to_resubmit_a_moderated_job(emulator, hook) -> None:
    job = hook.imagine("forbidden again")
    deadline = time.monotonic() + 5
    while not hook.get_job(job.jobid).is_terminal and time.monotonic() < deadline:
        time.sleep(0.02)
    op = MidjourneyImagineOperator(task_id="t", prompt="forbidden again")
    with pytest.raises(MidjourneyJobModeratedError, match="not resubmitted"):
        op.execute(task_context(StateStore(midjourney_job_id=job.jobid)))
    assert len(emulator.created_jobs()) == 1


def _result_event(job_id: str = JOB_ID) -> dict[str, Any]:
    return {"status": "completed", "job_id": job_id, "result": {"job_id": job_id, "status": "completed"}}


@pytest.mark.parametrize(
    ("event", "error", "fragment"),
    [
        (
            {"status": "failed", "job_id": JOB_ID, "error": "boom", "message": "Midjourney job x failed: boom"},
            MidjourneyJobFailedError,
            "boom",
        ),
        (
            {"status": "moderated", "job_id": JOB_ID, "message": "Midjourney job x moderated: banned word"},
            MidjourneyJobModeratedError,
            "not resubmitted",
        ),
        ({"status": "error", "job_id": JOB_ID, "message": "5 consecutive errors"}, MidjourneyError, "consecutive"),
        ({"status": "exploded", "job_id": JOB_ID}, MidjourneyError, "Unknown trigger event status 'exploded'"),
        (None, MidjourneyError, "Unexpected trigger event"),
        ({"status": "completed", "job_id": JOB_ID}, MidjourneyError, "no valid result"),
        ({"status": "completed", "job_id": JOB_ID, "result": {"job_id": "other"}}, MidjourneyError, "no valid result"),
    ],
)
def test_execute_complete_branches(event, error, fragment) -> None:
    op = MidjourneyImagineOperator(task_id="t", prompt="p")
    with pytest.raises(error, match=fragment):
        op.execute_complete({"ti": FakeTI()}, event)


def test_a_stale_event_from_an_earlier_try_reruns_execute(emulator, hook) -> None:
    job = hook.imagine("resumed with a stale event")
    emulator.complete_job(job.jobid)
    op = MidjourneyImagineOperator(task_id="t", prompt="resumed with a stale event")
    stale = {"status": "error", "job_id": job.jobid, "message": "2 consecutive errors", "try_number": 1}
    result = op.execute_complete(task_context(StateStore(midjourney_job_id=job.jobid), try_number=2), stale)
    assert result["status"] == "completed" and len(emulator.created_jobs()) == 1


def test_execute_complete_success() -> None:
    op = MidjourneyImagineOperator(task_id="t", prompt="p")
    assert op.execute_complete({}, _result_event())["job_id"] == JOB_ID


def test_execute_complete_timeout_cancels(emulator, hook) -> None:
    emulator.never_finish = True
    job = hook.imagine("slow")
    op = MidjourneyImagineOperator(task_id="t", prompt="slow")
    with pytest.raises(MidjourneyJobTimeoutError):
        op.execute_complete({}, {"status": "timeout", "job_id": job.jobid, "message": "late"})
    assert hook.get_job(job.jobid).error == "Job cancelled by user"


def test_on_kill_cancels_in_non_deferrable_mode(emulator, hook) -> None:
    emulator.never_finish = True
    job = hook.imagine("killed")
    op = MidjourneyImagineOperator(task_id="t", prompt="killed", deferrable=False)
    op.submitted_job_id = job.jobid
    op.on_kill()
    assert hook.get_job(job.jobid).status == "failed"
    op.on_kill()  # already terminal: no second DELETE
    assert len(emulator.requests_to("DELETE", "/v3/midjourney/jobs/")) == 1


@pytest.mark.parametrize(
    ("operator", "kwargs", "fragment"),
    [
        (MidjourneyImagineOperator, {"prompt": "x" * 5001}, "5000"),
        (MidjourneyButtonOperator, {"job_id": JOB_ID, "button": "Vary (Region)"}, "mask"),
        (MidjourneyBlendOperator, {"images": ["https://e.x/1.png"]}, "2 to 5"),
        (MidjourneyDescribeOperator, {"image": "/no/such/file.png"}, "no such local file"),
        (MidjourneySeedOperator, {"job_id": "bad"}, "jobId"),
        (MidjourneySettingsOperator, {"command": "stealth"}, "command"),
        (MidjourneyImagineOperator, {"prompt": "p", "reply_level": "loud"}, "replyLevel"),
    ],
)
def test_operators_validate_before_any_request(emulator, operator, kwargs, fragment) -> None:
    with pytest.raises(MidjourneyInvalidRequestError, match=fragment):
        operator(task_id="t", **kwargs).execute(context())
    assert emulator.requests == []


def test_operator_argument_checks() -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        MidjourneyImagineOperator(task_id="t", prompt="p", poll_interval=0)
    with pytest.raises(ValueError, match="timeout"):
        MidjourneyImagineOperator(task_id="t", prompt="p", timeout=0)


def test_template_fields_cover_every_user_argument() -> None:
    assert {"prompt", "channel", "reply_url", "reply_ref", "reply_level"} <= set(
        MidjourneyImagineOperator.template_fields
    )
    assert {"job_id", "button", "prompt", "mask"} <= set(MidjourneyButtonOperator.template_fields)
    assert {"images", "dimensions"} <= set(MidjourneyBlendOperator.template_fields)
    assert "image" in MidjourneyDescribeOperator.template_fields
    assert "job_id" in MidjourneySeedOperator.template_fields
    assert "command" in MidjourneySettingsOperator.template_fields
    assert "job_id" in MidjourneyJobSensor.template_fields


# -- the trigger against the emulator -------------------------------------------------------------


def run_trigger(trigger: MidjourneyJobTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(collect(), timeout=20))


def test_trigger_yields_one_completed_event_and_logs_progress(emulator, hook, capfd, caplog) -> None:
    emulator.timings = emulator.timings.__class__(start_after=0.05, progress_after=0.1, complete_after=0.6)
    job = hook.imagine("trigger me")
    [event] = run_trigger(MidjourneyJobTrigger(job.jobid, poll_interval=0.02))
    assert event["status"] == "completed" and len(event["result"]["image_urls"]) == 4
    logged = capfd.readouterr().out + caplog.text  # structlog prints; plain logging is captured
    assert f"Job {job.jobid}: progress" in logged and "%" in logged and TOKEN not in logged


def test_trigger_tolerates_transient_errors_below_the_bound(emulator, hook) -> None:
    job = hook.imagine("flaky")
    emulator.fail_next(2, status=503, path_prefix="/v3/midjourney/jobs/j")
    emulator.drop_next(2, path_prefix="/v3/midjourney/jobs/j")
    [event] = run_trigger(MidjourneyJobTrigger(job.jobid, poll_interval=0.02, max_consecutive_errors=5))
    assert event["status"] == "completed"


def test_trigger_gives_up_above_the_bound(emulator, hook) -> None:
    job = hook.imagine("down")
    emulator.fail_next(50, status=500, path_prefix="/v3/midjourney/jobs/j")
    [event] = run_trigger(MidjourneyJobTrigger(job.jobid, poll_interval=0.01, max_consecutive_errors=3))
    assert event["status"] == "error" and "3 consecutive errors" in event["message"]
    assert len(emulator.requests_to("GET", "/v3/midjourney/jobs/j")) == 3


def test_trigger_permanent_error_and_deadline(emulator, hook) -> None:
    [event] = run_trigger(MidjourneyJobTrigger("j1111111111111111111i-u1-c1000000000000000001-bot:midjourney"))
    assert event["status"] == "error" and "404" in event["message"]
    emulator.never_finish = True
    job = hook.imagine("never")
    [event] = run_trigger(MidjourneyJobTrigger(job.jobid, poll_interval=0.02, deadline=time.time() + 0.2))
    assert event["status"] == "timeout" and event["last_status"] in {"created", "started", "progress"}


@pytest.mark.parametrize(("prompt", "status"), [("forbidden", "moderated"), ("explode", "failed")])
def test_trigger_terminal_failures(emulator, hook, prompt: str, status: str) -> None:
    job = hook.imagine(prompt)
    [event] = run_trigger(MidjourneyJobTrigger(job.jobid, poll_interval=0.02))
    assert event["status"] == status and event["error"] and event["message"]


def test_trigger_unknown_status_is_not_success(emulator, hook, monkeypatch) -> None:
    from airflow_provider_midjourney.hooks.useapi_v3_models import Job

    job = hook.imagine("odd")
    original = Job.model_validate

    def odd_status(data: Any, *args: Any, **kwargs: Any) -> Job:
        parsed = original(data, *args, **kwargs)
        return parsed.model_copy(update={"status": "paused_by_vendor"})

    monkeypatch.setattr(Job, "model_validate", odd_status)
    [event] = run_trigger(MidjourneyJobTrigger(job.jobid, poll_interval=0.01, deadline=time.time() + 0.2))
    assert event["status"] == "timeout" and event["last_status"] == "paused_by_vendor"


def test_trigger_uses_one_client_per_run(emulator, hook, monkeypatch) -> None:
    import httpx

    emulator.timings = emulator.timings.__class__(start_after=0.05, progress_after=0.1, complete_after=0.6)
    job = hook.imagine("one client")
    created = []
    original = httpx.AsyncClient.__init__

    def counting(self, *args: Any, **kwargs: Any) -> None:
        created.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", counting)
    run_trigger(MidjourneyJobTrigger(job.jobid, poll_interval=0.01))
    # Per-job GETs and the shared list calls (triggers/watch.py) all went through the one client.
    assert len(created) == 1 and len(emulator.requests_to("GET", "/v3/midjourney/jobs")) > 3


def test_trigger_on_kill_cancels_a_running_job(emulator, hook) -> None:
    emulator.never_finish = True
    job = hook.imagine("kill me")
    asyncio.run(MidjourneyJobTrigger(job.jobid).on_kill())
    assert hook.get_job(job.jobid).status == "failed"
    asyncio.run(MidjourneyJobTrigger(job.jobid, cancel_on_kill=False).on_kill())
    assert len(emulator.requests_to("DELETE", "/v3/midjourney/jobs/")) == 1


def test_extra_link_points_at_the_grid() -> None:
    from airflow_provider_midjourney.links import MidjourneyImageLink

    op = MidjourneyImagineOperator(task_id="t", prompt="p")
    link = MidjourneyImageLink()
    assert link.get_link(op, ti_key=None) == ""  # only deferred so far
    op.execute_complete(
        {},
        {
            "status": "completed",
            "job_id": JOB_ID,
            "result": {"job_id": JOB_ID, "grid_url": "https://cdn/grid.png", "image_urls": ["u1"]},
        },
    )
    assert link.get_link(op, ti_key=None) == "https://cdn/grid.png"
    op.midjourney_result = {"job_id": JOB_ID, "grid_url": None, "image_urls": [], "video_urls": ["https://cdn/v.mp4"]}
    assert link.get_link(op, ti_key=None) == "https://cdn/v.mp4"
    op.midjourney_result = {"job_id": JOB_ID, "grid_url": "javascript:alert(1)", "video_urls": ["v.mp4"]}
    assert link.get_link(op, ti_key=None) == ""  # only http(s) links are offered


def test_extra_link_is_stored_for_the_ui(emulator) -> None:
    dr = run_dag(
        "extra_link",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="linked", poll_interval=0.05)
    """,
    )
    grid = xcom(dr, "imagine")["grid_url"]
    assert grid and xcom(dr, "imagine", key="_link_MidjourneyImageLink") == grid


def test_hook_is_per_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OTHER", connection_json("http://127.0.0.1:9"))
    op = MidjourneyImagineOperator(task_id="t", prompt="p", midjourney_conn_id="other")
    assert isinstance(op.hook, UseapiV3Hook) and op.hook.midjourney_conn_id == "other"


def test_a_connection_of_another_type_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OTHER", '{"conn_type": "http", "host": "example.invalid"}')
    op = MidjourneyImagineOperator(task_id="t", prompt="p", midjourney_conn_id="other")
    with pytest.raises(MidjourneyError, match=r"has type 'http'; a Midjourney task needs one of: .*midjourney"):
        op.hook  # noqa: B018


def test_in_the_triggerer_the_final_status_is_left_to_airflows_event_line(emulator, hook) -> None:
    """Every log line of a trigger is a write the triggerer's supervisor must serve; Airflow already
    logs the event with its payload, so the trigger itself does not log the final status there."""
    job = hook.imagine("final line")
    running = hook.fetch_job(job.jobid)
    emulator.complete_job(job.jobid)
    done = hook.fetch_job(job.jobid)
    assert not running.is_terminal and done.is_terminal
    trigger = MidjourneyJobTrigger(job.jobid)
    assert trigger._log_due(running) and trigger._log_due(done)  # a worker (deferrable=False) logs both
    trigger.task_instance = FakeTI()  # what the triggerer attaches
    assert trigger._log_due(running) and not trigger._log_due(done)


def test_a_lost_submission_names_the_path_of_the_connections_own_backend(emulator, monkeypatch) -> None:
    """The error of a lost creation answer carries the path that was sent (it was always v3's)."""
    import json

    from airflow_provider_midjourney.exceptions import MidjourneyLostSubmissionError
    from airflow_provider_midjourney.job_requests import ImagineRequest
    from airflow_provider_midjourney.operators import base as operators_module

    monkeypatch.setattr(operators_module, "RECOVER_DELAYS", (0.0,))
    conn = {"conn_type": "midjourney_useapi_v2", "host": emulator.base_url, "password": TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_MJ_V2", json.dumps(conn))
    emulator.timings = emulator.timings.__class__(start_after=0.0005, progress_after=0.0008, complete_after=0.001)
    emulator.drop_next(1, method="POST", after_handling=True)  # created, then over before any lookup
    operator = MidjourneyImagineOperator(task_id="lost", prompt="lost answer", midjourney_conn_id="mj_v2")
    with pytest.raises(MidjourneyLostSubmissionError) as lost:
        operator._submit(ImagineRequest.build(prompt="lost answer", reply_ref="airflow:lost/1"))
    assert lost.value.path == "/v2/jobs/imagine" and len(emulator.created_jobs()) == 1
