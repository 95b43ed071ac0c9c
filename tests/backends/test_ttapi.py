"""The TTAPI backend: its contract on the vendor's own samples, the hook against the emulator's TTAPI
routes, and the operators through dag.test()."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_midjourney.exceptions import (
    MidjourneyAuthError,
    MidjourneyBusyError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyModeratedError,
    MidjourneyUnsupportedError,
)
from airflow_provider_midjourney.hooks.base import Capability
from airflow_provider_midjourney.hooks.ttapi import TtapiBlockedError, TtapiHook, TtapiQuotaError
from airflow_provider_midjourney.hooks.ttapi_models import Envelope, normalised, parse_list, video_links
from airflow_provider_midjourney.job_requests import (
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    ImagineRequest,
    SeedRequest,
    SettingsRequest,
)
from airflow_provider_midjourney.operators import MidjourneyDownloadOperator
from airflow_provider_midjourney.retry import HttpRetry
from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator
from airflow_provider_midjourney.testing.images import png_bytes
from airflow_provider_midjourney.testing.ttapi import engine_job
from airflow_provider_midjourney.text_patterns import moderation_patterns
from airflow_provider_midjourney.video_requests import VideoExtendRequest, VideoRequest
from airflow_provider_midjourney.vocabulary import JobStatus
from tests.conftest import FAST_RETRY, TOKEN
from tests.test_operators import run_dag, task_states, xcom

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ttapi"
CONN = "ttapi_default"
PATTERNS = moderation_patterns(None, CONN)
JOB = "afa774a3-1aee-5aba-4510-14818d6875e4"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def conn_json(base_url: str, token: str = TOKEN, **extra: object) -> str:
    return json.dumps({"conn_type": "ttapi", "host": base_url, "password": token, "extra": extra})


@pytest.fixture
def tt_conn(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_TTAPI_DEFAULT", conn_json(emulator.base_url, job_timeout="300"))
    return CONN


@pytest.fixture
def hook(tt_conn: str) -> Iterator[TtapiHook]:
    with TtapiHook(CONN, retry=FAST_RETRY) as hook:
        yield hook


def finished(hook: TtapiHook, emulator: MidjourneyEmulator, job_id: str) -> Any:
    """The job, completed now (the emulator's clock is not waited for)."""
    emulator.complete_job(engine_job(emulator, job_id))
    return hook.fetch_job(job_id)


def wait_for_end(hook: TtapiHook, job_id: str) -> Any:
    for _ in range(100):
        job = hook.fetch_job(job_id)
        if job.is_terminal:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not end")


def posts(emulator: MidjourneyEmulator) -> list[Any]:
    return emulator.requests_to("POST", "/midjourney/")


# -- the contract, on the vendor's own samples --------------------------------------------------------


def test_documented_imagine_is_a_grid_whose_images_are_the_vendors_crops() -> None:
    sample = fixture("fetch-imagine-success.json")
    job = normalised(Envelope.model_validate(sample), "ttapi", PATTERNS)
    assert job.status == JobStatus.COMPLETED and job.verb == "imagine" and job.progress_percent == 100
    assert job.image_urls == sample["data"]["images"] and job.grid_url == sample["data"]["cdnImage"]
    assert [u[-6:-4] for u in job.image_urls] == ["tl", "tr", "bl", "br"]
    assert job.image_kind == "crops" and job.to_xcom()["image_kind"] == "crops"
    assert job.buttons == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"] and job.seed is None


def test_documented_edit_result_prefers_ttapis_copies() -> None:
    sample = fixture("fetch-edit-success.json")
    job = normalised(Envelope.model_validate(sample), "ttapi", PATTERNS)
    assert job.status == JobStatus.COMPLETED and job.image_urls == sample["data"]["cdnImages"]
    assert job.job_id == sample["data"]["jobId"]


def test_both_submit_answer_spellings_give_the_new_id() -> None:
    assert Envelope.model_validate(fixture("submit-response.json")).new_job_id == "x" * 32
    legacy = Envelope.model_validate(fixture("submit-response-legacy.json"))
    assert legacy.new_job_id == JOB and not legacy.refused
    assert Envelope.model_validate({"status": "FAILED", "message": "x", "data": None}).refused


def test_documented_list_item_is_snake_case_with_an_integer_status() -> None:
    [item] = parse_list(fixture("fetch-list-response.json")["data"])
    assert item.job_id == "ec5429d6-3d66-74cd-4fc6-5e98e6c56569" and item.status == 2 and item.state == "SUCCESS"
    assert parse_list({"list": [{"job_id": "abcdef", "status": "1"}]})[0].state == "ON_QUEUE"
    assert parse_list({"job_id": "not a list"}) == [] and parse_list(None) == []


def test_the_action_page_sample_is_what_the_hook_sends(hook, emulator) -> None:
    sample = fixture("action-request.json")
    grid = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="fox")).job_id)
    hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="U1", reply_url="https://hooks.example/t"))
    sent = posts(emulator)[-1]
    assert sent.path == "/midjourney/v1/action" and set(sent.json) == set(sample)
    assert sent.json == {
        "jobId": grid.job_id,
        "action": "upsample1",
        "timeout": 300,
        "hookUrl": "https://hooks.example/t",
    }


