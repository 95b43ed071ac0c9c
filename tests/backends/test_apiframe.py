"""The Apiframe v2 backend: its contract on the vendor's samples, the hook against the emulator's
Apiframe routes, the Idempotency-Key promise, and the operators through dag.test()."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_midjourney.exceptions import (
    MidjourneyDownloadError,
    MidjourneyInvalidRequestError,
    MidjourneyUnsupportedError,
    MidjourneyValidationError,
)
from airflow_provider_midjourney.hooks.apiframe import ApiframeHook
from airflow_provider_midjourney.hooks.apiframe_models import ApiframeJob, JobAccepted, JobList
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
from airflow_provider_midjourney.testing.apiframe import MOUNT, expire, routes_of
from airflow_provider_midjourney.text_patterns import moderation_patterns
from airflow_provider_midjourney.video_requests import VideoExtendRequest, VideoRequest
from airflow_provider_midjourney.vocabulary import JobStatus
from tests.conftest import FAST_RETRY, TOKEN
from tests.task_context import task_context
from tests.test_operators import run_dag, task_states, xcom
from tests.test_video import assert_stored_mp4s

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "apiframe"
CONN = "apiframe_default"
PATTERNS = moderation_patterns(None, CONN)
GENERATE = f"{MOUNT}/v2/images/generate"
UUID = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def conn_json(base_url: str, token: str = TOKEN, **extra: object) -> str:
    return json.dumps({"conn_type": "apiframe", "host": base_url + MOUNT, "password": token, "extra": extra})


@pytest.fixture
def af_conn(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_APIFRAME_DEFAULT", conn_json(emulator.base_url))
    return CONN


@pytest.fixture
def hook(af_conn: str) -> Any:
    with ApiframeHook(af_conn, retry=FAST_RETRY) as hook:
        yield hook


def wait_done(hook: ApiframeHook, emulator: MidjourneyEmulator, job_id: str) -> Any:
    from airflow_provider_midjourney.testing.apiframe import engine_job

    emulator.complete_job(engine_job(emulator, job_id))
    return hook.fetch_job(job_id)


# -- the vendor's samples ---------------------------------------------------------------------------


def test_samples_normalise_into_the_one_job_shape() -> None:
    grid = ApiframeJob.model_validate(fixture("job-completed-grid.json")).normalised("apiframe", PATTERNS)
    assert grid.status == JobStatus.COMPLETED and len(grid.image_urls) == 4 and grid.grid_url.endswith("-grid.png")
    assert grid.buttons == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"] and grid.verb == "imagine"
    string = ApiframeJob.model_validate(fixture("job-completed-string-result.json")).normalised("apiframe", PATTERNS)
    assert string.grid_url == "https://cdn.apiframe.ai/results/a1b2c3d4.png" and string.image_urls == []
    failed = ApiframeJob.model_validate(fixture("job-failed.json")).normalised("apiframe", PATTERNS)
    assert failed.status == JobStatus.MODERATED and "content policy" in (failed.error or "")
    queued = ApiframeJob.model_validate(fixture("job-queued.json")).normalised("apiframe", PATTERNS)
    assert queued.status == JobStatus.CREATED and not queued.is_terminal
    video = ApiframeJob.model_validate(
        {"id": UUID, "status": "COMPLETED", "model": "midjourney-video", "result": fixture("video-result.json")}
    ).normalised("apiframe", PATTERNS)
    assert video.verb == "video" and len(video.video_urls) == 4 and video.buttons == []
    upsample = ApiframeJob.model_validate(
        {"id": UUID, "status": "COMPLETED", "result": fixture("action-upsample-result.json")}
    ).normalised("apiframe", PATTERNS)
    assert len(upsample.image_urls) == 1 and "Vary (Region)" in upsample.buttons
    assert JobAccepted.model_validate(fixture("job-accepted.json")).job_id == UUID
    assert JobList.model_validate(fixture("jobs-list.json")).running_ids() == set()
    unknown = ApiframeJob.model_validate({"id": UUID, "status": "PAUSED"}).normalised("apiframe", PATTERNS)
    assert not unknown.is_terminal and str(unknown.status) == "PAUSED"


def test_wire_bodies_match_the_samples(hook: ApiframeHook) -> None:
    sample = fixture("generate-request.json")
    _verb, _path, body = hook.wire_request(ImagineRequest.build(prompt=sample["prompt"] + " --ar 16:9"))
    assert body == sample
    up = hook.wire_request(ButtonRequest.build(job_id=UUID, button="U2"))[2]
    assert up == fixture("action-upsample-request.json")
    out = hook.wire_request(ButtonRequest.build(job_id=UUID, button="Zoom Out 2x"))[2]
    assert out == fixture("action-outpaint-request.json")
    video = fixture("video-request.json")
    params = video["midjourneyVideoParams"]
    request = VideoRequest.build(
        image=params["start_image"], prompt=video["prompt"], motion=params["motion"], resolution=params["resolution"]
    )
    assert hook.wire_request(request)[2] == video


# -- refused before any HTTP call -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (lambda: BlendRequest.build(image_url_1="https://e.x/a.png", image_url_2="https://e.x/b.png"), "blend"),
        (lambda: DescribeRequest.build(image_url="https://e.x/a.png"), "describe"),
        (lambda: SeedRequest.build(job_id=UUID), "seed"),
        (lambda: SettingsRequest.build(command="relax"), "settings"),
        (lambda: VideoExtendRequest.build(job_id=UUID, index=1), "video_extend"),
        (lambda: ButtonRequest.build(job_id=UUID, button="🔄"), "reroll"),
        (lambda: ButtonRequest.build(job_id=UUID, button="Vary (Strong)"), "Vary"),
        (lambda: ButtonRequest.build(job_id="not-a-uuid", button="U1"), "UUID"),
        (lambda: ButtonRequest.build(job_id=UUID, button="V1", prompt="remix"), "prompt"),
        (lambda: ImagineRequest.build(prompt="a cat", channel="1234567890123456789"), "channel"),
        (lambda: ImagineRequest.build(prompt="x" * 2001), "2000"),
        (lambda: VideoRequest.build(image="https://e.x/a.png"), "prompt"),
        (lambda: VideoRequest.build(image="https://e.x/a.png", prompt="p", loop=True), "loop"),
        (lambda: VideoRequest.build(image="https://e.x/a.png", prompt="p", end_image="https://e.x/b.png"), "end_image"),
        (lambda: VideoRequest.build(image="https://e.x/a.png", prompt="p", batch_size=2), "batch_size"),
    ],
)
def test_refused_before_http(hook: ApiframeHook, emulator: MidjourneyEmulator, request_: Any, match: str) -> None:
    with pytest.raises(MidjourneyInvalidRequestError, match=match) as raised:
        hook.submit_job(request_())
    assert emulator.requests == []
    if match in ("blend", "describe", "seed", "settings", "video_extend"):
        assert isinstance(raised.value, MidjourneyUnsupportedError)


# -- the hook against the emulator ------------------------------------------------------------------


def test_imagine_upsample_pan_and_video(hook: ApiframeHook, emulator: MidjourneyEmulator) -> None:
    grid = wait_done(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="a lighthouse --ar 3:2")).job_id)
    assert grid.status == JobStatus.COMPLETED and len(grid.image_urls) == 4 and grid.grid_url
    [post] = emulator.requests_to("POST", GENERATE)
    assert post.json == {"model": "midjourney", "prompt": "a lighthouse", "midjourneyParams": {"aspect_ratio": "3:2"}}
    up = wait_done(hook, emulator, hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="U3")).job_id)
    assert up.verb == "button" and len(up.image_urls) == 1 and up.image_urls[0] not in grid.image_urls
    pan = wait_done(hook, emulator, hook.submit_job(ButtonRequest.build(job_id=up.job_id, button="⬅️")).job_id)
    assert len(pan.image_urls) == 4
    clip = hook.submit_job(VideoRequest.build(job_id=grid.job_id, index=2, prompt="waves", motion="high"))
    [video_post] = emulator.requests_to("POST", f"{MOUNT}/v2/videos/generate")
    assert video_post.json is not None
    assert video_post.json["midjourneyVideoParams"] == {"start_image": grid.image_urls[1], "motion": "high"}
    assert len(wait_done(hook, emulator, clip.job_id).video_urls) == 4
    keys = routes_of(emulator).keys_seen
    assert len(keys) == 4 and all(k and k.startswith("mj-") for k in keys) and len(set(keys)) == 4


def test_wrong_parent_type_is_the_vendors_400(hook: ApiframeHook, emulator: MidjourneyEmulator) -> None:
    grid = wait_done(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="a fox")).job_id)
    with pytest.raises(MidjourneyValidationError, match="upsample job"):
        hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="⬅️"))
    assert len(emulator.created_jobs()) == 1


def test_secret_only_in_its_header(hook: ApiframeHook, emulator: MidjourneyEmulator) -> None:
    hook.submit_job(ImagineRequest.build(prompt="a cat"))
    [post] = emulator.requests_to("POST", GENERATE)
    assert post.authorized and TOKEN not in json.dumps(post.json)


def test_running_ids_from_the_one_list_call(hook: ApiframeHook, emulator: MidjourneyEmulator) -> None:
    import asyncio

    emulator.never_finish = True
    running = hook.submit_job(ImagineRequest.build(prompt="a slow cat"))

    async def ids() -> set[str] | None:
        async with ApiframeHook(CONN, retry=FAST_RETRY) as fresh:
            return await fresh.alist_running_job_ids()

    assert asyncio.run(ids()) == {running.job_id}
    assert emulator.requests_to("GET", f"{MOUNT}/v2/jobs")[-1].query == {"limit": "100"}


def test_connection_button(hook: ApiframeHook, emulator: MidjourneyEmulator, monkeypatch) -> None:
    ok, message = hook.test_connection()
    assert ok and "key is accepted" in message and TOKEN not in message
    monkeypatch.setenv("AIRFLOW_CONN_APIFRAME_BAD", conn_json(emulator.base_url, token="wrong-key-123456"))
    ok, message = ApiframeHook("apiframe_bad").test_connection()
    assert not ok and "wrong-key-123456" not in message


def test_429_waits_what_retry_after_says(hook: ApiframeHook, emulator: MidjourneyEmulator) -> None:
    routes_of(emulator).rate_limit = (1, "0.4")  # busy_wait of FAST_RETRY is 0.01-0.03 s
    hook.submit_job(ImagineRequest.build(prompt="a cat"))
    first, second = emulator.requests_to("POST", GENERATE)
    assert first.status == 429 and second.status == 202 and second.time - first.time >= 0.35
    assert len(emulator.created_jobs()) == 1


def test_503_is_transient(hook: ApiframeHook, emulator: MidjourneyEmulator) -> None:
    emulator.fail_next(1, status=503, path_prefix=f"{MOUNT}/v2/jobs/", method="GET")
    job = hook.submit_job(ImagineRequest.build(prompt="a cat"))
    assert hook.fetch_job(job.job_id).job_id == job.job_id


def test_retry_after_is_bounded() -> None:
    from airflow_provider_midjourney.exceptions import MidjourneyBusyError

    busy = MidjourneyBusyError(429, "slow down")
    busy.retry_after = 5000.0
    assert HttpRetry(max_seconds=60).wait_seconds(busy, 1) == 60


# -- one job, whatever is re-sent ---------------------------------------------------------------------


def test_timeout_after_creation_then_retry_makes_one_job(emulator: MidjourneyEmulator, monkeypatch) -> None:
    """The first POST is handled (the job exists) but answers after the client's 0.3 s timeout;
    the hook sends it again with the same Idempotency-Key and gets that job back."""
    monkeypatch.setenv("AIRFLOW_CONN_APIFRAME_DEFAULT", conn_json(emulator.base_url, timeout="0.3"))
    emulator.slow_next(1, 0.6, path_prefix=GENERATE, method="POST")
    with ApiframeHook(CONN, retry=FAST_RETRY) as hook:
        job = hook.submit_job(ImagineRequest.build(prompt="a cat", reply_ref="airflow:d/r/t/-1~0123"))
    posts = emulator.requests_to("POST", GENERATE)
    keys = routes_of(emulator).keys_seen
    # The slow first POST is handled only after its 0.6 s: wait for it here, or it lands in the next
    # test (a stray key and a job made there after the emulator's reset).
    deadline = time.monotonic() + 10
    while len(keys) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(posts) == 2 and len(keys) == 2 and len(set(keys)) == 1 and keys[0]
    assert len(emulator.created_jobs()) == 1 and routes_of(emulator).keys[keys[0]] == job.job_id


@pytest.mark.usefixtures("airflow_db", "af_conn")
@pytest.mark.parametrize("fault", ["drop", "502"])
def test_dag_lost_creation_answer_resends_and_makes_one_job(emulator: MidjourneyEmulator, fault: str) -> None:
    if fault == "drop":
        emulator.drop_next(4, path_prefix=GENERATE, method="POST", after_handling=True)
    else:
        emulator.fail_next(4, status=502, path_prefix=GENERATE, method="POST", after_handling=True)
    routes_of(emulator).keys_seen.clear()  # only this DAG's sends
    dr = run_dag(
        f"af_lost_{fault}",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt="a lost answer", midjourney_conn_id="{CONN}",
                                  poll_interval=0.05, retries=1, retry_delay=timedelta(0))
    """,
    )
    assert task_states(dr) == {"imagine": "success"}
    keys = routes_of(emulator).keys_seen
    assert len(keys) >= 5 and len(set(keys)) == 1  # every re-send carried the one key
    assert len(emulator.created_jobs()) == 1 and xcom(dr, "imagine")["job_id"] == routes_of(emulator).keys[keys[0]]


