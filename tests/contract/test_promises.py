"""The promises every backend keeps, run on every registered backend through the emulator over loopback.

A backend inherits these by registering in :mod:`airflow_provider_midjourney.backends` (and, only
if its emulator dialect keeps state, an entry in ``tests/contract/wings.py``). Its own module in
``tests/backends/`` then checks wire specifics only.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from airflow_provider_midjourney.backends import hook_class_for
from airflow_provider_midjourney.exceptions import (
    MidjourneyError,
    MidjourneyModeratedError,
    MidjourneyUnsupportedError,
)
from airflow_provider_midjourney.hooks.base import Capability, hook_for_connection
from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.job_requests import (
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    ImagineRequest,
    JobOptions,
    SeedRequest,
    SettingsRequest,
)
from airflow_provider_midjourney.triggers.midjourney import MidjourneyJobTrigger
from airflow_provider_midjourney.video_requests import VideoExtendRequest, VideoRequest
from airflow_provider_midjourney.vocabulary import RUNNING_STATUSES, JobStatus
from tests.conftest import FAST_RETRY, TOKEN
from tests.contract.wings import Wing, connection_json
from tests.dag_runs import run_dag, task_states, without_airflow_mask_echo, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")

SOME_ID = "contract-job-1"
IMAGE = "https://example.com/a.png"
# One request per capability a request type needs (hooks/base.py maps types to capabilities).
NEEDING: dict[Capability, JobOptions] = {
    Capability.IMAGINE: ImagineRequest.build(prompt="a contract fox"),
    Capability.BUTTON: ButtonRequest.build(job_id=SOME_ID, button="U1"),
    Capability.BLEND: BlendRequest.from_images([IMAGE, "https://example.com/b.png"]),
    Capability.DESCRIBE: DescribeRequest.from_image(IMAGE),
    Capability.SEED: SeedRequest.build(job_id=SOME_ID),
    Capability.SETTINGS: SettingsRequest.build(command="info"),
    Capability.VIDEO: VideoRequest.build(image=IMAGE),
    Capability.VIDEO_EXTEND: VideoExtendRequest.build(job_id=SOME_ID, index=1),
}


def chain(error: BaseException | None) -> list[BaseException]:
    """An error and every error it was raised from or while handling (bounded)."""
    found: list[BaseException] = []
    while error is not None and len(found) < 20:
        found.append(error)
        error = error.__cause__ or error.__context__
    return found


def marker() -> str:
    """A word no other request carries: finds this test's submissions among the recorded requests."""
    return f"m{uuid.uuid4().hex[:10]}"


def run_trigger(trigger: MidjourneyJobTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(collect(), timeout=20))