@pytest.mark.parametrize(
    ("status", "message", "progress", "expected", "percent"),
    [
        ("PENDING_QUEUE", "", None, JobStatus.CREATED, None),
        ("ON_QUEUE", "", "0", JobStatus.STARTED, 0),
        ("ON_QUEUE", "", "45%", JobStatus.PROGRESS, 45),
        ("FAILED", "prompt violation", None, JobStatus.MODERATED, None),
        ("FAILED", "insufficient quota", None, JobStatus.FAILED, None),
        ("FAILED", "", None, JobStatus.FAILED, None),
        ("WAITING", "", "n/a", JobStatus("waiting"), None),
    ],
)
def test_lenient_statuses(status: str, message: str, progress: Any, expected: JobStatus, percent: Any) -> None:
    answer = {"status": status, "message": message, "data": {"jobId": JOB, "progress": progress}}
    job = normalised(Envelope.model_validate(answer), "ttapi", PATTERNS)
    assert job.status == expected and job.progress_percent == percent
    assert job.is_terminal == (expected in (JobStatus.FAILED, JobStatus.MODERATED))
    assert (job.error is not None) == job.is_terminal


@pytest.mark.parametrize(
    "data",
    [
        {"videos": ["https://c/0.mp4", "https://c/1.mp4"]},
        {"video_urls": ["https://c/0.mp4", "https://c/1.mp4"]},
        {"videoUrls": [{"url": "https://c/0.mp4"}, {"url": "https://c/1.mp4"}]},
        {"urls": ["https://c/0.mp4", "https://c/1.mp4", "javascript:alert(1)"]},
        {"videoUrl": "https://c/0.mp4", "urls": ["https://c/1.mp4"]},
    ],
)
def test_video_links_are_read_from_every_plausible_field(data: dict[str, Any]) -> None:
    links = video_links(data)
    assert links[0] == "https://c/0.mp4" and all(link.startswith("https://") for link in links)
    envelope = Envelope.model_validate({"status": "SUCCESS", "data": {"action": "video", **data}})
    job = normalised(envelope, "t", [], "job-1")  # every job has an id (an empty one is refused, #18)
    assert job.video_urls == links and job.verb == "video" and job.image_urls == []


# -- refused before any request ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (lambda: SettingsRequest.build(command="relax"), r"TTAPI.*'mode'"),
        (lambda: ButtonRequest.build(job_id=JOB, button="Custom Zoom", prompt="x --zoom 2"), "takes no prompt"),
        (lambda: ButtonRequest.build(job_id=JOB, button="V1", prompt="remix"), "takes no prompt"),
        (lambda: ButtonRequest.build(job_id=JOB, button="Make Variations"), "not a button of the TTAPI"),
        (lambda: ButtonRequest.build(job_id=JOB, button="Animate (High motion)"), "MidjourneyVideoOperator"),
        (lambda: ButtonRequest.build(job_id="j1024181105489769750i-u1-c1-bot:mj", button="U1"), "TTAPI jobId"),
        (lambda: ImagineRequest.build(prompt="p", channel="123"), "channel"),
        (lambda: ImagineRequest.build(prompt="p", reply_level="minimal"), "reply_level"),
        (lambda: VideoRequest.build(image="https://e.x/a.png"), "prompt: .*requires a prompt"),
        (lambda: VideoRequest.build(image="https://e.x/a.png", prompt="p", loop=True), "loop"),
    ],
)
def test_what_ttapi_cannot_take_fails_before_http(hook, emulator, request_, fragment) -> None:
    with pytest.raises(MidjourneyInvalidRequestError, match=fragment):
        hook.submit_job(request_())
    assert emulator.requests == []


