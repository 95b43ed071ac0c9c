"""The Legnext backend (and Youchuan, the API it appears to resell): its contract on the vendor's own
samples, the hook against the emulator's routes on both prefixes and auth schemes, and the operators
through dag.test()."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_midjourney.exceptions import (
    MidjourneyAuthError,
    MidjourneyBusyError,
    MidjourneyConfigurationError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyModeratedError,
    MidjourneyPermanentError,
    MidjourneySubmitUncertainError,
    MidjourneyUnsupportedError,
)
from airflow_provider_midjourney.hooks.base import Capability
from airflow_provider_midjourney.hooks.legnext import (
    BUTTONS,
    LegnextCreditsError,
    LegnextHook,
    LegnextWhitelistError,
    mask_body,
)
from airflow_provider_midjourney.hooks.legnext_models import (
    LegnextJob,
    LegnextOutput,
    YouchuanJob,
    is_moderation,
    is_whitelist,
)
from airflow_provider_midjourney.models import (
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    ImagineRequest,
    JobStatus,
    SeedRequest,
    SettingsRequest,
)
from airflow_provider_midjourney.testing import MidjourneyEmulator
from airflow_provider_midjourney.testing.legnext import job_for
from airflow_provider_midjourney.video_requests import VideoExtendRequest, VideoRequest
from tests.conftest import FAST_RETRY, TOKEN
from tests.dag_runs import run_dag, task_states, xcom

FIXTURES = Path(__file__).parents[1] / "fixtures" / "legnext"
CONN = "legnext_default"
APP = "emulator-app"
PREFIX = {"legnext": "/api/v1/", "youchuan": "/v1/tob/"}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def conn_json(base_url: str, api: str = "legnext", token: str = TOKEN, login: str | None = APP) -> str:
    conn: dict[str, Any] = {"conn_type": "legnext", "host": base_url, "password": token, "extra": {"api": api}}
    if api == "youchuan" and login is not None:
        conn["login"] = login
    return json.dumps(conn)


@pytest.fixture(params=["legnext", "youchuan"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hook(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch, api: str) -> Iterator[LegnextHook]:
    monkeypatch.setenv("AIRFLOW_CONN_LEGNEXT_DEFAULT", conn_json(emulator.base_url, api))
    with LegnextHook(CONN, retry=FAST_RETRY) as hook:
        yield hook


def finished(hook: LegnextHook, emulator: MidjourneyEmulator, job_id: str) -> Any:
    """The job, completed now (the emulator's clock is not waited for)."""
    emulator.complete_job(job_for(emulator, job_id))
    return hook.fetch_job(job_id)


def posts(emulator: MidjourneyEmulator) -> list[Any]:
    return [r for r in emulator.requests if r.method == "POST"]


# -- the contract, on the vendor's own samples ------------------------------------------------------


def test_documented_completed_job_is_four_crops_with_buttons_and_a_seed() -> None:
    sample = fixture("job-completed-diffusion.json")
    job = LegnextJob.model_validate(sample).normalised("legnext")
    assert job.status == JobStatus.COMPLETED and job.verb == "imagine" and job.job_id == sample["job_id"]
    assert job.image_urls == sample["output"]["image_urls"] and job.image_kind == "crops"
    assert job.grid_url == sample["output"]["image_url"]
    assert job.buttons == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4", "🔄"]
    assert job.to_xcom()["image_kind"] == "crops"
    assert LegnextJob.model_validate(sample).output.seed == "1904983176"  # type: ignore[union-attr]


def test_pending_and_signed_url_samples() -> None:
    pending = LegnextJob.model_validate(fixture("job-pending.json")).normalised("legnext")
    assert pending.status == JobStatus.CREATED and not pending.is_terminal and pending.image_urls == []
    signed = fixture("job-completed-signed-urls.json")
    job = LegnextJob.model_validate(signed).normalised("legnext")
    assert job.is_terminal and job.grid_url is None and job.image_urls == signed["output"]["image_urls"]
    assert all("Signature=" in u for u in job.image_urls)


def test_extend_video_sample_spells_its_type_with_an_underscore() -> None:
    sample = fixture("job-completed-extend-video.json")
    job = LegnextJob.model_validate(sample).normalised("legnext")
    assert sample["task_type"] == "extend_video" and job.verb == "video_extend"
    assert job.video_urls == sample["output"]["video_urls"] and job.image_urls == [] and job.image_kind is None
    dashed = LegnextJob.model_validate({**sample, "task_type": "extend-video"}).normalised("legnext")
    assert dashed == job


@pytest.mark.parametrize("status", ["pending", "staged", "processing", "completed", "failed", "someday"])
def test_every_documented_status_and_an_unknown_one(status: str) -> None:
    job = LegnextJob.model_validate({"job_id": "abcdef12", "status": status}).normalised("legnext")
    assert job.is_terminal == (status in ("completed", "failed"))


def test_the_403_sample_is_a_whitelist_refusal_not_moderation() -> None:
    message = fixture("error-403-whitelist.json")["error"]["message"]
    assert is_whitelist(message) and not is_moderation(message)
    assert is_moderation("Sensitive content detected") and not is_whitelist("Sensitive content detected")
    failed = {"job_id": "abcdef12", "status": "failed", "error": {"code": 403, "message": "sensitive content"}}
    assert LegnextJob.model_validate(failed).normalised("legnext").status == JobStatus.MODERATED


def test_youchuan_job_shape() -> None:
    done = YouchuanJob.model_validate({"id": "y-123456", "status": 2, "urls": ["https://o/1.png"] * 4, "seed": "9"})
    job = done.normalised("legnext")
    assert job.status == JobStatus.COMPLETED and len(job.image_urls) == 4 and job.image_kind == "crops"
    running = YouchuanJob.model_validate({"id": "y-123456", "status": 1, "comment": "执行中"}).normalised("legnext")
    assert running.status == JobStatus.PROGRESS and not running.is_terminal
    unknown = YouchuanJob.model_validate({"id": "y-123456", "status": 7}).normalised("legnext")
    assert not unknown.is_terminal


@pytest.mark.parametrize(
    ("example", "request_", "parent"),
    [
        ("upscale", {"button": "U1"}, "grid"),
        ("variation", {"button": "V2", "prompt": "A beautiful sunset over the snow mountains"}, "grid"),
        ("reroll", {"button": "🔄"}, "grid"),
        ("pan", {"button": "➡️", "prompt": "a lake near the mountain"}, "upscale"),
        ("outpaint", {"button": "Custom Zoom", "prompt": "clouds over the sky --zoom 1.5"}, "upscale"),
        ("inpaint", {"button": "Vary (Region)", "prompt": "Add a tree in the center"}, "upscale"),
        ("remix", {"button": "Vary (Strong)", "prompt": "Change style to watercolor painting"}, "upscale"),
    ],
)
def test_the_vendor_request_examples_are_what_the_hook_sends(emulator, monkeypatch, example, request_, parent) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LEGNEXT_DEFAULT", conn_json(emulator.base_url))
    documented = {k: v for k, v in fixture("requests.json")[example].items() if k != "callback"}
    with LegnextHook(CONN, retry=FAST_RETRY) as hook:
        job_id = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="examples")).job_id).job_id
        if parent == "upscale":
            job_id = finished(hook, emulator, hook.submit_job(ButtonRequest.build(job_id=job_id, button="U1")).job_id)
            job_id = job_id.job_id
        if example == "inpaint":
            request_["mask"] = json.dumps(documented["mask"])
        hook.submit_job(ButtonRequest.build(job_id=job_id, **request_))
    sent = posts(emulator)[-1]
    assert sent.path == f"/api/v1/{example}" and sent.status == 200
    assert sent.json == {**documented, "jobId": job_id, **({"imageNo": 0} if parent == "upscale" else {})}


