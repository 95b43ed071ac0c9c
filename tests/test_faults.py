"""Fault scenarios of issue 10, through dag.test() on the emulator, on every Airflow version we run.

Each scenario injects one class of fault (a lost creation answer, polling errors that fail a try,
inputs that change between tries, malformed answers, 402/410 while polling, a hung cancel, a token
echoed by the API...) and asserts the task's outcome and the emulator's job count: no duplicate
job and no moderated prompt sent twice. Each prints one ``FAULT`` line (the figures of
docs/reliability.md). Run under both virtualenvs (Airflow 3.3.2 has the task state store, 3.0.6
keeps the job id in a Variable of the task instance).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest

from airflow_provider_midjourney.exceptions import MidjourneyLostSubmissionError
from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook
from airflow_provider_midjourney.testing import JobTimings
from airflow_provider_midjourney.triggers import MidjourneyJobTrigger
from tests.conftest import FAST_RETRY, TOKEN
from tests.dag_runs import run_dag
from tests.task_context import StateStore, task_context

pytestmark = pytest.mark.usefixtures("airflow_db", "midjourney_conn")

IMAGINE = "/v3/midjourney/jobs/imagine"
GET_JOB = "/v3/midjourney/jobs/j"
# Jobs that run long enough to be found "running" by a lookup in the same try.
SLOW = JobTimings(start_after=0.2, progress_after=0.4, complete_after=3.0)
# Jobs that are over (completed or moderated) before anyone can look them up.
INSTANT = JobTimings(start_after=0.0005, progress_after=0.0008, complete_after=0.001)


def tis(dr) -> dict[str, Any]:
    return {ti.task_id: ti for ti in dr.get_task_instances()}


def states(dr) -> dict[str, str]:
    return {task_id: str(ti.state) for task_id, ti in tis(dr).items()}


def result(dr, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id=task_id, key="return_value")
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)


def tally(emulator) -> tuple[int, int, int]:
    """(jobs created, duplicates, moderated resubmissions): jobs are the same request when every
    request field but replyRef/stream matches."""
    keys: list[str] = []
    moderated: Counter[str] = Counter()
    for job in emulator.created_jobs():
        request = {k: v for k, v in (job.get("request") or {}).items() if k not in ("replyRef", "stream")}
        key = json.dumps([job.get("verb"), request], sort_keys=True)
        keys.append(key)
        if job.get("status") == "moderated" or any(w in json.dumps(request) for w in emulator.moderation_words):
            moderated[key] += 1
    duplicates = sum(n - 1 for n in Counter(keys).values())
    return len(keys), duplicates, sum(n - 1 for n in moderated.values())


def report(name: str, emulator, survived: bool) -> tuple[int, int, int]:
    import airflow

    jobs, duplicates, resubmitted = tally(emulator)
    print(
        f"\nFAULT airflow={airflow.__version__} {name}: survived={int(survived)} jobs={jobs}"
        f" duplicates={duplicates} moderated_resubmissions={resubmitted}"
    )
    assert duplicates == 0 and resubmitted == 0
    return jobs, duplicates, resubmitted


# -- 1. inputs change between tries: reattach only to the same request ------------------------------


def test_changed_prompt_on_a_retry_submits_the_new_request(emulator) -> None:
    emulator.timings = SLOW
    emulator.fail_next(3, status=502, path_prefix=GET_JOB, method="GET")
    dr = run_dag(
        "fault_changed_prompt",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="{{ 'alpha' if ti.try_number == 1 else 'beta' }}",
                                  retries=1, retry_delay=timedelta(0), poll_interval=0.05, max_consecutive_errors=2)
        """,
    )
    out = result(dr, "imagine")
    survived = states(dr) == {"imagine": "success"} and out["prompt"] == "beta"
    assert survived, (states(dr), out)
    assert [job["request"]["prompt"] for job in emulator.created_jobs()] == ["alpha", "beta"]
    assert out["job_id"] == emulator.created_jobs()[1]["jobid"]
    report("changed prompt between tries", emulator, survived)