def test_capabilities_and_what_is_missing(hook, emulator) -> None:
    assert {Capability.SEED, Capability.VIDEO, Capability.VIDEO_EXTEND, Capability.LIST_RUNNING} <= hook.capabilities
    with pytest.raises(MidjourneyUnsupportedError, match=r"'cancel'.*TTAPI.*no cancel endpoint"):
        hook.require(Capability.CANCEL, "Cancelling jobs")
    assert emulator.requests == []


def test_video_needs_a_fast_connection(emulator, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TTAPI_DEFAULT", conn_json(emulator.base_url, mode="relax"))
    with pytest.raises(MidjourneyInvalidRequestError, match=r"fast mode only.*'relax'"):
        TtapiHook(CONN).submit_job(VideoRequest.build(image="https://e.x/a.png", prompt="wave"))
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [({"mode": "ludicrous"}, "'mode' must be one of fast, relax, turbo"), ({"job_timeout": 60}, "300 to 1200")],
)
def test_bad_connection_extras_fail_before_http(emulator, monkeypatch, extra, fragment) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TTAPI_DEFAULT", conn_json(emulator.base_url, **extra))
    hook = TtapiHook(CONN)
    with pytest.raises(MidjourneyError, match=fragment):
        hook.submit_job(ImagineRequest.build(prompt="p"))
    ok, message = hook.test_connection()
    assert not ok and "extra" in message and emulator.requests == []


def test_a_button_the_parent_does_not_list_is_refused_naming_the_allowed_ones(hook, emulator) -> None:
    grid = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="fox")).job_id)
    before = len(posts(emulator))
    with pytest.raises(MidjourneyInvalidRequestError, match=r"does not offer 'Zoom Out 2x'.*U1 \(upsample1\)"):
        hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="Zoom Out 2x"))
    assert len(posts(emulator)) == before  # only the parent was read
    up = finished(hook, emulator, hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="U3")).job_id)
    zoom = hook.submit_job(ButtonRequest.build(job_id=up.job_id, button="Zoom Out 2x"))
    assert posts(emulator)[-1].json["action"] == "zoom_out_2" and finished(hook, emulator, zoom.job_id).grid_url


# -- the hook against the emulator ----------------------------------------------------------------------


def test_imagine_sends_key_mode_timeout_and_hook_then_polls_to_crops(hook, emulator) -> None:
    job = hook.submit_job(ImagineRequest.build(prompt="a lighthouse", reply_url="https://hooks.example/tt"))
    assert job.status == JobStatus.CREATED and job.backend == "ttapi"
    [post] = posts(emulator)
    assert post.path == "/midjourney/v1/imagine" and post.authorized
    assert post.json == {
        "prompt": "a lighthouse",
        "mode": "fast",
        "timeout": 300,
        "hookUrl": "https://hooks.example/tt",
    }
    running = hook.fetch_job(job.job_id)
    assert not running.is_terminal and running.image_urls == []
    done = finished(hook, emulator, job.job_id)
    assert done.status == JobStatus.COMPLETED and len(done.image_urls) == 4 and done.image_kind == "crops"
    assert done.grid_url.endswith("/grid_0.png") and "U1" in done.buttons
    assert [r.query for r in emulator.requests_to("GET", "/midjourney/v1/fetch")][-1] == {"jobId": job.job_id}
    assert TOKEN not in repr(done)


