"""A busy account defers the task to the triggerer instead of sleeping in its worker slot.

Through dag.test() on the emulator: the account (one channel, a limit of one job) is kept full by a
job submitted from outside the DAG; the task must wait for room without sending a job the account
would refuse (limit known) or after exactly one busy answer (limit unknown), then run its job once.
The gate's first-come-first-served bookkeeping is exercised on its own below.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from airflow_provider_midjourney.admission import job_limit, retry_after_seconds
from airflow_provider_midjourney.exceptions import MidjourneyConfigurationError, MidjourneyError
from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook
from airflow_provider_midjourney.job_requests import ImagineRequest
from airflow_provider_midjourney.operators.admission import MAX_JOB_ID, admission_event, still_running
from airflow_provider_midjourney.testing import JobTimings
from airflow_provider_midjourney.triggers.admission import (
    IN_FLIGHT_TTL,
    MIN_DURATION_SAMPLES,
    MidjourneyAdmissionTrigger,
    _Gate,
    _Waiter,
)
from tests.conftest import FAST_RETRY, connection_json
from tests.dag_runs import run_dag

IMAGINE = "/v3/midjourney/jobs/imagine"
LIST = "/v3/midjourney/jobs"


@pytest.fixture
def full_account(emulator, monkeypatch, airflow_db):
    """A one-job account kept full by a job the DAG did not submit; returns its id.

    The job ends only once the account's running jobs were listed twice (the task's look and its
    trigger's) or two busy answers were given: so the task must wait, whatever the machine's speed.
    """
    emulator.set_channel_limits(emulator.channels[0], max_jobs=1)
    emulator.timings = JobTimings(start_after=0.02, progress_after=0.05, complete_after=120.0)
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_DEFAULT", connection_json(emulator.base_url))
    with UseapiV3Hook("midjourney_default", retry=FAST_RETRY) as hook:
        blocker = hook.submit_job(ImagineRequest.build(prompt="an earlier job")).job_id
    emulator.timings = JobTimings(start_after=0.02, progress_after=0.04, complete_after=0.15)

    def waited() -> bool:
        requests = emulator.requests
        return sum(r.path == LIST for r in requests) >= 2 or sum(r.status == 429 for r in requests) >= 2

    def end_once_waited() -> None:
        give_up = time.monotonic() + 60
        while not waited() and time.monotonic() < give_up:
            time.sleep(0.05)
        emulator.complete_job(blocker)

    threading.Thread(target=end_once_waited, daemon=True).start()
    return blocker


def imagine_posts(emulator) -> list[int]:
    return [r.status for r in emulator.requests_to("POST", IMAGINE)]


@pytest.mark.usefixtures("airflow_db")
def test_a_known_full_account_defers_before_submitting(emulator, full_account, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_DEFAULT", connection_json(emulator.base_url, max_jobs=1))
    dr = run_dag(
        "admission_known_limit",
        'MidjourneyImagineOperator(task_id="imagine", prompt="a cat", poll_interval=0.1)',
    )
    assert str(dr.state) == "success"
    # The task looked first (the list said full), waited in the trigger, then submitted once: no busy answer.
    assert imagine_posts(emulator) == [201, 201]
    assert emulator.jobs[full_account]["status"] == "completed"


@pytest.mark.usefixtures("airflow_db")
def test_a_busy_answer_defers_instead_of_sleeping_in_the_worker(emulator, full_account) -> None:
    started = time.monotonic()
    dr = run_dag(
        "admission_busy_answer",
        # The HTTP retry policy would sleep 600 s after a 429: the task must not use it.
        """
        from airflow_provider_midjourney.retry import HttpRetry
        MidjourneyImagineOperator(
            task_id="imagine", prompt="a cat", poll_interval=0.1, retry=HttpRetry(busy_wait=(600.0, 600.0))
        )
        """,
    )
    assert str(dr.state) == "success"
    assert imagine_posts(emulator) == [201, 429, 201]  # the blocker, one busy answer, the task's job
    # Not a speed target: one busy wait of the policy alone would take 600 s, whatever the load.
    assert time.monotonic() - started < 300


@pytest.mark.usefixtures("airflow_db")
def test_defer_when_busy_off_keeps_the_busy_waits_in_the_worker(emulator, full_account) -> None:
    dr = run_dag(
        "admission_off",
        """
        from airflow_provider_midjourney.retry import HttpRetry
        MidjourneyImagineOperator(
            task_id="imagine", prompt="a cat", poll_interval=0.1, defer_when_busy=False,
            retry=HttpRetry(busy_wait=(0.4, 0.5), max_attempts=10),
        )
        """,
    )
    assert str(dr.state) == "success"
    statuses = imagine_posts(emulator)
    assert statuses[0] == 201 and statuses[-1] == 201 and set(statuses[1:-1]) == {429} and len(statuses) >= 3


# -- the gate: first come, first served, one slot never given twice ------------------------------------------


def _gate_with_waiters(queued: list[float], limit: int) -> tuple[_Gate, list]:
    gate = _Gate(("test", "conn"))
    waiters = []
    for queued_at in queued:
        waiter = _Waiter(queued_at, limit)
        gate.waiters[id(waiter)] = waiter
        waiters.append(waiter)
    return gate, waiters


def test_gate_wakes_the_oldest_waiters_as_slots_free_and_never_gives_a_slot_twice() -> None:
    async def scenario() -> None:
        gate, (late, early, middle) = _gate_with_waiters([30.0, 10.0, 20.0], limit=3)
        assert gate.admit({"a", "b", "c"}, now=0.0) == []  # full
        assert gate.admit({"a", "b"}, now=1.0) == [early]  # one slot: the first to queue
        # The woken task has not submitted yet: its slot stays taken, nobody else is woken.
        assert gate.admit({"a", "b"}, now=2.0) == []
        assert gate.admit({"a", "b", "d"}, now=3.0) == []  # its job shows: still full
        assert gate.admit({"d"}, now=4.0) == [middle, late]  # two slots, in queue order
        assert early.future.result() == "admitted" and not early.early

    asyncio.run(scenario())


def test_gate_forgets_a_woken_task_whose_job_never_shows() -> None:
    async def scenario() -> None:
        gate, (first, second) = _gate_with_waiters([1.0, 2.0], limit=1)
        assert gate.admit(set(), now=0.0) == [first]
        assert gate.admit(set(), now=30.0) == []
        assert gate.admit(set(), now=61.0) == [second]  # the first one's slot was released after the TTL

    asyncio.run(scenario())


def test_a_woken_task_that_waits_again_gives_its_slot_back_at_once() -> None:
    """A woken task that comes back without a job (the account was full after all, or a busy answer) defers
    again with its queued_at. Its slot was counted as taken until a job showed; jobs free the oldest such
    mark first, so the count stayed one too high for good: at N=300, K=12 the account ran 4-5 jobs."""

    async def scenario() -> None:
        gate, (first, second) = _gate_with_waiters([1.0, 2.0], limit=1)
        assert gate.admit(set(), now=0.0) == [first]
        back = _Waiter(1.0, 1)  # the same task, waiting again
        gate.add(back)
        assert gate.admit(set(), now=1.0) == [back]  # its place in the queue, and its slot
        assert not second.future.done()
        other = _Waiter(7.0, 1)  # a task never woken: nothing to give back
        gate.add(other)
        assert len(gate.in_flight) == 1

    asyncio.run(scenario())


def test_a_woken_task_that_never_submits_frees_its_slot_after_the_ttl_even_while_jobs_flow() -> None:
    """A woken task that fails before submitting never comes back. Its mark must age out even while other
    woken tasks keep listing jobs: a job is matched to the wake it most likely came from (its age nearest the
    typical lead), not to the oldest wake, which would renew the dead mark with every job."""

    async def scenario() -> None:
        gate, waiters = _gate_with_waiters([float(i) for i in range(80)], limit=2)
        gate.leads.extend([2.0] * 5)
        jobs: dict[str, tuple[float, float]] = {}  # job id: (listed from, listed until)
        extra_marks = []
        for second in range(150):  # a list call each second
            now = float(second)
            listed = {job for job, (start, end) in jobs.items() if start <= now < end}
            woken = gate.admit(listed, now=now)
            for waiter in woken:
                if waiter is not waiters[0]:  # the first woken task fails before submitting
                    jobs[f"job{waiter.queued_at:.0f}"] = (now + 2.0, now + 12.0)
            pending = sum(1 for start, _ in jobs.values() if start > now)
            if now > IN_FLIGHT_TTL + 10:
                extra_marks.append(len(gate.in_flight) - pending)
        assert waiters[0].future.done() and len(jobs) > 10
        assert set(extra_marks) == {0}, extra_marks  # no slot held by the task that never came back

    asyncio.run(scenario())


def test_gate_wakes_ahead_of_a_predicted_end_once_it_knows_job_and_start_times() -> None:
    async def scenario() -> None:
        gate, _ = _gate_with_waiters([float(i) for i in range(10)], limit=1)
        now = 0.0
        # Jobs of 10 s, one after the other, each listed 2 s after its task was woken.
        for number in range(MIN_DURATION_SAMPLES + 1):
            gate.in_flight.append((now - 2.0, -1.0))
            gate.admit({f"job{number}"}, now=now)  # listed (lead 2 s); full, so nobody is woken
            now += 10.0
        gate.waiters.clear()
        gate.in_flight.clear()
        (late,) = _gate_with_waiters([100.0], limit=1)[1]
        gate.waiters[id(late)] = late
        # The running job was first seen at now - 10: it ends now; 2 s ahead of that the gate wakes early.
        gate.admit({f"job{MIN_DURATION_SAMPLES}"}, now=now - 2.5)
        assert not late.future.done()
        woken = gate.admit({f"job{MIN_DURATION_SAMPLES}"}, now=now - 1.9)
        assert woken == [late] and late.early

    asyncio.run(scenario())


def test_tasks_woken_ahead_each_wait_for_a_different_job_to_end() -> None:
    """Tasks woken ahead of predicted ends used to wait for "fewer than the limit running": the first slot to free
    let every one of them submit at once, and all but one met a busy answer (202 at N=300, K=12). Each is now
    given the one running job it replaces, in order of predicted end, and no job is given twice."""

    async def scenario() -> None:
        gate, _ = _gate_with_waiters([float(i) for i in range(10)], limit=3)
        gate.durations.extend([10.0] * MIN_DURATION_SAMPLES)
        gate.leads.extend([3.0] * 3)
        gate.first_seen.update({"a": 0.0, "b": 1.0, "c": 5.0})
        # At 8.5 s, a (ends ~10) and b (~11) end within the 3 s lead, c (~15) does not.
        woken = gate.admit({"a", "b", "c"}, now=8.5)
        assert [w.replaces for w in woken] == ["a", "b"] and all(w.early for w in woken)
        assert gate.admit({"a", "b", "c"}, now=9.0) == []  # a and b are taken already
        # a ends; its task's job "d" shows; c now ends within the lead: one more task, for c.
        gate.first_seen["c"] = 5.0
        later = gate.admit({"b", "c", "d"}, now=12.5)
        assert [w.replaces for w in later] == ["c"]

    asyncio.run(scenario())


# -- inputs -------------------------------------------------------------------------------------------------


def test_a_task_woken_early_waits_for_its_own_job_to_leave_the_list(emulator, midjourney_conn) -> None:
    emulator.timings = JobTimings(start_after=0.02, progress_after=0.05, complete_after=120.0)
    with UseapiV3Hook(midjourney_conn, retry=FAST_RETRY) as hook:
        job_id = hook.submit_job(ImagineRequest.build(prompt="still running")).job_id
        lists = len(emulator.requests_to("GET", LIST))
        assert still_running(hook, job_id, wait=2.0)  # listed throughout: the task defers again
        assert len(emulator.requests_to("GET", LIST)) - lists >= 2  # it looked more than once
        assert not still_running(hook, "j-not-listed", wait=30)  # another job ended: not this task's slot...
        emulator.complete_job(job_id)
        assert not still_running(hook, job_id, wait=30)  # ...its own job ended: submit


def test_a_task_woken_early_reads_no_connection_however_often_it_looks(emulator, midjourney_conn, monkeypatch) -> None:
    """Each look of the wait costs one list request: a set-up per look (a connection lookup through
    Airflow's API, a client, an event loop) delayed the submit behind every freed slot. The task's
    hook has read the connection already, so the wait reads it not even once."""
    from airflow_provider_midjourney.hooks import base

    lookups = []
    real_get_connection = base.BaseHook.get_connection

    def counted(conn_id: str) -> Any:
        lookups.append(conn_id)
        return real_get_connection(conn_id)

    emulator.timings = JobTimings(start_after=0.02, progress_after=0.05, complete_after=120.0)
    with base.hook_for_connection(midjourney_conn, retry=FAST_RETRY) as hook:  # as the operator builds it
        job_id = hook.submit_job(ImagineRequest.build(prompt="still running")).job_id
        lists = len(emulator.requests_to("GET", LIST))
        monkeypatch.setattr(base.BaseHook, "get_connection", staticmethod(counted))
        assert still_running(hook, job_id, wait=1.5)
    assert len(emulator.requests_to("GET", LIST)) - lists >= 3 and lookups == []


def test_a_task_woken_early_submits_when_the_list_fails_or_hangs(emulator, midjourney_conn, monkeypatch) -> None:
    """No verdict from the list (an error answer, or no answer within LIST_SECONDS): the wait ends
    at once and the submit's own answer decides; it never waits out EARLY_WAIT on a broken list."""
    from airflow_provider_midjourney.operators import admission

    emulator.timings = JobTimings(start_after=0.02, progress_after=0.05, complete_after=120.0)
    monkeypatch.setattr(admission, "LIST_SECONDS", 0.5)
    with UseapiV3Hook(midjourney_conn, retry=FAST_RETRY) as hook:
        job_id = hook.submit_job(ImagineRequest.build(prompt="still running")).job_id
        lists = len(emulator.requests_to("GET", LIST))
        emulator.fail_next(1, status=500, path_prefix=LIST, method="GET")
        assert not still_running(hook, job_id, wait=30)
        assert len(emulator.requests_to("GET", LIST)) - lists == 1  # no retry loop inside the wait
        emulator.slow_next(1, seconds=5.0, path_prefix=LIST, method="GET")
        started = time.monotonic()
        assert not still_running(hook, job_id, wait=30)
        assert time.monotonic() - started < 5.0  # gave up on the hung list, not after it answered


@pytest.mark.parametrize("replaces", [7, "", "j" * (MAX_JOB_ID + 1), ["j1"]])
def test_an_unusable_job_id_in_the_admission_event_is_dropped_not_trusted(replaces: Any) -> None:
    event = admission_event({"status": "admitted", "early": True, "replaces": replaces, "conn_id": "c"})
    assert "replaces" not in event and event["early"] is True and event["conn_id"] == "c"
    assert admission_event({"status": "admitted", "replaces": "j1"})["replaces"] == "j1"
    with pytest.raises(MidjourneyError, match="Unexpected admission event"):
        admission_event({"status": "maybe", "replaces": "j1"})


def test_the_limit_extra_is_checked_naming_the_field() -> None:
    assert job_limit({"max_jobs": "12"}, "c") == 12 and job_limit({"maxJobs": 3}, "c") == 3
    assert job_limit({}, "c") is None
    for bad in (0, -1, "many", 2.5, True, 100000):
        with pytest.raises(MidjourneyConfigurationError, match="extra 'max_jobs' must be a whole number"):
            job_limit({"max_jobs": bad}, "c")


def test_retry_after_is_read_in_both_forms_and_bounded() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 02 Dec 2026 00:00:10 GMT", now=1_796_169_600.0) == pytest.approx(10.0)
    assert retry_after_seconds("999999") == 3600.0
    assert retry_after_seconds("-5") == 0.0
    for bad in (None, "", "soon", "nan", "1" * 100):
        assert retry_after_seconds(bad) is None


def test_admission_trigger_round_trips_without_secrets(emulator, midjourney_conn) -> None:
    trigger = MidjourneyAdmissionTrigger("midjourney_default", queued_at=1.0, deadline=2.0, limit=3, attempt=2)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_midjourney.triggers.admission.MidjourneyAdmissionTrigger"
    assert MidjourneyAdmissionTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert "token" not in repr(kwargs).lower() and emulator.token not in repr(kwargs)


def test_admission_trigger_times_out_on_an_account_that_stays_full(emulator, midjourney_conn) -> None:
    emulator.set_channel_limits(emulator.channels[0], max_jobs=1)
    emulator.timings = JobTimings(start_after=0.02, progress_after=0.05, complete_after=30.0)
    with UseapiV3Hook(midjourney_conn, retry=FAST_RETRY) as hook:
        hook.submit_job(ImagineRequest.build(prompt="a long job"))
    now = time.time()
    trigger = MidjourneyAdmissionTrigger(midjourney_conn, queued_at=now, deadline=now + 0.6, limit=1, poll_interval=0.1)

    async def first_event() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(asyncio.run(first_event())))
    thread.start()
    thread.join(10)
    assert result["status"] == "timeout" and "stayed full" in result["message"]


def test_gate_does_not_wake_a_task_within_moments_of_its_deferral() -> None:
    from airflow_provider_midjourney.triggers.admission import MIN_WAIT

    async def scenario() -> None:
        gate = _Gate(("test", "conn"))
        fresh = _Waiter(1.0, 2, since=100.0)
        gate.waiters[id(fresh)] = fresh
        assert gate.admit(set(), now=100.5) == [] and gate.ripe_in == pytest.approx(MIN_WAIT - 0.5)
        assert gate.admit(set(), now=100.0 + MIN_WAIT) == [fresh]

    asyncio.run(scenario())