def test_blend_describe_and_video_bodies_follow_the_openapi_examples(emulator, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LEGNEXT_DEFAULT", conn_json(emulator.base_url))
    examples = fixture("requests.json")
    with LegnextHook(CONN, retry=FAST_RETRY) as hook:
        hook.submit_job(BlendRequest.from_images(examples["blend_per_openapi"]["imgUrls"]))
        hook.submit_job(DescribeRequest.from_image(examples["describe"]["imgUrl"]))
        image_url, text = examples["video_diffusion_from_url"]["prompt"].split(" ", 1)
        hook.submit_job(VideoRequest.build(image=image_url, prompt=text, resolution="hd"))
        parent = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="video parent")).job_id)
        prompt = examples["video_diffusion_from_job"]["prompt"]
        video = hook.submit_job(VideoRequest.build(job_id=parent.job_id, index=1, prompt=prompt, resolution="sd"))
        finished(hook, emulator, video.job_id)
        extend = examples["extend_video"]["prompt"]
        hook.submit_job(VideoExtendRequest.build(job_id=video.job_id, index=1, prompt=extend))
    sent = {r.path: r.json for r in posts(emulator)}
    assert sent["/api/v1/blend"] == examples["blend_per_openapi"]
    assert sent["/api/v1/describe"] == examples["describe"]
    assert sent["/api/v1/extend-video"] == {**examples["extend_video"], "jobId": video.job_id}
    video_posts = [r.json for r in posts(emulator) if r.path == "/api/v1/video-diffusion"]
    assert video_posts == [
        examples["video_diffusion_from_url"],
        {**examples["video_diffusion_from_job"], "jobId": parent.job_id},
    ]