def test_buttons_inpaint_blend_describe_and_seed(hook, emulator, tmp_path) -> None:
    grid = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="fox")).job_id)
    for button, action in (("V2", "variation2"), ("🔄", "reroll")):
        child = hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button=button))
        assert (
            posts(emulator)[-1].json["action"] == action and len(finished(hook, emulator, child.job_id).image_urls) == 4
        )
    up = finished(hook, emulator, hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="U2")).job_id)
    assert up.image_kind == "upscales" and len(up.image_urls) == 1 and up.verb == "button"
    mask = "data:image/png;base64," + base64.b64encode(png_bytes("mask")).decode()
    region = hook.submit_job(ButtonRequest.build(job_id=up.job_id, button="Vary (Region)", mask=mask, prompt="a hat"))
    assert posts(emulator)[-1].path == "/midjourney/v1/inpaint"
    assert posts(emulator)[-1].json == {
        "jobId": up.job_id,
        "mask": mask.split(",")[1],
        "prompt": "a hat",
        "timeout": 300,
    }
    assert finished(hook, emulator, region.job_id).image_kind == "crops"
    (tmp_path / "b.png").write_bytes(png_bytes("local"))
    blend = hook.submit_job(BlendRequest.from_images([up.image_urls[0], str(tmp_path / "b.png")]))
    sent = posts(emulator)[-1].json
    assert [i[:22] for i in sent["imgBase64Array"]] == ["data:image/png;base64,"] * 2 and sent["dimensions"] == "SQUARE"
    assert finished(hook, emulator, blend.job_id).grid_url
    described = hook.submit_job(DescribeRequest.from_image(str(tmp_path / "b.png")))
    assert posts(emulator)[-1].json["base64"].startswith("data:image/png;base64,")
    assert len(finished(hook, emulator, described.job_id).to_xcom()["prompts"]) == 4
    hook.submit_job(DescribeRequest.from_image("https://e.x/cat.png"))
    assert posts(emulator)[-1].json == {"url": "https://e.x/cat.png", "timeout": 300}
    seed = finished(hook, emulator, hook.submit_job(SeedRequest.build(job_id=grid.job_id)).job_id)
    assert seed.verb == "seed" and isinstance(seed.to_xcom()["seed"], int)


def test_video_and_extend_translate_indexes_and_store_mp4_files(hook, emulator, tmp_path) -> None:
    grid = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="sea")).job_id)
    request = VideoRequest.build(
        job_id=grid.job_id, index=3, prompt="waves", motion="high", resolution="hd", batch_size=2,
        end_image="https://e.x/end.png",
    )  # fmt: skip
    video = hook.submit_job(request)
    assert posts(emulator)[-1].path == "/midjourney/video/submit" and posts(emulator)[-1].json == {
        "prompt": "waves", "imageUrl": grid.image_urls[2], "mode": "fast", "endingUrl": "https://e.x/end.png",
        "manual": "high", "resolution": "hd", "bs": 2,
    }  # fmt: skip
    done = finished(hook, emulator, video.job_id)
    assert done.verb == "video" and len(done.video_urls) == 2 and done.image_urls == []
    extend = hook.submit_job(VideoExtendRequest.build(job_id=video.job_id, index=2, prompt="further", motion="low"))
    assert posts(emulator)[-1].json == {
        "jobId": video.job_id, "index": 1, "manual": "low", "animateMode": "manual", "prompt": "further",
    }  # fmt: skip
    assert finished(hook, emulator, extend.job_id).verb == "video_extend"
    op = MidjourneyDownloadOperator(
        task_id="d", job_id=video.job_id, kind="videos", destination=str(tmp_path), midjourney_conn_id=CONN
    )
    stored = op.execute({})  # type: ignore[arg-type]
    assert [Path(f["uri"]).suffix for f in stored] == [".mp4", ".mp4"]
    assert all(f["content_type"] == "video/mp4" and f["size"] > 0 for f in stored)


def test_moderation_at_submit_and_while_running_is_terminal(hook, emulator, monkeypatch) -> None:
    emulator.fail_next(1, status=400, path_prefix="/midjourney/v1/imagine", error="prompt violation: banned word")
    with pytest.raises(MidjourneyModeratedError, match=r"prompt violation.*not resubmitted"):
        hook.submit_job(ImagineRequest.build(prompt="p"))
    assert len(posts(emulator)) == 1
    job = hook.submit_job(ImagineRequest.build(prompt="something forbidden"))
    moderated = wait_for_end(hook, job.job_id)
    assert moderated.status == JobStatus.MODERATED and moderated.error == "prompt violation"
    monkeypatch.setenv("AIRFLOW_CONN_TTAPI_DEFAULT", conn_json(emulator.base_url, moderation_patterns="^nope$"))
    assert TtapiHook(CONN).fetch_job(job.job_id).status == JobStatus.FAILED  # the patterns are the connection's


