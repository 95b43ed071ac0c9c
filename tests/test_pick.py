"""MidjourneyPickOperator: the example DAG through dag.test() on the emulator, with the human's
answer given through Airflow's REST API (in-process api-server app, real auth)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, timedelta
from typing import Any

import pytest
from airflow import __version__ as airflow_version
from packaging.version import Version

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError
from airflow_provider_midjourney.operators import MidjourneyPickOperator
from airflow_provider_midjourney.operators.pick import HITL_UNAVAILABLE
from tests.airflow_api import airflow_api, auth  # noqa: F401 - the fixture
from tests.conftest import example_dag
from tests.dag_runs import task_states, xcom
from tests.test_plugin import allow_relay

needs_hitl = pytest.mark.skipif(HITL_UNAVAILABLE is not None, reason="human-in-the-loop needs Airflow >= 3.1")
# Before 3.3, dag.test() runs the HITL trigger in-process with no channel for an answer (3.1 waits
# until the timeout; 3.2 fails with "'NoneType' object has no attribute 'response_received'"), so the
# pick's DAG runs only on 3.3+ here; on 3.1/3.2 the e2e stack answers it (make e2e-older).
needs_dag_test_hitl = pytest.mark.skipif(
    Version(airflow_version).release < (3, 3),
    reason=f"dag.test() can answer a human-in-the-loop task from Airflow 3.3 (this is {airflow_version})",
)
JOB = {
    "job_id": "j1",
    "status": "completed",
    "verb": "imagine",
    "prompt": "a fox (in snow) --ar 3:2",
    "grid_url": "https://cdn.example/g.png",
    "image_urls": [f"https://cdn.example/{n}.png" for n in range(4)],
    "buttons": ["U1", "U2", "U3", "U4", "V1", "🔄"],
}


@pytest.mark.skipif(HITL_UNAVAILABLE is None, reason="Airflow >= 3.1 has human-in-the-loop")
def test_construction_fails_clearly_on_airflow_3_0() -> None:
    from airflow import __version__

    with pytest.raises(RuntimeError, match=r"needs Airflow 3\.1 or newer") as raised:
        MidjourneyPickOperator(task_id="pick", job=JOB)
    assert f"this is Airflow {__version__}" in str(raised.value)


class Answerer:
    """Answers the first open question of ``dag_id`` through the REST API, from a thread."""

    def __init__(self, client: Any, dag_id: str, chosen: list[str], timeout: float = 120.0) -> None:
        self.client, self.dag_id, self.chosen, self.timeout = client, dag_id, chosen, timeout
        self.question: dict[str, Any] | None = None
        self.answer: Any = None
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Answerer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(timeout=self.timeout)

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                found = self.client.get(f"/api/v2/dags/{self.dag_id}/dagRuns/~/hitlDetails", headers=auth("admin"))
            except Exception as exc:  # e.g. SQLite busy while dag.test() writes: ask again
                self.errors.append(repr(exc))
                time.sleep(0.5)
                continue
            open_ones = [d for d in found.json().get("hitl_details", []) if not d["response_received"]]
            if open_ones:
                self.question = open_ones[0]
                ti = self.question["task_instance"]
                self.answer = self.client.patch(
                    f"/api/v2/dags/{self.dag_id}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}"
                    f"/{ti['map_index']}/hitlDetails",
                    json={"chosen_options": self.chosen, "params_input": {}},
                    headers=auth("admin"),
                )
                return
            time.sleep(0.2)


@pytest.fixture
def client(
    airflow_api: Any,  # noqa: F811
    emulator: Any,
    midjourney_conn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    allow_relay(monkeypatch, emulator.port)  # the gallery relays loopback only from allowed hosts
    yield airflow_api


def bounded(dag: Any) -> Any:
    """The pick waits a day for a person; here, if the answer never comes, it times out instead."""
    dag.get_task("pick").response_timeout = timedelta(seconds=150)
    return dag


@needs_dag_test_hitl
def test_example_dag_upscales_what_the_human_chose(client: Any, emulator: Any) -> None:
    dag = bounded(example_dag("midjourney_pick"))
    with Answerer(client, "midjourney_pick", ["U3", "U1"]) as answerer:
        dag_run = dag.test()
    assert answerer.answer is not None and answerer.answer.status_code == 200, (answerer.answer, answerer.errors)
    question = answerer.question or {}
    imagine = xcom(dag_run, "imagine")
    # The question shows the prompt, the job and the four pictures, served by the gallery.
    assert question["options"] == ["U1", "U2", "U3", "U4"] and question["multiple"] is True
    shown_id = re.sub(r"([-:])", r"\\\1", imagine["job_id"])  # Markdown-escaped
    assert question["defaults"] == ["U1"] and shown_id in question["body"]
    assert question["body"].count("![U") == 4 and "/midjourney/dags/midjourney_pick/runs/" in question["body"]
    # A plain list in U order, mapped over with no glue task.
    assert xcom(dag_run, "pick") == ["U1", "U3"]
    assert xcom(dag_run, "pick", key="midjourney_job")["job_id"] == imagine["job_id"]
    states = task_states(dag_run)
    assert states == {
        "imagine": "success",
        "pick": "success",
        "upscale[0]": "success",
        "upscale[1]": "success",
        "download[0]": "success",
        "download[1]": "success",
    }
    pressed = [job["request"]["button"] for job in emulator.created_jobs("button")]
    assert sorted(pressed) == ["U1", "U3"]
    # the upscales and downloads followed the imagine job's connection (its result's conn_id)
    assert {xcom(dag_run, "upscale", map_index=n)["conn_id"] for n in range(2)} == {imagine["conn_id"]}
    files = [xcom(dag_run, "download", map_index=n)[0]["uri"] for n in range(2)]
    assert all(uri.endswith(".png") for uri in files)


@needs_dag_test_hitl
def test_the_gallery_shows_the_pick_and_its_choice(client: Any, emulator: Any) -> None:
    dag = bounded(example_dag("midjourney_pick"))
    with Answerer(client, "midjourney_pick", ["U2"]):
        dag_run = dag.test()
    page = client.get(f"/midjourney/dags/midjourney_pick/runs/{dag_run.run_id}/tasks/pick", headers=auth("viewer")).text
    assert "chosen" in page and 'data-label="U2"' in page and xcom(dag_run, "imagine")["prompt"] in page
    # The pictures the question embeds are served from the pick's own result.
    served = client.get(
        f"/midjourney/dags/midjourney_pick/runs/{dag_run.run_id}/tasks/pick/pictures/1", headers=auth("viewer")
    )
    assert served.status_code == 200 and served.content.startswith(b"\x89PNG")


@needs_hitl
def test_arguments_are_checked_when_the_dag_is_parsed() -> None:
    for kwargs, fragment in [
        ({"options": ["U5"]}, "options: ['U5'] are not upscale buttons"),
        ({"options": "U1"}, "options: give a non-empty list"),
        ({"options": ["U1", "U1"]}, "each button may appear once"),
        ({"defaults": ["U2"], "options": ["U1"]}, "defaults: ['U2'] are not among options"),
        ({"defaults": ["U1", "U2"], "multiple": False}, "only one button when multiple=False"),
        ({"response_timeout": -1}, "response_timeout: must be positive"),
    ]:
        with pytest.raises(MidjourneyInvalidRequestError, match=fragment.replace("[", r"\[").replace("(", r"\(")):
            MidjourneyPickOperator(task_id="pick", job=JOB, **kwargs)
    op = MidjourneyPickOperator(task_id="pick", job=JOB, response_timeout=90, defaults="U2")
    assert op.response_timeout == timedelta(seconds=90) and op.defaults == ["U2"] and op.multiple is True


@needs_hitl
def test_the_job_is_checked_before_asking() -> None:
    class Ti:
        dag_id, run_id, task_id, map_index = "d", "r", "pick", -1

        def xcom_push(self, **_: Any) -> None:
            raise AssertionError("nothing is stored for a bad job")

    for job, fragment in [
        ("not a dict", "job: expected an imagine task's result"),
        ({**JOB, "status": "failed"}, "is 'failed', not completed"),
        ({**JOB, "buttons": ["U1", "V1"]}, "has no U2, U3, U4 button"),
    ]:
        with pytest.raises(MidjourneyInvalidRequestError, match=fragment):
            MidjourneyPickOperator(task_id="pick", job=job).execute({"ti": Ti()})  # type: ignore[arg-type]


@needs_hitl
def test_question_body_escapes_the_prompt_and_uses_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example/prefix/")
    body = MidjourneyPickOperator(task_id="pick", job=JOB).question_body(JOB, "d", "r 1", "pick", -1)
    assert r"a fox \(in snow\) \-\-ar 3\:2" in body
    assert (
        "![U4](https://airflow.example/prefix/midjourney/dags/d/runs/r%201/tasks/pick/pictures/4?map_index=-1)" in body
    )
    assert "(https://airflow.example/prefix/dags/d/runs/r%201/tasks/pick/plugin/midjourney)" in body


@needs_hitl
def test_only_grid_backends_show_the_grid() -> None:
    job = {**JOB, "image_urls": []}
    body = MidjourneyPickOperator(task_id="pick", job=job).question_body(job, "d", "r", "pick", -1)
    assert body.count("![") == 1 and "![grid]" in body


HOSTILE = "x`](https://evil.example/a) ![pwn](https://evil.example/p.png) <img src=x onerror=alert(1)>\n# big"


@needs_hitl
def test_vendor_values_in_the_question_are_escaped() -> None:
    """A job id, prompt or picture URL from the vendor never becomes a link, an image or HTML."""
    job = {**JOB, "job_id": HOSTILE, "prompt": HOSTILE, "grid_url": "javascript:alert(1)"}
    body = MidjourneyPickOperator(task_id="pick", job=job).question_body(job, "d", "r", "pick", -1)
    vendor_lines = [line for line in body.split("\n\n") if line.startswith(("**Prompt:**", "**Job:**"))]
    assert len(vendor_lines) == 2 and "\n" not in "".join(vendor_lines)  # no heading from the newline
    for line in vendor_lines:  # every Markdown character in vendor text is escaped
        assert not re.search(r"(?<!\\)[<>\[\]`()!:]", line.split(":**", 1)[1]), line
    assert "javascript:" not in body and "](https://evil" not in body
    assert body.count("![") == 4  # only the gallery's own four pictures
    assert r"\`\]\(https\:\/\/evil\.example\/a\)" in body  # shown literally


@needs_hitl
def test_the_answer_is_tied_to_the_job_it_showed() -> None:
    from datetime import datetime

    pushed: dict[str, Any] = {}

    class Ti:
        def xcom_push(self, key: str, value: Any) -> None:
            pushed[key] = value

    pick = MidjourneyPickOperator(task_id="pick", job=JOB, options=["U1", "U3"])
    answer = {"responded_at": datetime.now(UTC), "responded_by_user": {"id": "1", "name": "a"}}
    event = {**answer, "chosen_options": ["U3", "U1"], "params_input": {}}
    assert pick.execute_complete({"ti": Ti()}, event) == ["U1", "U3"]  # type: ignore[arg-type]
    assert pushed["midjourney_pick"] == {"job_id": JOB["job_id"], "buttons": ["U1", "U3"]}
    for forged in (["U2"], ["https://evil.example/x.png"], ["U1", "U1x"]):
        with pytest.raises(Exception, match=r"U2|evil|U1x"):
            pick.execute_complete({"ti": Ti()}, {**answer, "chosen_options": forged, "params_input": {}})  # type: ignore[arg-type]
