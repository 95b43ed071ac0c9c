"""The emulator's job engine: neutral records and refusals, no vendor's wire (each dialect shapes them)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

import airflow_provider_midjourney.testing as testing_package
from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator, specs
from airflow_provider_midjourney.testing.imaginepro import job_for_message
from airflow_provider_midjourney.testing.jobs import ApiError, EngineError, JobSpec
from airflow_provider_midjourney.testing.models import EmulatorKnobs
from airflow_provider_midjourney.testing.state import EmulatorState

TESTING = Path(testing_package.__file__).parent
ENGINE_MODULES = ("state.py", "jobs.py", "images.py")
#: words of a vendor's wire: its paths, its id format, its field names, its account kind
WIRE = re.compile(r"/v[123]/|useapi|bot:midjourney|jobid|errorDetails|imageUx|videoUx|[Dd]iscord|[Cc]hannel|LEGACY")
FAST = JobTimings(start_after=0.01, progress_after=0.02, complete_after=0.05)


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_the_engine_names_no_vendor_path_field_or_id_format(module: str) -> None:
    hits = [
        f"{module}:{n}: {line.strip()}"
        for n, line in enumerate((TESTING / module).read_text().splitlines(), start=1)
        if WIRE.search(line)
    ]
    assert hits == []


def _engine(accounts: int = 1, max_jobs: int = 1) -> EmulatorState:
    return EmulatorState(EmulatorKnobs(FAST), accounts, max_jobs, max_jobs, max_jobs, seed=7)


def test_the_engine_alone_makes_neutral_ids_and_records() -> None:
    engine = _engine()
    view, new = engine.create_job(JobSpec("imagine", {}, prompt="a fox", job_type="image"))
    assert new and re.fullmatch(r"job-\d{12}", view.id) and view.status == "created"
    engine.force_complete(view.id)
    done = engine.view(view.id)
    assert (done.status, done.kind, done.account) == ("completed", "grid", "1000000000000000001")
    assert done.primary_url and len(done.image_urls) == 4 and not done.video_urls and "U1" in done.buttons


@pytest.mark.parametrize(
    ("arrange", "reason", "status"),
    [
        (lambda e: e.lock_account("1000000000000000001", "CAPTCHA"), "all_locked", 596),
        (lambda e: e.create_job(JobSpec("imagine", {}, prompt="first", job_type="image")), "busy", 429),
        (lambda e: e.delete_account("1000000000000000001"), "no_account", 400),
    ],
)
def test_refusals_carry_a_reason_and_no_vendor_words(arrange: object, reason: str, status: int) -> None:
    engine = _engine()
    arrange(engine)  # type: ignore[operator]
    with pytest.raises(EngineError) as refused:
        engine.create_job(JobSpec("imagine", {}, prompt="second", job_type="image"))
    assert (refused.value.reason, refused.value.status) == (reason, status)
    assert not WIRE.search(refused.value.message or "")


def test_a_job_made_through_one_dialect_is_one_record_every_view_agrees_on() -> None:
    with MidjourneyEmulator(token=None, timings=FAST) as emu, httpx.Client(base_url=emu.base_url) as http:
        answer = http.post("/api/v1/nova/imagine", json={"prompt": "a lighthouse"}).json()
        engine_id = job_for_message(emu, answer["messageId"])
        emu.complete_job(engine_id)
        [record] = emu.job_records()
        assert (record.id, record.status, record.prompt) == (engine_id, "completed", "a lighthouse")
        [v3] = emu.created_jobs()
        assert v3["jobid"] == record.id and [c["url"] for c in v3["response"]["imageUx"]] == list(record.image_urls)
        message = http.get(f"/api/v1/message/fetch/{answer['messageId']}").json()
        assert message["uri"] == record.primary_url == v3["response"]["attachments"][0]["url"]


@pytest.mark.parametrize("dialect", ["imaginepro", "ttapi", "legnext", "apiframe", "midjourney_proxy"])
def test_other_vendors_dialects_neither_speak_nor_read_useapi(dialect: str) -> None:
    # they build neutral requests (testing/specs.py) and read neutral records, not v3's parameters or JSON
    source = (TESTING / f"{dialect}.py").read_text()
    assert not re.search(r"testing\.useapi|job_spec|\.get_job\(|snapshot\(|\"jobId\": parent", source)


def test_a_neutral_request_is_refused_for_what_midjourney_refuses() -> None:
    engine = _engine()
    with pytest.raises(ApiError, match="Unsupported button"):
        specs.button("job-1", "U9")
    with pytest.raises(ApiError, match="mask"):
        specs.button("job-1", "Vary (Region)")
    with pytest.raises(ApiError, match="2 images"):
        specs.blend(["https://e.x/a.png"])
    video, _ = engine.create_job(specs.imagine("https://e.x/a.png waves --video"))
    assert (video.job_type, video.kind) == ("video", "video_grid")