def test_busy_answers_are_retried_and_create_one_job(hook, emulator) -> None:
    emulator.never_finish = True
    emulator.fail_next(1, status=499, path_prefix="/midjourney/v1/imagine", error="queue exhausted")
    emulator.fail_next(1, status=429, path_prefix="/midjourney/v1/imagine", error="Too Many Requests")
    job = hook.submit_job(ImagineRequest.build(prompt="busy"))
    assert [r.status for r in posts(emulator)] == [499, 429, 200] and job.job_id
    emulator.set_channel_limits(emulator.channels[0], max_jobs=1)
    impatient = TtapiHook(CONN, retry=HttpRetry(max_attempts=2, busy_wait=(0.0, 0.01)))
    with impatient, pytest.raises(MidjourneyBusyError, match=r"499.*queue exhausted"):
        impatient.submit_job(ImagineRequest.build(prompt="one too many"))


def test_quota_blocked_and_auth_are_clear_and_not_retried(hook, emulator) -> None:
    emulator.subscription_expired = True
    with pytest.raises(TtapiQuotaError, match=r"402.*insufficient quota.*top it up"):
        hook.submit_job(ImagineRequest.build(prompt="p"))
    emulator.subscription_expired = False
    emulator.fail_next(1, status=400, path_prefix="/midjourney/", error="insufficient quota")
    with pytest.raises(TtapiQuotaError):
        hook.submit_job(ImagineRequest.build(prompt="p"))
    emulator.fail_next(1, status=403, path_prefix="/midjourney/", error="account blocked")
    with pytest.raises(TtapiBlockedError, match="contact TTAPI"):
        hook.submit_job(ImagineRequest.build(prompt="p"))
    assert len(posts(emulator)) == 3
    emulator.token = "another-token"
    try:
        with pytest.raises(MidjourneyAuthError) as raised:
            hook.fetch_job(JOB)
        assert TOKEN not in str(raised.value)
    finally:
        emulator.token = TOKEN


def test_the_list_call_names_queued_and_running_jobs_only(hook, emulator) -> None:
    done = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="done")).job_id)
    emulator.never_finish = True
    running = {hook.submit_job(ImagineRequest.build(prompt=f"run {n}")).job_id for n in range(2)}

    async def listed() -> set[str] | None:
        async with TtapiHook(CONN) as ahook:
            return await ahook.alist_running_job_ids()

    assert asyncio.run(listed()) == running and done.job_id not in running
    queries = [r.query for r in emulator.requests_to("GET", "/midjourney/v1/fetch-list")]
    assert [q["status"] for q in queries] == ["PENDING_QUEUE", "ON_QUEUE"] and all(q["limit"] == "100" for q in queries)
    emulator.fail_next(1, status=404, path_prefix="/midjourney/v1/fetch-list", error="Not Found")
    assert asyncio.run(listed()) is None


async def test_waiting_triggers_sleep_on_the_list_call(tt_conn, emulator, monkeypatch) -> None:
    from airflow_provider_midjourney.triggers import watch
    from airflow_provider_midjourney.triggers.midjourney import MidjourneyJobTrigger

    monkeypatch.setattr(watch, "PROGRESS_EVERY_POLLS", 10_000)  # exact counts: no progress refresh
    emulator.never_finish = True
    with TtapiHook(CONN) as sync_hook:
        ids = [sync_hook.submit_job(ImagineRequest.build(prompt=f"watched {n}")).job_id for n in range(3)]

    def fetches() -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in emulator.requests_to("GET", "/midjourney/v1/fetch"):
            if "jobId" in r.query:
                counts[r.query["jobId"]] = counts.get(r.query["jobId"], 0) + 1
        return counts

    async def collect(job_id: str) -> list[dict[str, Any]]:
        trigger = MidjourneyJobTrigger(job_id, midjourney_conn_id=CONN, poll_interval=0.03)
        return [event.payload async for event in trigger.run()]

    waiting = asyncio.gather(*(collect(j) for j in ids))
    for _ in range(1000):
        if len(fetches()) == 3 and len(emulator.requests_to("GET", "/midjourney/v1/fetch-list")) >= 6:
            break
        await asyncio.sleep(0.01)
    assert fetches() == {j: 1 for j in ids}  # asleep on the list: nothing sent per job
    for job_id in ids:
        emulator.complete_job(engine_job(emulator, job_id))
    events = await asyncio.wait_for(waiting, timeout=30)
    assert [[e["status"] for e in evs] for evs in events] == [["completed"]] * 3
    assert fetches() == {j: 2 for j in ids}


