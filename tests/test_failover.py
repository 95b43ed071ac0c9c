"""Failover across connections, through dag.test() on the emulator's useapi v3 and ImaginePro dialects.

``midjourney_default`` is useapi v3, ``mj_backup`` ImaginePro; both talk to the one emulator, whose
job engine sees every job of either dialect (``created_jobs()`` counts them all).
"""

from __future__ import annotations

import json
import socket

import pytest

from airflow_provider_midjourney.exceptions import (
    MidjourneyAPIError,
    MidjourneyAuthError,
    MidjourneyBusyError,
    MidjourneyConnectError,
    MidjourneyInvalidRequestError,
    MidjourneyLostSubmissionError,
    MidjourneyModeratedError,
    MidjourneyServerError,
    MidjourneySubmitUncertainError,
    MidjourneySubscriptionError,
    MidjourneyTransportError,
    MidjourneyUnsupportedError,
)
from airflow_provider_midjourney.failover import (
    check_fallback_conn_ids,
    connection_chain,
    job_reference,
    pass_over_reason,
)
from airflow_provider_midjourney.hooks.imaginepro import ImagineProCreditsError
from airflow_provider_midjourney.operators import MidjourneyImagineOperator
from tests.conftest import TOKEN
from tests.dag_runs import run_dag, task_states, without_airflow_mask_echo, xcom
from tests.test_admission import full_account  # noqa: F401 - the fixture, shared

V3_IMAGINE = "/v3/midjourney/jobs/imagine"
IP_IMAGINE = "/api/v1/nova/imagine"
TTAPI_IMAGINE = "/midjourney/v1/imagine"
BACKUP = "mj_backup"