def test_changed_button_on_a_retry_presses_the_new_button(emulator, hook) -> None:
    parent = hook.imagine("parent grid")
    emulator.complete_job(parent.jobid)
    emulator.timings = SLOW
    emulator.fail_next(3, status=502, path_prefix=GET_JOB, method="GET")
    dr = run_dag(
        "fault_changed_button",
        f"""
        MidjourneyButtonOperator(task_id="press", job_id={parent.jobid!r},
                                 button="{{{{ 'U1' if ti.try_number == 1 else 'U2' }}}}",
                                 retries=1, retry_delay=timedelta(0), poll_interval=0.05, max_consecutive_errors=2)
        """,
    )
    survived = states(dr) == {"press": "success"}
    assert survived
    assert [job["request"].get("button") for job in emulator.created_jobs("button")] == ["U1", "U2"]
    assert result(dr, "press")["job_id"] == emulator.created_jobs("button")[1]["jobid"]
    report("changed button between tries", emulator, survived)


def test_same_request_on_a_retry_gets_the_same_job_even_when_it_finished(emulator) -> None:
    # The job completes while the first try fails on polling errors: the retry must reattach to it
    # (3.3: task state store; 3.0: the Variable), not find "no running job" and submit again.
    emulator.fail_next(4, status=502, path_prefix=GET_JOB, method="GET")
    dr = run_dag(
        "fault_same_request_finished",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="same request", retries=2, retry_delay=timedelta(0),
                                  poll_interval=0.05, max_consecutive_errors=2)
        """,
    )
    survived = states(dr) == {"imagine": "success"} and tis(dr)["imagine"].try_number >= 2
    assert survived
    assert len(emulator.requests_to("POST", IMAGINE)) == 1
    assert result(dr, "imagine")["job_id"] == emulator.created_jobs()[0]["jobid"]
    report("polling errors fail a try, job finishes meanwhile", emulator, survived)


def test_a_job_moderated_meanwhile_is_never_resubmitted(emulator) -> None:
    emulator.fail_next(4, status=503, path_prefix=GET_JOB, method="GET")
    dr = run_dag(
        "fault_moderated_meanwhile",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="a forbidden thing", retries=3, retry_delay=timedelta(0),
                                  poll_interval=0.05, max_consecutive_errors=2)
        """,
    )
    survived = states(dr) == {"imagine": "failed"}
    assert survived
    assert len(emulator.requests_to("POST", IMAGINE)) == 1
    report("polling errors fail a try, job moderated meanwhile", emulator, survived)


# -- 2. lost creation answers: the same try finds its job -------------------------------------------


def test_lost_creation_answers_are_recovered_in_the_same_try(emulator) -> None:
    emulator.timings = SLOW
    emulator.drop_next(1, path_prefix=IMAGINE, method="POST", after_handling=True)
    emulator.fail_next(1, status=502, path_prefix=IMAGINE, method="POST", after_handling=True)
    emulator.malformed_next(1, path_prefix=IMAGINE, method="POST", kind="html")
    dr = run_dag(
        "fault_lost_answers",
        """
        kw = dict(retries=2, retry_delay=timedelta(0), poll_interval=0.05)
        dropped = MidjourneyImagineOperator(task_id="dropped", prompt="answer dropped", **kw)
        gateway = MidjourneyImagineOperator(task_id="gateway", prompt="answer 502", **kw)
        garbled = MidjourneyImagineOperator(task_id="garbled", prompt="answer html", **kw)
        dropped >> gateway >> garbled
        """,
    )
    survived = set(states(dr).values()) == {"success"} and all(ti.try_number == 1 for ti in tis(dr).values())
    assert survived, states(dr)
    posts = emulator.requests_to("POST", IMAGINE)
    assert [r.dropped for r in posts] == [True, False, False] and posts[1].status == 502
    assert len(emulator.created_jobs()) == 3
    report("lost creation answer (drop, 502 after creation, HTML 200)", emulator, survived)


@pytest.mark.parametrize("prompt", ["finished at once", "a forbidden thing at once"])
def test_a_lost_answer_whose_job_is_already_over_fails_without_resubmitting(emulator, capfd, prompt) -> None:
    emulator.timings = INSTANT
    emulator.fail_next(1, status=502, path_prefix=IMAGINE, method="POST", after_handling=True)
    dr = run_dag(
        "fault_lost_answer_over",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt={prompt!r}, retries=3, retry_delay=timedelta(0),
                                  poll_interval=0.05)
        """,
    )
    logged = "".join(capfd.readouterr())
    survived = states(dr) == {"imagine": "failed"} and tis(dr)["imagine"].try_number == 1
    assert survived
    assert MidjourneyLostSubmissionError.__name__ in logged and "not submitted again" in logged
    assert len(emulator.requests_to("POST", IMAGINE)) == 1
    report(f"lost creation answer, job over before lookup ({prompt})", emulator, survived)


# -- 3. malformed answers, 402/410, timeouts with a hung or failing cancel ----------------------------


def test_malformed_poll_answers_are_transient(emulator) -> None:
    emulator.timings = SLOW
    for kind in ("html", "missing_fields", "not_object", "truncated", "empty"):
        emulator.malformed_next(1, path_prefix=GET_JOB, kind=kind)
    dr = run_dag(
        "fault_malformed_polls",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="malformed polls", retries=0, poll_interval=0.05)
        """,
    )
    survived = states(dr) == {"imagine": "success"}
    assert survived
    assert len(emulator.created_jobs()) == 1
    report("five malformed poll answers (HTML, missing fields, list, truncated, empty)", emulator, survived)