def test_a_lost_creation_answer_is_not_looked_up_by_guess(hook) -> None:
    assert hook.find_job_by_reply_ref("airflow:dag/run/task/-1~abc") is None


def test_test_button_is_honest(hook, emulator, monkeypatch) -> None:
    ok, message = hook.test_connection()
    assert ok and "TTAPI" in message and "balance 1000" in message
    assert emulator.requests_to("GET", "/midjourney/v1/info")[-1].authorized
    monkeypatch.setenv("AIRFLOW_CONN_TTAPI_DEFAULT", conn_json(emulator.base_url, token="wrong-token-123"))
    ok, message = TtapiHook(CONN).test_connection()
    assert not ok and "refused the API token" in message and "wrong-token-123" not in message
    monkeypatch.setenv("AIRFLOW_CONN_TTAPI_DEFAULT", conn_json(emulator.base_url + "/somewhere/else"))
    ok, message = TtapiHook(CONN).test_connection()
    assert not ok and "does not look like" in message


# -- the emulator's routes keep the vendor's shapes --------------------------------------------------------


def test_emulator_answers_in_ttapis_shapes(emulator) -> None:
    with httpx.Client(base_url=emulator.base_url, headers={"TT-API-KEY": TOKEN}) as client:
        assert client.get("/midjourney/v1/info", headers={"TT-API-KEY": "nope"}).status_code == 401
        bad = client.post("/midjourney/v1/imagine", json={"prompt": "p", "mode": "warp"})
        assert bad.status_code == 400 and bad.json() == {
            "status": "FAILED", "message": "mode must be one of fast, relax, turbo", "data": None,
        }  # fmt: skip
        assert client.post("/midjourney/v1/imagine", json={"prompt": "p", "timeout": 30}).status_code == 400
        assert client.get("/midjourney/v1/fetch", params={"jobId": JOB}).status_code == 404
        created = client.post("/midjourney/v1/imagine", json={"prompt": "shapes"}).json()
        assert created["status"] == "SUCCESS" and set(created["data"]) == {"job_id"}
        job_id = created["data"]["job_id"]
        queued = client.get("/midjourney/v1/fetch", params={"jobId": job_id}).json()
        assert queued["status"] in ("PENDING_QUEUE", "ON_QUEUE") and isinstance(queued["data"]["progress"], str)
        emulator.complete_job(engine_job(emulator, job_id))
        done = client.get("/midjourney/v1/fetch", params={"jobId": job_id}).json()
        documented = set(fixture("fetch-imagine-success.json")["data"])
        assert documented <= set(done["data"]) and done["status"] == "SUCCESS"
        listed = client.get("/midjourney/v1/fetch-list", params={"status": "SUCCESS"}).json()["data"]
        assert set(listed[0]) == set(fixture("fetch-list-response.json")["data"][0]) and listed[0]["status"] == 2
        refused = client.post("/midjourney/v1/action", json={"jobId": job_id, "action": "zoom_out_2"})
        assert refused.status_code == 400 and "available: upsample1" in refused.json()["message"]


# -- operators through dag.test() ---------------------------------------------------------------------------

pytestmark_dag = pytest.mark.usefixtures("airflow_db", "tt_conn")
OPTS = 'midjourney_conn_id="ttapi_default", poll_interval=0.05'


@pytestmark_dag
def test_dag_imagine_upscales_and_four_stored_pictures(emulator, tmp_path) -> None:
    dr = run_dag(
        "tt_imagine_upscale",
        f"""
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt="a red fox", {OPTS})
        ups = MidjourneyButtonOperator.partial(task_id="up", job_id=imagine.output["job_id"], {OPTS}).expand(
            button=["U1", "U2", "U3", "U4"])
        seed = MidjourneySeedOperator(task_id="seed", job_id=imagine.output["job_id"], {OPTS})
        pictures = MidjourneyDownloadOperator(task_id="pictures", job_id=imagine.output["job_id"],
                                              destination={str(tmp_path / "grid")!r}, contact_sheet=True,
                                              midjourney_conn_id="ttapi_default")
        imagine >> [ups, seed, pictures]
    """,
    )
    assert set(task_states(dr).values()) == {"success"}
    result = xcom(dr, "imagine")
    assert result["backend"] == "ttapi" and result["image_kind"] == "crops" and len(result["image_urls"]) == 4
    upscales = [xcom(dr, "up", map_index=n) for n in range(4)]
    assert len({u["job_id"] for u in upscales}) == 4 and all(u["image_kind"] == "upscales" for u in upscales)
    assert isinstance(xcom(dr, "seed")["seed"], int)
    files = sorted(p.name for p in (tmp_path / "grid").iterdir())
    assert files == [*(f"{result['job_id']}_{n}.png" for n in range(1, 5)), "index.html"]
    assert len({(tmp_path / "grid" / f).read_bytes() for f in files[:4]}) == 4
    assert len(emulator.requests_to("POST", "/midjourney/v1/imagine")) == 1