@pytest.fixture
def backup_conn(emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    conn = {"conn_type": "imaginepro", "host": emulator.base_url, "password": TOKEN, "extra": {"job_timeout": "120"}}
    monkeypatch.setenv("AIRFLOW_CONN_MJ_BACKUP", json.dumps(conn))
    return BACKUP


@pytest.fixture
def v2_conn(emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """useapi v2, which answers a moderated prompt with 422 at submit (v3 and ImaginePro fail it later)."""
    conn = {"conn_type": "midjourney_useapi_v2", "host": emulator.base_url, "password": TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_MJ_V2", json.dumps(conn))
    return "mj_v2"


pytestmark = pytest.mark.usefixtures("airflow_db", "midjourney_conn", "backup_conn", "v2_conn")


def posts(emulator, path: str) -> list[int]:
    return [r.status for r in emulator.requests_to("POST", path)]


# -- the rule: which refusals prove that no job exists -------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (MidjourneyAuthError(401, "bad token"), "auth"),
        (MidjourneyAPIError(403, "key inactive"), "auth"),
        (MidjourneySubscriptionError(402, "no subscription"), "no_credits"),
        (ImagineProCreditsError(402, "no credits"), "no_credits"),
        (MidjourneyConnectError("POST /x was not sent: ConnectError"), "connect"),
        (MidjourneyUnsupportedError("seed jobs need 'seed'"), "unsupported"),
        # the job may exist: never passed over
        (MidjourneySubmitUncertainError("no answer", path="/x", reply_ref="r"), None),
        (MidjourneyLostSubmissionError("lost", path="/x", reply_ref="r"), None),
        (MidjourneyServerError(502, "bad gateway"), None),
        (MidjourneyTransportError("dropped"), None),
        # moderation is terminal everywhere, even when a vendor answers it with 403
        (MidjourneyModeratedError(422, "moderated"), None),
        (MidjourneyModeratedError(403, "sensitive content detected"), None),
        # neither: a busy channel (its own wait), a bad request (the same everywhere)
        (MidjourneyBusyError(429, "busy"), None),
        (MidjourneyInvalidRequestError("prompt: empty"), None),
    ],
)
def test_only_refusals_that_prove_no_job_exists_pass_over(exc: Exception, reason: str | None) -> None:
    assert pass_over_reason(exc) == reason


def test_fallback_conn_ids_are_checked_naming_the_field() -> None:
    assert connection_chain("a", ["b", "a", "c", "b"]) == ["a", "b", "c"]
    assert check_fallback_conn_ids(None) == []
    for bad in ("b", ["b", ""], ["b", 3], ["x"] * 9):
        with pytest.raises(MidjourneyInvalidRequestError, match="fallback_conn_ids"):
            check_fallback_conn_ids(bad)
    with pytest.raises(MidjourneyInvalidRequestError, match="fallback_conn_ids"):
        MidjourneyImagineOperator(task_id="t", prompt="p", fallback_conn_ids="mj_backup")
    assert job_reference({"job_id": "j1", "conn_id": "c"}) == ("j1", "c")
    assert job_reference("j1") == ("j1", None)


# -- through dag.test() ---------------------------------------------------------------------------------


def test_402_at_submit_runs_the_job_on_the_next_connection(emulator, capfd, caplog) -> None:
    emulator.fail_next(1, status=402, path_prefix=V3_IMAGINE, method="POST", error="Subscription expired")
    dr = run_dag(
        "failover_402",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="a lighthouse at dusk", poll_interval=0.05,
                                  fallback_conn_ids=["mj_backup"])
    """,
    )
    assert task_states(dr) == {"imagine": "success"}
    result = xcom(dr, "imagine")
    assert (result["conn_id"], result["backend"]) == (BACKUP, "imaginepro")
    assert posts(emulator, V3_IMAGINE) == [402]
    assert posts(emulator, IP_IMAGINE) == [200]
    assert len(emulator.created_jobs()) == 1  # exactly one job in all
    # ImaginePro's account-info reports credits: the result carries them
    assert isinstance(result["cost"]["credits_left"], int)
    assert xcom(dr, "imagine", key="job_id") == result["job_id"]
    logged = without_airflow_mask_echo(capfd.readouterr().out + caplog.text)
    assert "Connection 'midjourney_default' (useapi_v3) refused the job before creating it (no_credits" in logged
    assert TOKEN not in logged


def test_401_and_a_refused_connection_pass_over_too(emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:  # a port nobody listens on: connection refused before sending
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    monkeypatch.setenv("AIRFLOW_CONN_MJ_DEAD", json.dumps({"conn_type": "midjourney", "host": dead, "password": TOKEN}))
    emulator.fail_next(1, status=401, path_prefix=V3_IMAGINE, method="POST", error="Unauthorized")
    dr = run_dag(
        "failover_401_connect",
        """
        from airflow_provider_midjourney.retry import HttpRetry
        MidjourneyImagineOperator(task_id="imagine", prompt="three connections", poll_interval=0.05,
                                  midjourney_conn_id="mj_dead", fallback_conn_ids=["midjourney_default", "mj_backup"],
                                  retry=HttpRetry(max_attempts=2, backoff_initial=0.01, backoff_max=0.02))
    """,
    )
    assert task_states(dr) == {"imagine": "success"}
    assert xcom(dr, "imagine")["conn_id"] == BACKUP
    assert posts(emulator, V3_IMAGINE) == [401]
    assert len(emulator.created_jobs()) == 1


@pytest.mark.parametrize("fault", ["5xx", "dropped"])
def test_an_uncertain_submit_never_reaches_the_next_connection(emulator, fault: str) -> None:
    if fault == "5xx":
        emulator.fail_next(1, status=502, path_prefix=V3_IMAGINE, method="POST", after_handling=True)
    else:
        emulator.drop_next(1, path_prefix=V3_IMAGINE, method="POST", after_handling=True)
    emulator.timings = emulator.timings.__class__(start_after=0.05, progress_after=0.1, complete_after=2.0)
    dr = run_dag(
        f"failover_uncertain_{fault}",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="created, answer lost", poll_interval=0.05,
                                  fallback_conn_ids=["mj_backup"])
    """,
    )
    # the job the first connection created is found by its replyRef and waited for there
    assert task_states(dr) == {"imagine": "success"}
    assert xcom(dr, "imagine")["conn_id"] == "midjourney_default"
    assert posts(emulator, IP_IMAGINE) == []
    assert len(emulator.created_jobs()) == 1