# -- the hook against the emulator, both APIs --------------------------------------------------------


def test_imagine_upscales_and_seed_without_a_new_job(hook, emulator, api) -> None:
    grid = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="a red fox")).job_id)
    assert grid.status == JobStatus.COMPLETED and len(grid.image_urls) == 4 and grid.image_kind == "crops"
    submit = hook.submit_job
    pictures = [finished(hook, emulator, submit(ButtonRequest.build(job_id=grid.job_id, button=f"U{n}")).job_id)
                for n in range(1, 5)]  # fmt: skip
    assert all(len(p.image_urls) == 1 and p.image_kind == "upscales" for p in pictures)
    assert len({p.image_urls[0] for p in pictures}) == 4
    sent = [r.json["imageNo"] for r in posts(emulator) if r.path == f"{PREFIX[api]}upscale"]
    assert sent == [0, 1, 2, 3]  # U1..U4 are imageNo 0..3 on the wire
    before = len(posts(emulator))
    seed = hook.submit_job(SeedRequest.build(job_id=grid.job_id))
    assert seed.status == JobStatus.COMPLETED and isinstance(seed.seed, int) and seed.to_xcom()["seed"] == seed.seed
    assert len(posts(emulator)) == before and hook.fetch_job(seed.job_id).seed == seed.seed
    assert all(r.authorized for r in emulator.requests)


async def test_async_fetch_both_apis(hook, emulator) -> None:
    job = hook.submit_job(ImagineRequest.build(prompt="async"))
    emulator.complete_job(job_for(emulator, job.job_id))
    fetched = await hook.afetch_job(job.job_id)
    assert fetched.status == JobStatus.COMPLETED and len(fetched.image_urls) == 4
    await hook.aclose()


def test_moderation_at_submit_is_terminal_and_sent_once(hook, emulator, api) -> None:
    with pytest.raises(MidjourneyModeratedError, match="never resubmitted"):
        hook.submit_job(ImagineRequest.build(prompt="something forbidden"))
    assert len(posts(emulator)) == 1 and emulator.created_jobs() == []


def test_whitelist_403_is_a_clear_unsupported_error_not_retried(hook, emulator, api) -> None:
    message = fixture("error-403-whitelist.json")["error"]["message"]
    emulator.fail_next(1, status=403, path_prefix=PREFIX[api], method="POST", error=message)
    with pytest.raises(LegnextWhitelistError, match="whitelisted") as caught:
        hook.submit_job(ImagineRequest.build(prompt="fine prompt"))
    assert isinstance(caught.value, MidjourneyUnsupportedError) and not isinstance(
        caught.value, MidjourneyModeratedError
    )
    assert len(posts(emulator)) == 1


def test_other_403_is_permanent_and_not_moderation(hook, emulator, api) -> None:
    emulator.fail_next(1, status=403, path_prefix=PREFIX[api], method="POST", error="Permission denied")
    with pytest.raises(MidjourneyPermanentError) as caught:
        hook.submit_job(ImagineRequest.build(prompt="fine prompt"))
    assert not isinstance(caught.value, MidjourneyModeratedError | LegnextWhitelistError)