@pytestmark_dag
def test_dag_moderated_prompt_is_never_resubmitted(emulator) -> None:
    dr = run_dag(
        "tt_moderated",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt="something forbidden", retries=3,
                                  retry_delay=timedelta(0), {OPTS})
    """,
    )
    assert task_states(dr) == {"imagine": "failed"}
    assert len(emulator.requests_to("POST", "/midjourney/v1/imagine")) == 1 and len(emulator.created_jobs()) == 1


@pytestmark_dag
def test_dag_lost_creation_answer_fails_without_a_second_job(emulator) -> None:
    emulator.drop_next(1, path_prefix="/midjourney/v1/imagine", after_handling=True)
    dr = run_dag(
        "tt_lost_answer",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt="answer lost", retries=2, retry_delay=timedelta(0),
                                  {OPTS})
    """,
    )
    assert task_states(dr) == {"imagine": "failed"}
    assert len(emulator.requests_to("POST", "/midjourney/v1/imagine")) == 1 and len(emulator.created_jobs()) == 1


@pytestmark_dag
def test_dag_quota_fails_at_once(emulator) -> None:
    emulator.subscription_expired = True
    dr = run_dag(
        "tt_quota",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt="no money", retries=3, retry_delay=timedelta(0), {OPTS})
    """,
    )
    assert task_states(dr) == {"imagine": "failed"}
    assert len(emulator.requests_to("POST", "/midjourney/v1/imagine")) == 1


@pytest.fixture
def full_account(emulator, monkeypatch, airflow_db) -> str:
    """A one-job account kept full by a job the DAG did not submit, until the task has waited for it."""
    import threading

    emulator.set_channel_limits(emulator.channels[0], max_jobs=1)
    emulator.timings = JobTimings(start_after=0.02, progress_after=0.05, complete_after=120.0)
    monkeypatch.setenv("AIRFLOW_CONN_TTAPI_DEFAULT", conn_json(emulator.base_url))
    with TtapiHook(CONN, retry=FAST_RETRY) as hook:
        blocker = hook.submit_job(ImagineRequest.build(prompt="an earlier job")).job_id
    emulator.timings = JobTimings(start_after=0.02, progress_after=0.04, complete_after=0.15)

    def waited() -> bool:
        requests = emulator.requests
        listed = sum(r.path == "/midjourney/v1/fetch-list" for r in requests)
        return listed >= 4 or sum(r.status == 499 for r in requests) >= 2  # two looks (2 states each)

    def end_once_waited() -> None:
        give_up = time.monotonic() + 60
        while not waited() and time.monotonic() < give_up:
            time.sleep(0.05)
        emulator.complete_job(engine_job(emulator, blocker))

    threading.Thread(target=end_once_waited, daemon=True).start()
    return blocker


@pytest.mark.parametrize(("extra", "statuses"), [({"max_jobs": 1}, [200, 200]), ({}, [200, 499, 200])])
def test_dag_at_a_full_account_waits_in_the_triggerer(emulator, full_account, monkeypatch, extra, statuses) -> None:
    # With max_jobs the task looks at fetch-list first and defers; without, TTAPI's 499 defers it.
    monkeypatch.setenv("AIRFLOW_CONN_TTAPI_DEFAULT", conn_json(emulator.base_url, **extra))
    dr = run_dag(
        f"tt_full_account_{len(statuses)}",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt="a cat", {OPTS})
    """,
    )
    assert task_states(dr) == {"imagine": "success"}
    assert [r.status for r in emulator.requests_to("POST", "/midjourney/v1/imagine")] == statuses