def test_a_5xx_before_creation_fails_without_trying_the_next_connection(emulator) -> None:
    emulator.fail_next(1, status=503, path_prefix=V3_IMAGINE, method="POST")
    dr = run_dag(
        "failover_5xx_no_job",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="maybe created", poll_interval=0.05, retries=2,
                                  retry_delay=timedelta(0), fallback_conn_ids=["mj_backup"])
    """,
    )
    assert task_states(dr) == {"imagine": "failed"}  # lost submission: no retry either
    assert posts(emulator, IP_IMAGINE) == []
    assert emulator.created_jobs() == []


@pytest.mark.parametrize("primary", ["midjourney_default", "mj_backup", "mj_v2"])
def test_a_moderated_prompt_never_reaches_the_next_connection(emulator, primary: str) -> None:
    other = "mj_backup" if primary != "mj_backup" else "midjourney_default"
    dr = run_dag(
        f"failover_moderated_{primary}",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt="something forbidden", poll_interval=0.05,
                                  retries=2, retry_delay=timedelta(0),
                                  midjourney_conn_id={primary!r}, fallback_conn_ids=[{other!r}])
    """,
    )
    assert task_states(dr) == {"imagine": "failed"}
    assert len(emulator.created_jobs()) <= 1
    sent = posts(emulator, V3_IMAGINE) + posts(emulator, IP_IMAGINE) + posts(emulator, "/v2/jobs/imagine")
    assert len(sent) == 1
    if primary == "mj_v2":
        assert sent == [422]  # refused at submit, and still not passed over


def test_a_prompt_refused_as_moderated_at_submit_is_not_passed_over(emulator) -> None:
    # A 403 that is a moderation verdict (ImaginePro, Legnext word it so) is not an auth refusal.
    emulator.fail_next(1, status=403, path_prefix=IP_IMAGINE, method="POST", error="Prompt contains banned words")
    dr = run_dag(
        "failover_moderated_403",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="a harmless prompt", poll_interval=0.05,
                                  midjourney_conn_id="mj_backup", fallback_conn_ids=["midjourney_default"])
    """,
    )
    assert task_states(dr) == {"imagine": "failed"}
    assert posts(emulator, IP_IMAGINE) == [403]
    assert posts(emulator, V3_IMAGINE) == []


def test_a_backend_lacking_the_capability_is_passed_over_before_any_request(emulator) -> None:
    dr = run_dag(
        "failover_unsupported",
        """
        MidjourneySettingsOperator(task_id="info", command="info", poll_interval=0.05,
                                   midjourney_conn_id="mj_backup", fallback_conn_ids=["midjourney_default"])
    """,
    )
    assert task_states(dr) == {"info": "success"}
    result = xcom(dr, "info")
    assert (result["conn_id"], result["backend"]) == ("midjourney_default", "useapi_v3")
    assert not [r for r in emulator.requests if r.path.startswith("/api/v1/")]
    # Midjourney's /info reports the fast hours left: the result carries them
    assert result["cost"] == {"fast_hours_left": 9.34, "fast_hours_total": 15}


def test_unsupported_everywhere_skips_with_if_unsupported_skip(emulator) -> None:
    dr = run_dag(
        "failover_unsupported_everywhere",
        """
        MidjourneySettingsOperator(task_id="info", command="info", if_unsupported="skip",
                                   midjourney_conn_id="mj_backup", fallback_conn_ids=["mj_backup"])
    """,
    )
    assert task_states(dr) == {"info": "skipped"}
    assert emulator.requests == []


def test_a_retry_reattaches_on_the_connection_that_ran_the_job(emulator) -> None:
    # The first connection refuses once; the first try then gives up polling the second one. The
    # retry must wait for that job on the second connection, not submit on the (now willing) first.
    emulator.timings = emulator.timings.__class__(start_after=0.05, progress_after=0.1, complete_after=3.0)
    emulator.fail_next(1, status=402, path_prefix=V3_IMAGINE, method="POST")
    emulator.fail_next(3, status=502, path_prefix="/api/v1/message/fetch/", method="GET")
    dr = run_dag(
        "failover_retry_reattach",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="reattach on the backup", poll_interval=0.05,
                                  retries=1, retry_delay=timedelta(0), max_consecutive_errors=2,
                                  fallback_conn_ids=["mj_backup"])
    """,
    )
    assert task_states(dr) == {"imagine": "success"}
    [ti] = dr.get_task_instances()
    assert ti.try_number == 2  # the first try did give up
    assert xcom(dr, "imagine")["conn_id"] == BACKUP
    assert posts(emulator, V3_IMAGINE) == [402]
    assert posts(emulator, IP_IMAGINE) == [200]
    assert len(emulator.created_jobs()) == 1