def test_direct_calls_get_fresh_keys(hook: ApiframeHook, emulator: MidjourneyEmulator) -> None:
    hook.submit_job(ImagineRequest.build(prompt="a cat"))
    hook.submit_job(ImagineRequest.build(prompt="a cat"))
    assert len(emulator.created_jobs()) == 2


def test_a_failed_job_is_replaced_under_a_fresh_key(hook: ApiframeHook, emulator: MidjourneyEmulator) -> None:
    request = ImagineRequest.build(prompt="a cat", reply_ref="airflow:d/r/t/-1~0123")
    first = hook.submit_job(request)
    assert hook.submit_job(request).job_id == first.job_id  # same task, same inputs: the same job
    hook.supersedes = first.job_id
    assert hook.submit_job(request).job_id != first.job_id and len(emulator.created_jobs()) == 2


# -- downloads -------------------------------------------------------------------------------------


def test_expired_files_give_a_clear_error(hook: ApiframeHook, emulator: MidjourneyEmulator, tmp_path) -> None:
    job = wait_done(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="a cat")).job_id)
    expire(emulator, job.job_id)
    op = MidjourneyDownloadOperator(task_id="d", job_id=job.job_id, destination=str(tmp_path), midjourney_conn_id=CONN)
    with pytest.raises(MidjourneyDownloadError, match=r"expired.*24 hours"):
        op.execute(task_context())  # type: ignore[arg-type]
    assert not [r for r in emulator.requests if r.path.startswith("/cdn/")]