def test_busy_is_retried_and_creates_one_job(hook, emulator, api) -> None:
    emulator.fail_next(2, status=429, path_prefix=PREFIX[api], method="POST")
    job = hook.submit_job(ImagineRequest.build(prompt="busy then fine"))
    assert job.status == JobStatus.CREATED and len(posts(emulator)) == 3 and len(emulator.created_jobs()) == 1
    emulator.fail_next(10, status=429, path_prefix=PREFIX[api], method="POST")
    with pytest.raises(MidjourneyBusyError):
        hook.submit_job(ImagineRequest.build(prompt="always busy"))


def test_no_credits_is_clear_and_not_retried(hook, emulator, api) -> None:
    emulator.subscription_expired = True
    with pytest.raises(LegnextCreditsError, match="no credits left"):
        hook.submit_job(ImagineRequest.build(prompt="p"))
    assert len(posts(emulator)) == 1


def test_a_lost_creation_answer_is_uncertain_and_never_resent(hook, emulator, api) -> None:
    emulator.drop_next(1, path_prefix=f"{PREFIX[api]}diffusion", after_handling=True)
    with pytest.raises(MidjourneySubmitUncertainError):
        hook.submit_job(ImagineRequest.build(prompt="answer lost"))
    assert len(posts(emulator)) == 1 and len(emulator.created_jobs()) == 1
    assert hook.find_job_by_reply_ref("anything") is None  # no lookup by reference on this API


def test_wrong_key_is_an_auth_error(hook, emulator, api) -> None:
    emulator.token = "another-token"
    try:
        with pytest.raises(MidjourneyAuthError):
            hook.fetch_job("a616de55-6130-4e1f-b8cd-531ed0599353")
    finally:
        emulator.token = TOKEN


@pytest.mark.parametrize(
    ("api_name", "request_", "fragment"),
    [
        ("legnext", SettingsRequest.build(command="fast"), "'settings' capability"),
        ("legnext", ButtonRequest.build(job_id="abcdef12", button="Make Square"), "offers U1, U2"),
        ("legnext", ButtonRequest.build(job_id="abcdef12", button="🔄", prompt="new"), "rerolls without"),
        ("legnext", ButtonRequest.build(job_id="abcdef12", button="Vary (Region)", mask="aGVsbG8="), "not base64"),
        ("legnext", DescribeRequest.from_image(b"\x89PNG\r\n\x1a\n" + b"0" * 64), r"public http\(s\) image URLs"),
        ("legnext", VideoRequest.build(image="https://e.x/a.png", batch_size=2), "batch_size"),
        ("legnext", ImagineRequest.build(prompt="p", channel="123"), "channel"),
        ("youchuan", BlendRequest.from_images(["https://e.x/a.png", "https://e.x/b.png"]), "'blend' capability"),
        ("youchuan", DescribeRequest.from_image("https://e.x/a.png"), "'describe' capability"),
    ],
)
def test_what_it_cannot_take_fails_before_http(emulator, monkeypatch, api_name, request_, fragment) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LEGNEXT_DEFAULT", conn_json(emulator.base_url, api_name))
    with LegnextHook(CONN) as hook, pytest.raises(MidjourneyInvalidRequestError, match=fragment):
        hook.submit_job(request_)
    assert emulator.requests == []


def test_buttons_on_the_wrong_kind_of_parent_are_refused_before_the_post(hook, emulator, api) -> None:
    grid = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="grid")).job_id)
    with pytest.raises(MidjourneyInvalidRequestError, match="press U1-U4 first"):
        hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="Vary (Subtle)"))
    up = finished(hook, emulator, hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="U3")).job_id)
    with pytest.raises(MidjourneyInvalidRequestError, match="one of a grid's four pictures"):
        hook.submit_job(ButtonRequest.build(job_id=up.job_id, button="U1"))
    running = hook.submit_job(ImagineRequest.build(prompt="still running"))
    with pytest.raises(MidjourneyInvalidRequestError, match="needs a completed job"):
        hook.submit_job(SeedRequest.build(job_id=running.job_id))
    assert len(posts(emulator)) == 3  # imagine, U3, imagine: no refused button reached a job-creating call