def test_tasks_on_the_job_follow_its_connection_mapped_too(emulator) -> None:
    emulator.fail_next(1, status=402, path_prefix=V3_IMAGINE, method="POST")
    dr = run_dag(
        "failover_follow_the_job",
        """
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt="upscale me", poll_interval=0.05,
                                            fallback_conn_ids=["mj_backup"])
        MidjourneyButtonOperator.partial(task_id="upscale", job_id=imagine.output, poll_interval=0.05,
                                         fallback_conn_ids=["midjourney_default"]).expand(button=["U1", "U3"])
    """,
    )
    assert task_states(dr) == {"imagine": "success", "upscale[0]": "success", "upscale[1]": "success"}
    for index in (0, 1):
        assert xcom(dr, "upscale", map_index=index)["conn_id"] == BACKUP
    assert posts(emulator, "/v3/midjourney/jobs/button") == []
    assert posts(emulator, "/api/v1/nova/button") == [200, 200]


def test_sensor_and_download_follow_the_job_to_its_connection(emulator, tmp_path) -> None:
    """The sensor defers (the job runs 2 s), so it resumes as a fresh instance and must find the
    job's connection again: it once kept the primary's, and the download then refused the id."""
    from airflow_provider_midjourney.testing import JobTimings

    emulator.timings = JobTimings(start_after=0.02, progress_after=0.05, complete_after=2.0)
    emulator.fail_next(1, status=402, path_prefix=V3_IMAGINE, method="POST")
    dr = run_dag(
        "failover_sensor_download",
        f"""
        submit = MidjourneyImagineOperator(task_id="submit", prompt="watch me", wait_for_completion=False,
                                           fallback_conn_ids=["mj_backup"])
        watch = MidjourneyJobSensor(task_id="watch", job_id=submit.output, poll_interval=0.05)
        MidjourneyDownloadOperator(task_id="fetch", job_id=watch.output, kind="grid",
                                   destination={str(tmp_path)!r})
    """,
    )
    assert task_states(dr) == {"submit": "success", "watch": "success", "fetch": "success"}
    assert xcom(dr, "submit")["conn_id"] == BACKUP
    assert xcom(dr, "watch")["conn_id"] == BACKUP
    assert len(xcom(dr, "fetch")) == 1
    assert not [r for r in emulator.requests if r.method == "GET" and r.path.startswith("/v3/midjourney/jobs/")]