def imagine_dag(wing: Wing, name: str, prompt: str, options: str = "") -> Any:
    return run_dag(
        f"contract_{name}_{wing.name}",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt={prompt!r}, midjourney_conn_id=C, poll_interval=0.05,
                                  {options})
        """,
        conn_id=wing.conn_id,
    )


# -- submit → wait → typed result ---------------------------------------------------------------


def test_the_connection_type_picks_the_backends_own_hook(wing: Wing) -> None:
    assert hook_class_for(wing.backend.conn_type, wing.conn_id) is wing.hook_class
    with hook_for_connection(wing.conn_id) as hook:
        assert type(hook) is wing.hook_class and hook.backend == wing.name


def test_a_deferred_imagine_task_ends_with_the_same_typed_result(wing: Wing) -> None:
    word = marker()
    dr = imagine_dag(wing, "result", f"a red fox {word}")
    assert task_states(dr) == {"imagine": "success"}
    result = xcom(dr, "imagine")
    assert result["backend"] == wing.name and result["status"] == "completed" and result["verb"] == "imagine"
    assert isinstance(result["job_id"], str) and result["job_id"]
    pictures = result["image_urls"] or [result["grid_url"]]
    assert pictures and all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in pictures)
    assert len(result["image_urls"]) in (0, 4) and isinstance(result["buttons"], list)
    # str(): the metadata DB read (XComModel.deserialize_value) turns a digits-only id into an int
    assert str(xcom(dr, "imagine", key="job_id")) == result["job_id"]
    assert len(wing.requests_carrying(word)) == 1 and len(wing.emulator.created_jobs()) == 1


def test_the_trigger_waits_for_the_job_and_returns_it_typed(wing: Wing) -> None:
    with hook_for_connection(wing.conn_id, retry=FAST_RETRY) as hook:
        job = hook.submit_job(hook.check_request(ImagineRequest.build(prompt="a grey wolf")))
    assert isinstance(job, MidjourneyJob) and job.backend == wing.name and not job.is_terminal
    trigger = MidjourneyJobTrigger(job.job_id, midjourney_conn_id=wing.conn_id, poll_interval=0.02)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_midjourney.triggers.midjourney.MidjourneyJobTrigger"
    assert TOKEN not in json.dumps(kwargs, default=str), "a trigger carries the connection id, never a token"
    [event] = run_trigger(trigger)
    assert event["status"] == "completed" and event["job_id"] == job.job_id
    assert event["result"]["backend"] == wing.name and event["result"]["status"] == "completed"


# -- moderation: terminal, never resubmitted -------------------------------------------------------


def test_a_moderated_prompt_fails_the_task_and_is_never_sent_again(wing: Wing) -> None:
    word = marker()
    dr = imagine_dag(wing, "moderated", f"something forbidden {word}", "retries=3, retry_delay=timedelta(0)")
    assert task_states(dr) == {"imagine": "failed"}
    assert len(wing.requests_carrying(word)) == 1, "sent once, neither retried nor resubmitted"
    assert len(wing.emulator.created_jobs()) <= 1


def test_a_failed_job_fails_the_task(wing: Wing) -> None:
    # A job known to have failed may be retried by Airflow (unlike a moderated one): no retries here.
    dr = imagine_dag(wing, "failed", "explode please")
    assert task_states(dr) == {"imagine": "failed"}
    [job] = wing.emulator.created_jobs()
    assert job["status"] == "failed"


def test_a_moderated_job_is_terminal_when_fetched(wing: Wing) -> None:
    with hook_for_connection(wing.conn_id, retry=FAST_RETRY) as hook:
        try:
            job = hook.submit_job(hook.check_request(ImagineRequest.build(prompt="something forbidden")))
        except MidjourneyModeratedError:  # some APIs refuse the prompt at submission: terminal as well
            return
        for _ in range(250):  # bounded: 250 x 0.02 s
            job = hook.fetch_job(job.job_id)
            if job.is_terminal:
                break
            asyncio.run(asyncio.sleep(0.02))
    assert job.status == JobStatus.MODERATED and job.is_terminal and job.backend == wing.name


# -- a lost creation answer never duplicates a job ------------------------------------------------


@pytest.mark.parametrize("fault", ["dropped", "not_json"])
def test_a_lost_creation_answer_never_creates_a_second_job(wing: Wing, fault: str) -> None:
    word = marker()
    if fault == "dropped":  # the job exists, its answer is lost
        wing.emulator.drop_next(1, method="POST", after_handling=True)
    else:  # the job exists, its answer is a gateway's HTML page
        wing.emulator.malformed_next(1, path_prefix="/", method="POST", kind="html")
    dr = imagine_dag(wing, f"lost_answer_{fault}", f"answer lost {word}", "retries=2, retry_delay=timedelta(0)")
    assert len(wing.emulator.created_jobs()) == 1, "the retry found the job or gave up; it never made another"
    if wing.hook_class.idempotent_submit:  # re-sent under the same Idempotency-Key: the first job answers
        assert len(wing.requests_carrying(word)) >= 2 and task_states(dr) == {"imagine": "success"}
    else:
        assert len(wing.requests_carrying(word)) == 1
    if task_states(dr) == {"imagine": "success"}:  # found again by its reference
        assert xcom(dr, "imagine")["status"] == "completed"
    else:
        assert task_states(dr) == {"imagine": "failed"}


# -- timeout → cancel where the backend can ------------------------------------------------------


def test_a_timeout_fails_the_task_and_cancels_the_job_where_the_backend_can(wing: Wing) -> None:
    wing.emulator.never_finish = True
    dr = imagine_dag(wing, "timeout", "takes forever", "timeout=0.5")
    assert task_states(dr) == {"imagine": "failed"}
    [job] = wing.emulator.created_jobs()
    if wing.can(Capability.CANCEL):
        assert job["status"] == "failed", "cancelled on the server"
    else:
        assert job["status"] in {str(s) for s in RUNNING_STATUSES}, "nothing to cancel with: left running"


# -- a capability the backend lacks is refused before HTTP ----------------------------------------


def test_what_the_backend_cannot_do_is_refused_before_any_request(wing: Wing) -> None:
    lacking = [capability for capability in NEEDING if not wing.can(capability)]
    if not lacking:
        pytest.skip(f"{wing.name} offers every capability a request type needs")
    with hook_for_connection(wing.conn_id, retry=FAST_RETRY) as hook:
        for capability in lacking:
            with pytest.raises(MidjourneyUnsupportedError) as refused:
                hook.submit_job(NEEDING[capability])
            assert capability.value in str(refused.value) and wing.backend.conn_type in str(refused.value)
    assert wing.emulator.requests == [], "refused before any HTTP request"


def test_an_invalid_input_fails_the_task_before_any_request(wing: Wing) -> None:
    dr = run_dag(
        f"contract_invalid_{wing.name}",
        """
        MidjourneyButtonOperator(task_id="button", job_id="not a job id!", button="U9", midjourney_conn_id=C,
                                 retries=2, retry_delay=timedelta(0))
        """,
        conn_id=wing.conn_id,
    )
    assert task_states(dr) == {"button": "failed"}
    assert wing.emulator.requests == []


# -- no secret in any output ----------------------------------------------------------------------


def test_no_token_in_logs_results_or_errors(
    wing: Wing, capfd: pytest.CaptureFixture[str], caplog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dr = run_dag(
        f"contract_secrets_{wing.name}",
        """
        MidjourneyImagineOperator(task_id="ok", prompt="a quiet lake", midjourney_conn_id=C, poll_interval=0.05)
        MidjourneyImagineOperator(task_id="refused", prompt="forbidden lake", midjourney_conn_id=C, poll_interval=0.05)
        """,
        conn_id=wing.conn_id,
    )
    assert task_states(dr) == {"ok": "success", "refused": "failed"}
    results = json.dumps([xcom(dr, "ok"), xcom(dr, "refused")], default=str)
    wrong = "wrong-token-Zq81-never-shown"
    monkeypatch.setenv(f"AIRFLOW_CONN_{wing.conn_id.upper()}", connection_json(wing.backend, wing.emulator, wrong))
    with hook_for_connection(wing.conn_id, retry=FAST_RETRY) as hook, pytest.raises(MidjourneyError) as denied:
        hook.submit_job(hook.check_request(ImagineRequest.build(prompt="who am i")))
    errors = "\n".join(f"{e}\n{e!r}" for e in chain(denied.value))
    output = capfd.readouterr()
    logged = (without_airflow_mask_echo(text) for text in (output.out, output.err, caplog.text))
    for text in (results, errors, *logged):
        assert TOKEN not in text and wrong not in text