def test_available_actions_gate_the_buttons(emulator, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LEGNEXT_DEFAULT", conn_json(emulator.base_url))
    with LegnextHook(CONN, retry=FAST_RETRY) as hook:
        grid = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="grid")).job_id)
        up = finished(hook, emulator, hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="U1")).job_id)
        assert "🔄" not in up.buttons  # the emulator's upscale says reroll: false
        with pytest.raises(MidjourneyInvalidRequestError, match="does not offer '🔄'"):
            hook.submit_job(ButtonRequest.build(job_id=up.job_id, button="🔄"))
    assert len(posts(emulator)) == 2


def test_every_button_label_maps_to_a_route_the_emulator_takes(hook, emulator, api) -> None:
    grid = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="buttons")).job_id)
    up = finished(hook, emulator, hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="U1")).job_id)
    for label in BUTTONS:
        prompt = "wider --zoom 1.8" if label == "Custom Zoom" else None
        parent = grid if (label[0] in "UV" and label[1:].isdigit()) or label == "🔄" else up
        mask = '{"areas": [{"width": 500, "height": 500, "points": [1, 1, 1, 9, 9, 9]}]}'
        request_ = ButtonRequest.build(
            job_id=parent.job_id, button=label, mask=mask if "Region" in label else None, prompt=prompt
        )
        job = finished(hook, emulator, hook.submit_job(request_).job_id)
        assert job.status == JobStatus.COMPLETED and job.image_urls, label
    assert all(r.status == 200 for r in posts(emulator))


def test_video_at_the_hook_level(hook, emulator, api) -> None:
    grid = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="to animate")).job_id)
    request_ = VideoRequest.build(job_id=grid.job_id, index=4, motion="high", loop=True, resolution="hd")
    video = finished(hook, emulator, hook.submit_job(request_).job_id)
    assert video.verb == "video" and len(video.video_urls) == 4 and video.image_urls == []
    assert all(u.endswith(".mp4") for u in video.video_urls)
    extended = finished(hook, emulator, hook.submit_job(VideoExtendRequest.build(job_id=video.job_id, index=4)).job_id)
    assert len(extended.video_urls) == 4
    bodies = {r.path.rsplit("/", 1)[1]: r.json for r in posts(emulator)}
    assert bodies["video-diffusion"] == {
        "jobId": grid.job_id, "imageNo": 3, "prompt": "--motion high --loop", "videoType": 1
    }  # fmt: skip
    assert bodies["extend-video"] == {"jobId": video.job_id, "videoNo": 3}


def test_mask_forms() -> None:
    assert mask_body("https://e.x/m.png") == {"url": "https://e.x/m.png"}
    assert mask_body('{"areas": [{"points": [1, 2]}]}') == {"areas": [{"points": [1, 2]}]}
    with pytest.raises(MidjourneyInvalidRequestError, match="mask"):
        mask_body('{"areas": []}')