def test_example_failover_dag_runs_on_the_third_connection(emulator, monkeypatch, tmp_path) -> None:
    """The example's chain on three emulator dialects: TTAPI answers 402 (no quota), ImaginePro 401,
    and the self-hosted midjourney-proxy runs the job, its upscales and its download."""
    from airflow_provider_midjourney.hooks.midjourney_proxy import MidjourneyProxyHook
    from tests.conftest import example_dag

    def conn(conn_type: str, **extra: str) -> str:
        return json.dumps({"conn_type": conn_type, "host": emulator.base_url, "password": TOKEN, "extra": extra})

    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_PRIMARY", conn("ttapi"))
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_BACKUP", conn("imaginepro", job_timeout="120"))
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_SELFHOSTED", conn("midjourney_proxy"))
    monkeypatch.setenv("MIDJOURNEY_DESTINATION", tmp_path.as_uri())
    MidjourneyProxyHook.forget_probes()
    emulator.fail_next(1, status=402, path_prefix=TTAPI_IMAGINE, method="POST", error="insufficient quota")
    emulator.fail_next(1, status=401, path_prefix=IP_IMAGINE, method="POST", error="Invalid API key")
    dr = example_dag("midjourney_failover").test()
    assert task_states(dr) == {
        "imagine": "success",
        "upscale[0]": "success",
        "upscale[1]": "success",
        "download": "success",
    }
    result = xcom(dr, "imagine")
    assert (result["conn_id"], result["backend"]) == ("midjourney_selfhosted", "midjourney_proxy")
    assert posts(emulator, TTAPI_IMAGINE) == [402] and posts(emulator, IP_IMAGINE) == [401]
    assert len(emulator.created_jobs("imagine")) == 1
    assert {xcom(dr, "upscale", map_index=i)["conn_id"] for i in (0, 1)} == {"midjourney_selfhosted"}
    assert len(xcom(dr, "download")) == 1


def test_the_asset_event_carries_the_job_its_connection_and_cost(emulator) -> None:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    dr = run_dag(
        "failover_asset_cost",
        """
        from airflow.sdk import Asset
        MidjourneyImagineOperator(task_id="imagine", prompt="an asset", poll_interval=0.05,
                                  midjourney_conn_id="mj_backup", outlets=[Asset("midjourney://failover/cost")])
    """,
    )
    assert task_states(dr) == {"imagine": "success"}
    result = xcom(dr, "imagine")
    with create_session() as session:
        [event] = session.query(AssetEvent).filter_by(source_dag_id="failover_asset_cost").all()
        extra = dict(event.extra)
    assert extra["job_id"] == result["job_id"] and extra["conn_id"] == BACKUP and extra["backend"] == "imaginepro"
    assert extra["cost"] == result["cost"] and isinstance(extra["cost"]["credits_left"], int)


def test_cost_values_from_vendors_are_bounded_numbers() -> None:
    from airflow_provider_midjourney.cost import cost_entry, fast_hours_of_info, merge_costs

    assert cost_entry("credits", spent="16", left=984.0, total=None) == {"credits_spent": 16, "credits_left": 984}
    assert cost_entry("quota", spent=float("nan"), left="lots", total=True) == {}
    assert merge_costs({"credits_left": 3, "evil": "x", "points_spent": "1e400"}, None, {"credits_left": 2}) == {
        "credits_left": 2
    }
    assert merge_costs(None, {}) is None
    assert fast_hours_of_info("**Fast Time Remaining**: 0.5/15.0 hours (3%)") == {
        "fast_hours_left": 0.5,
        "fast_hours_total": 15,
    }
    assert fast_hours_of_info("Fast Time Remaining: " + "9" * 10_000) is None
    with pytest.raises(ValueError, match="unit"):
        cost_entry("Credits!")


@pytest.mark.usefixtures("full_account")
def test_a_full_account_on_the_fallback_is_waited_for_there_and_the_chain_resumes_at_it(emulator) -> None:
    # ImaginePro refuses (402), useapi v3 is full (429): the task waits for room on v3 in the
    # triggerer, and once woken submits there, not again on ImaginePro (which would now accept).
    emulator.fail_next(1, status=402, path_prefix=IP_IMAGINE, method="POST")
    dr = run_dag(
        "failover_then_admission",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="wait for room", poll_interval=0.1,
                                  midjourney_conn_id="mj_backup", fallback_conn_ids=["midjourney_default"])
    """,
    )
    assert task_states(dr) == {"imagine": "success"}
    assert xcom(dr, "imagine")["conn_id"] == "midjourney_default"
    assert posts(emulator, IP_IMAGINE) == [402]
    assert posts(emulator, V3_IMAGINE) == [201, 429, 201]  # the blocker, the busy answer, the task's job