# -- dag.test() ------------------------------------------------------------------------------------

OPTS = f'midjourney_conn_id="{CONN}", poll_interval=0.05'


@pytest.mark.usefixtures("airflow_db", "af_conn")
def test_dag_imagine_upsample_animate_and_download(emulator: MidjourneyEmulator, tmp_path: Path) -> None:
    dr = run_dag(
        "af_video",
        f"""
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt="a red fox --ar 16:9", {OPTS})
        up = MidjourneyButtonOperator(task_id="u2", job_id=imagine.output["job_id"], button="U2", {OPTS})
        animate = MidjourneyVideoOperator(task_id="animate", job_id=imagine.output["job_id"], index=2,
                                          prompt="runs through snow", motion="high", resolution="hd", {OPTS})
        extend = MidjourneyVideoExtendOperator(task_id="extend", job_id=animate.output["job_id"], index=1,
                                               if_unsupported="skip", {OPTS})
        seed = MidjourneySeedOperator(task_id="seed", job_id=imagine.output["job_id"], if_unsupported="skip", {OPTS})
        pictures = MidjourneyDownloadOperator(task_id="pictures", job_id=imagine.output["job_id"],
                                              destination={str(tmp_path / "p")!r}, midjourney_conn_id="{CONN}")
        clips = MidjourneyDownloadOperator(task_id="clips", job_id=animate.output["job_id"], kind="videos",
                                           destination={str(tmp_path / "v")!r}, contact_sheet=True,
                                           midjourney_conn_id="{CONN}")
        imagine >> [up, animate, seed, pictures]
        animate >> [extend, clips]
    """,
    )
    states = task_states(dr)
    assert states == {
        "imagine": "success", "u2": "success", "animate": "success", "clips": "success", "pictures": "success",
        "extend": "skipped", "seed": "skipped",
    }  # fmt: skip
    result = xcom(dr, "imagine")
    assert result["backend"] == "apiframe" and len(result["image_urls"]) == 4 and result["grid_url"]
    assert len(xcom(dr, "u2")["image_urls"]) == 1
    assert [p["content_type"] for p in xcom(dr, "pictures")] == ["image/png"] * 4
    assert_stored_mp4s(xcom(dr, "clips"), 4)
    [video_post] = emulator.requests_to("POST", f"{MOUNT}/v2/videos/generate")
    assert video_post.json is not None and video_post.json["midjourneyVideoParams"]["resolution"] == "hd"
    assert (tmp_path / "v" / "index.html").read_text().count("<video ") == 4


@pytest.mark.usefixtures("airflow_db", "af_conn")
def test_dag_moderated_prompt_is_never_resubmitted(emulator: MidjourneyEmulator) -> None:
    emulator.timings = JobTimings(start_after=0.01, progress_after=0.02, complete_after=0.05)
    dr = run_dag(
        "af_moderated",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt="something forbidden", retries=2,
                                  retry_delay=timedelta(0), {OPTS})
    """,
    )
    assert task_states(dr) == {"imagine": "failed"}
    assert len(emulator.requests_to("POST", GENERATE)) == 1 and len(emulator.created_jobs()) == 1