def test_connection_extras_and_youchuan_login(emulator, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LEGNEXT_DEFAULT", conn_json(emulator.base_url, "nope"))
    with pytest.raises(MidjourneyError, match="extra 'api' must be one of legnext, youchuan"):
        LegnextHook(CONN).submit_job(ImagineRequest.build(prompt="p"))
    monkeypatch.setenv("AIRFLOW_CONN_LEGNEXT_DEFAULT", conn_json(emulator.base_url, "youchuan", login=None))
    with pytest.raises(MidjourneyConfigurationError, match="Youchuan app id"):
        LegnextHook(CONN).submit_job(ImagineRequest.build(prompt="p"))
    monkeypatch.setenv("AIRFLOW_CONN_LEGNEXT_DEFAULT", json.dumps({"conn_type": "legnext", "password": "k"}))
    assert LegnextHook(CONN).connection_settings.base_url == "https://api.legnext.ai"
    youchuan = {"conn_type": "legnext", "login": "a", "password": "k", "extra": {"api": "youchuan"}}
    monkeypatch.setenv("AIRFLOW_CONN_LEGNEXT_DEFAULT", json.dumps(youchuan))
    hook = LegnextHook(CONN)
    assert hook.connection_settings.base_url == "https://ali.youchuan.cn"
    assert Capability.BLEND not in hook.supported_capabilities() and Capability.VIDEO in hook.supported_capabilities()
    assert emulator.requests == []


def test_test_button_is_honest(hook, emulator, monkeypatch, api) -> None:
    ok, message = hook.test_connection()
    assert ok and emulator.base_url in message, message
    if api == "legnext":
        assert "71000 credits" in message
    monkeypatch.setenv("AIRFLOW_CONN_LEGNEXT_DEFAULT", conn_json(emulator.base_url, api, token="wrong-token-123"))
    ok, message = LegnextHook(CONN).test_connection()
    assert not ok and "wrong-token-123" not in message
    monkeypatch.setenv("AIRFLOW_CONN_LEGNEXT_DEFAULT", conn_json(emulator.base_url + "/v3/midjourney", api))
    ok, message = LegnextHook(CONN).test_connection()
    assert not ok, message


def test_emulator_answers_in_the_vendors_shapes(emulator) -> None:
    import httpx

    with httpx.Client(base_url=emulator.base_url, headers={"x-api-key": TOKEN}) as client:
        assert set(client.get("/api/account/balance").json()) == set(fixture("balance.json"))
        assert set(client.get("/api/account/balance").json()["data"]) == set(fixture("balance.json")["data"])
        refused = client.get("/api/account/balance", headers={"x-api-key": "nope"})
        assert refused.status_code == 401 and set(refused.json()) == set(fixture("error-401.json"))
        created = client.post("/api/v1/diffusion", json={"text": "shapes"}).json()
        assert set(created) == set(fixture("job-pending.json")) and created["status"] == "pending"
        assert created["meta"]["started_at"] == "0001-01-01T00:00:00Z"
        emulator.complete_job(job_for(emulator, created["job_id"]))
        done = client.get(f"/api/v1/job/{created['job_id']}").json()
        documented = fixture("job-completed-diffusion.json")["output"]["available_actions"]
        assert set(done["output"]) == {"image_url", "image_urls", "seed", "available_actions"}
        assert set(done["output"]["available_actions"]) <= set(documented)
        whitelist = client.post("/api/v1/edit", json={"jobId": created["job_id"], "imageNo": 0})
        assert whitelist.status_code == 403 and whitelist.json()["error"] == {
            **fixture("error-403-whitelist.json")["error"]
        }
        pan = client.post("/api/v1/pan", json={"jobId": created["job_id"], "imageNo": 0, "direction": "left"})
        assert pan.status_code == 400  # a string direction is refused, as in the vendor's own test
        youchuan = {"x-youchuan-app": APP, "x-youchuan-secret": TOKEN}
        assert client.get("/v1/tob/costs", headers=youchuan).status_code == 200
        assert client.get("/v1/tob/costs", headers={"x-youchuan-secret": TOKEN}).status_code == 401
        assert client.post("/v1/tob/blend", headers=youchuan, json={}).status_code == 404


# -- the operators, through dag.test() ----------------------------------------------------------------

OPTS = 'midjourney_conn_id="legnext_default", poll_interval=0.05'


@pytest.fixture
def legnext_conn(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch, api: str) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_LEGNEXT_DEFAULT", conn_json(emulator.base_url, api))
    return api


@pytest.mark.usefixtures("airflow_db")
def test_dag_imagine_u1_to_u4_seed_and_four_stored_pictures(emulator, legnext_conn, tmp_path) -> None:
    dr = run_dag(
        f"legnext_imagine_upscale_{legnext_conn}",
        f"""
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt="a red fox", {OPTS})
        ups = MidjourneyButtonOperator.partial(task_id="upscale", job_id=imagine.output["job_id"], {OPTS}
                                               ).expand(button=["U1", "U2", "U3", "U4"])
        seed = MidjourneySeedOperator(task_id="seed", job_id=imagine.output["job_id"], {OPTS})
        pictures = MidjourneyDownloadOperator(task_id="pictures", job_id=imagine.output["job_id"],
                                              destination={str(tmp_path)!r}, contact_sheet=True,
                                              midjourney_conn_id="legnext_default")
        imagine >> [ups, seed, pictures]
    """,
    )
    assert set(task_states(dr).values()) == {"success"}
    result = xcom(dr, "imagine")
    assert result["backend"] == "legnext" and len(result["image_urls"]) == 4 and result["image_kind"] == "crops"
    upscales = [xcom(dr, "upscale", map_index=n) for n in range(4)]
    assert len({u["job_id"] for u in upscales}) == 4 and {u["image_kind"] for u in upscales} == {"upscales"}
    assert isinstance(xcom(dr, "seed")["seed"], int)
    stored = sorted(p for p in tmp_path.iterdir() if p.suffix == ".png")
    assert len(stored) == 4 and len({p.read_bytes() for p in stored}) == 4
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in stored)
    assert len(emulator.created_jobs()) == 5  # the grid and four upscales; the seed created none