@pytest.mark.parametrize(("status", "label"), [(402, "402 subscription"), (410, "410 expired")])
def test_402_and_410_while_polling_fail_without_retries(emulator, capfd, status, label) -> None:
    emulator.timings = SLOW
    echo = f"no subscription for token {TOKEN[2:-2]}" if status == 402 else None
    emulator.fail_next(1, status=status, path_prefix=GET_JOB, method="GET", error=echo)
    dr = run_dag(
        f"fault_poll_{status}",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="gone", retries=3, retry_delay=timedelta(0),
                                  poll_interval=0.05)
        """,
    )
    # Airflow 3.0's dag.test() prints its own debug line "MaskSecret(value=...)" for every connection
    # password it is asked to mask; that line is Airflow's, not an echo: leave it out.
    logged = "\n".join(line for line in "".join(capfd.readouterr()).splitlines() if "MaskSecret(" not in line)
    survived = states(dr) == {"imagine": "failed"} and tis(dr)["imagine"].try_number == 1
    assert survived
    assert len(emulator.requests_to("POST", IMAGINE)) == 1
    assert TOKEN[2:10] not in logged and TOKEN[-10:-2] not in logged
    report(f"{label} while polling", emulator, survived)


@pytest.mark.parametrize("cancel_fault", ["failing DELETE", "malformed polls", "hung DELETE"])
def test_timeout_cancels_once_and_keeps_the_timeout_error(emulator, capfd, cancel_fault) -> None:
    emulator.never_finish = True
    if cancel_fault == "hung DELETE":
        emulator.slow_next(1, 30.0, path_prefix="/v3/midjourney/jobs/", method="DELETE")
    elif cancel_fault == "failing DELETE":
        emulator.fail_next(1, status=500, path_prefix="/v3/midjourney/jobs/", method="DELETE")
    else:
        emulator.malformed_next(10_000, path_prefix=GET_JOB, kind="html")
    dr = run_dag(
        "fault_timeout_cancel",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="takes forever", timeout=1.0, poll_interval=0.05)
        """,
    )
    logged = "".join(capfd.readouterr())
    survived = states(dr) == {"imagine": "failed"} and "MidjourneyJobTimeoutError" in logged
    assert survived, logged[-3000:]
    assert len(emulator.requests_to("DELETE", "/v3/midjourney/jobs/")) == 1
    if cancel_fault == "malformed polls":
        [job] = emulator.created_jobs()
        assert emulator.jobs[job["jobid"]]["status"] == "failed"  # cancelled although no poll was readable
    else:
        assert "Could not cancel Midjourney job" in logged
    report(f"timeout with {cancel_fault}", emulator, survived)


# -- 4. secrets, local files, event loops, exactly one event -----------------------------------------


def test_a_token_with_a_trailing_newline_works_and_whitespace_fails_before_http(emulator, monkeypatch) -> None:
    from tests.conftest import connection_json

    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_DEFAULT", connection_json(emulator.base_url, token=TOKEN + "\n"))
    dr = run_dag("fault_token_newline", 'MidjourneyImagineOperator(task_id="imagine", prompt="newline token")')
    assert states(dr) == {"imagine": "success"}
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_DEFAULT", connection_json(emulator.base_url, token=" \n "))
    before = len(emulator.requests)
    dr = run_dag(
        "fault_token_blank",
        'MidjourneyImagineOperator(task_id="imagine", prompt="blank token", retries=2, retry_delay=timedelta(0))',
    )
    survived = states(dr) == {"imagine": "failed"} and tis(dr)["imagine"].try_number == 1
    assert survived and len(emulator.requests) == before
    report("token with a newline / whitespace-only token", emulator, survived)