@pytest.mark.usefixtures("airflow_db")
def test_dag_moderated_prompt_is_never_resubmitted(emulator, legnext_conn) -> None:
    dr = run_dag(
        f"legnext_moderated_{legnext_conn}",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt="something forbidden", retries=3,
                                  retry_delay=timedelta(0), {OPTS})
    """,
    )
    assert task_states(dr) == {"imagine": "failed"}
    assert len(posts(emulator)) == 1 and emulator.created_jobs() == []


@pytest.mark.usefixtures("airflow_db")
def test_dag_lost_creation_answer_fails_without_a_duplicate(emulator, legnext_conn) -> None:
    emulator.drop_next(1, path_prefix=f"{PREFIX[legnext_conn]}diffusion", after_handling=True)
    dr = run_dag(
        f"legnext_lost_answer_{legnext_conn}",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt="answer lost", retries=1, retry_delay=timedelta(0),
                                  {OPTS})
    """,
    )
    assert task_states(dr) == {"imagine": "failed"}
    assert len(posts(emulator)) == 1 and len(emulator.created_jobs()) == 1


def test_an_enveloped_answer_is_read_through() -> None:
    from airflow_provider_midjourney.hooks.legnext import _job_id_in, _unwrap

    wrapped = {"code": 0, "message": "ok", "data": {"id": "y-123456", "status": 1}}
    assert _job_id_in(wrapped) == "y-123456" and _unwrap(wrapped) == wrapped["data"]
    assert _job_id_in(fixture("job-pending.json")) == "789320d3-4b20-46d3-a804-6165a079176a"
    assert _job_id_in(fixture("error-403-whitelist.json")) is None  # "job_id": "" is no id


@pytest.mark.usefixtures("airflow_db")
def test_dag_busy_submit_waits_for_room_and_creates_one_job(emulator, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LEGNEXT_DEFAULT", conn_json(emulator.base_url))
    emulator.fail_next(1, status=429, path_prefix="/api/v1/diffusion", method="POST")
    dr = run_dag(
        "legnext_busy",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt="busy first", {OPTS})
    """,
    )
    assert task_states(dr) == {"imagine": "success"}
    assert [r.status for r in posts(emulator)] == [429, 200] and len(emulator.created_jobs()) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "1\ufe0f\u20e3 a red fox --ar 1:1\n\n2\ufe0f\u20e3 a tea house\n\n3\u20e3 a boat",
            ["a red fox --ar 1:1", "a tea house", "a boat"],
        ),
        ("1. a cat 2. a dog 3. a bird 4. a fish", ["a cat", "a dog", "a bird", "a fish"]),
        ("1) a cat\n2) a dog", ["a cat", "a dog"]),
        ("a single prompt, no numbers", ["a single prompt, no numbers"]),
        ("  only 1. item here ", ["only 1. item here"]),
        ("1. \n2. a dog\n3. a bird", ["a dog", "a bird"]),
    ],
)
def test_describe_text_splits_on_keycaps_or_numbers(text: str, expected: list[str]) -> None:
    output = LegnextOutput.model_validate({"description": text})
    assert output.prompts() == expected


def test_describe_text_keeps_a_decimal_inside_a_prompt() -> None:
    # "2.5x" is part of the first prompt, not the start of the second one
    output = LegnextOutput.model_validate({"description": "1. a cat at 2.5x zoom 2. a dog"})
    assert output.prompts() == ["a cat at 2.5x zoom", "a dog"]