def test_a_templated_local_path_to_a_secret_file_is_never_uploaded(emulator) -> None:
    dr = run_dag(
        "fault_proc_environ",
        """
        MidjourneyDescribeOperator(task_id="describe", image="{{ params.image }}",
                                   params={"image": "/proc/self/environ"}, retries=2, retry_delay=timedelta(0))
        """,
    )
    survived = states(dr) == {"describe": "failed"} and tis(dr)["describe"].try_number == 1
    assert survived and emulator.requests == []
    report("templated image path /proc/self/environ", emulator, survived)


def test_api_errors_echoing_secrets_are_redacted(emulator, hook) -> None:
    discord = "discord-secret-token-0123456789"
    emulator.fail_next(1, status=400, path_prefix="/v3/midjourney/accounts", error=f"bad discord {discord[3:-3]}")
    with pytest.raises(Exception) as info:
        hook.create_or_update_account(discord)
    assert discord[3:11] not in str(info.value) and "***" in str(info.value)
    job = hook.imagine("echo")
    emulator.fail_next(1, status=401, path_prefix=GET_JOB, error=f"token {TOKEN} rejected ({TOKEN[4:-4]})")
    [event] = asyncio.run(_events(MidjourneyJobTrigger(job.jobid, poll_interval=0.02)))
    assert event["status"] == "error" and event["fatal"] is True
    assert TOKEN[:8] not in json.dumps(event) and TOKEN[4:12] not in json.dumps(event)
    report("API errors echoing the API and Discord tokens", emulator, True)


async def _events(trigger: MidjourneyJobTrigger) -> list[dict[str, Any]]:
    return await asyncio.wait_for(_collect(trigger), timeout=30)


async def _collect(trigger: MidjourneyJobTrigger) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]


def test_a_trigger_yields_exactly_one_event_whatever_breaks(emulator, hook, monkeypatch) -> None:
    job = hook.imagine("crash at an exact point")
    emulator.malformed_next(3, path_prefix=GET_JOB, kind="missing_fields")
    events = asyncio.run(_events(MidjourneyJobTrigger(job.jobid, poll_interval=0.02)))
    assert [e["status"] for e in events] == ["completed"]

    async def boom(self: Any, job_id: str) -> Any:
        raise RuntimeError("a bug at an exact point")

    monkeypatch.setattr(UseapiV3Hook, "afetch_job", boom)
    events = asyncio.run(_events(MidjourneyJobTrigger(job.jobid, poll_interval=0.02)))
    assert [e["status"] for e in events] == ["error"] and "RuntimeError" in events[0]["message"]
    report("malformed answers and a crash inside the trigger", emulator, True)


@pytest.mark.parametrize("shared", [False, True])
def test_one_hook_works_under_many_event_loops(emulator, midjourney_conn, shared) -> None:
    hook = UseapiV3Hook(midjourney_conn, retry=FAST_RETRY, shared_async_client=shared)
    job = hook.imagine("many loops")
    for _ in range(3):
        assert asyncio.run(hook.aget_job(job.jobid)).jobid == job.jobid
    asyncio.run(hook.aclose())
    hook.close()
    report(f"one hook under three event loops (shared client: {shared})", emulator, True)


# -- 5. a cleared task (the state store still holds the earlier run's job) -----------------------------


def _execute(prompt: str, store: StateStore) -> dict[str, Any]:
    from airflow_provider_midjourney.operators import MidjourneyImagineOperator

    op = MidjourneyImagineOperator(task_id="t", prompt=prompt, deferrable=False, poll_interval=0.02, timeout=30)
    return op.execute(task_context(store, dag_id="cleared", try_number=2))


def test_a_cleared_task_reattaches_only_when_its_request_is_unchanged(emulator) -> None:
    store = StateStore()
    alpha = _execute("alpha", store)
    assert store["midjourney_job_id"] == alpha["job_id"] and len(store["midjourney_job_fingerprint"]) == 64
    again = _execute("alpha", store)  # cleared, same rendered prompt: the same job, nothing sent
    assert again["job_id"] == alpha["job_id"] and len(emulator.requests_to("POST", IMAGINE)) == 1
    beta = _execute("beta", store)  # cleared after the Variable behind the prompt changed
    assert beta["prompt"] == "beta" and beta["job_id"] != alpha["job_id"]
    assert store["midjourney_job_id"] == beta["job_id"]
    assert [job["request"]["prompt"] for job in emulator.created_jobs()] == ["alpha", "beta"]
    report("cleared task: same input reattaches, changed input submits anew", emulator, True)
