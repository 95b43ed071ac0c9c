"""The ImaginePro backend: its contract on the vendor's own samples, the hook against the emulator's
ImaginePro routes (both API generations), and the operators through dag.test()."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from airflow_provider_midjourney.exceptions import (
    MidjourneyAPIError,
    MidjourneyAuthError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyModeratedError,
    MidjourneyUnsupportedError,
)
from airflow_provider_midjourney.grid import PILLOW_EXTRA, split_grid
from airflow_provider_midjourney.hooks.imaginepro import (
    CANCEL_BUTTON,
    IMAGINEPRO_BUTTONS,
    ImagineProCreditsError,
    ImagineProHook,
)
from airflow_provider_midjourney.hooks.imaginepro_models import Message, SubmitAnswer
from airflow_provider_midjourney.job_requests import (
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    ImagineRequest,
    SeedRequest,
    SettingsRequest,
)
from airflow_provider_midjourney.operators import (
    MidjourneyDescribeOperator,
    MidjourneyDownloadOperator,
    MidjourneySeedOperator,
    MidjourneySettingsOperator,
)
from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator
from airflow_provider_midjourney.testing.images import png_bytes
from airflow_provider_midjourney.testing.imaginepro import job_for_message
from airflow_provider_midjourney.text_patterns import DEFAULT_MODERATION_PATTERNS, moderation_patterns
from airflow_provider_midjourney.vocabulary import JobStatus
from tests.conftest import FAST_RETRY, TOKEN
from tests.dag_runs import run_dag, task_states, xcom
from tests.test_operators import context

FIXTURES = Path(__file__).parents[1] / "fixtures" / "imaginepro"
CONN = "imaginepro_default"
PATTERNS = moderation_patterns(None, CONN)
V3_JOB_ID = "j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def conn_json(base_url: str, token: str = TOKEN, **extra: object) -> str:
    return json.dumps({"conn_type": "imaginepro", "host": base_url, "password": token, "extra": extra})


@pytest.fixture(params=["nova", "midjourney"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ip_conn(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_IMAGINEPRO_DEFAULT", conn_json(emulator.base_url, job_timeout="120"))
    return CONN


@pytest.fixture
def hook(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch, api: str) -> Iterator[ImagineProHook]:
    monkeypatch.setenv("AIRFLOW_CONN_IMAGINEPRO_DEFAULT", conn_json(emulator.base_url, api=api, job_timeout=120))
    with ImagineProHook(CONN, retry=FAST_RETRY) as hook:
        yield hook


def finished(hook: ImagineProHook, emulator: MidjourneyEmulator, job_id: str) -> Any:
    """The job, completed now (the emulator's clock is not waited for)."""
    emulator.complete_job(job_for_message(emulator, job_id))
    return hook.fetch_job(job_id)


# -- the contract, on the vendor's own samples ------------------------------------------------------


def test_documented_message_is_a_completed_grid_of_a_button_job() -> None:
    [sample] = fixture("message-done.json")["samples"]
    job = Message.model_validate(sample).normalised("imaginepro", PATTERNS)
    assert job.status == JobStatus.COMPLETED and job.is_terminal and job.progress_percent == 100
    assert job.grid_url == sample["uri"] and job.image_urls == []
    assert job.buttons == sample["buttons"] and job.verb == "button" and job.reply_ref is None
    assert job.job_id == "your-button-message-id" and job.prompt == "A little cat running on the grass"


def test_nova_schema_spelling_and_types_parse_the_same() -> None:
    [documented] = fixture("message-done.json")["samples"]
    [variant] = fixture("message-nova-variant.json")["samples"]
    assert isinstance(variant["progress"], str) and "originalMessageId" in variant
    one, other = (Message.model_validate(m) for m in (documented, variant))
    assert one.parent_id == other.parent_id == "your-message-id"
    assert one.normalised("imaginepro", PATTERNS) == other.normalised("imaginepro", PATTERNS)


def test_sdk_example_and_submit_answers() -> None:
    [example] = fixture("sdk-message-example.json")["samples"]
    job = Message.model_validate(example).normalised("imaginepro", PATTERNS)
    assert job.reply_ref == "custom-reference-id" and job.grid_url == example["uri"] and job.verb == "imagine"
    [submit] = fixture("submit-answer.json")["samples"]
    answer = SubmitAnswer.model_validate(submit)
    assert not answer.refused and answer.message_id == "d15c1541-229a-442b-9873-d3494dede12a"
    # the SDK types `success` as a status string: a job id with PROCESSING is accepted, FAIL refused
    assert not SubmitAnswer.model_validate({**submit, "success": "PROCESSING"}).refused
    assert SubmitAnswer.model_validate({"success": "FAIL", "error": "x"}).refused
    assert SubmitAnswer.model_validate({"success": False, "messageId": "abcdef", "error": "no"}).refused


def test_every_sdk_button_and_status_is_known() -> None:
    types = fixture("sdk-types.json")
    assert set(types["buttons"]) - {CANCEL_BUTTON} <= set(IMAGINEPRO_BUTTONS)
    running = {"PROCESSING": 40, "QUEUED": 0}
    for status in types["statuses"]:
        job = Message.model_validate({"messageId": "m-123456", "status": status, "progress": running.get(status)})
        normalised = job.normalised("imaginepro", PATTERNS)
        assert normalised.status.is_known and normalised.is_terminal == (status in ("DONE", "FAIL"))


def test_the_button_page_sample_is_what_the_hook_sends(emulator, ip_conn) -> None:
    request_sample, answer_sample = fixture("button-page.json")["samples"]
    hook = ImagineProHook(CONN)
    request = ButtonRequest.build(job_id=request_sample["messageId"], button=request_sample["button"])
    _verb, path, body = hook.wire_request(hook.check_request(request), hook.options())
    assert path == "/api/v1/nova/button" and body == {**request_sample, "timeout": 120}
    assert SubmitAnswer.model_validate(answer_sample).message_id == "your-message-id"
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("message", "status", "percent"),
    [
        ({"status": "PROCESSING", "progress": "45%"}, JobStatus.PROGRESS, 45),
        ({"status": "processing", "progress": 12.7}, JobStatus.PROGRESS, 12),
        ({"status": "PROCESSING", "progress": None}, JobStatus.STARTED, None),
        ({"status": "QUEUED"}, JobStatus.CREATED, None),
        ({"status": "FAIL", "error": "Banned prompt detected"}, JobStatus.MODERATED, None),
        ({"status": "FAIL", "error": "Internal error, try again"}, JobStatus.FAILED, None),
        ({"status": "FAIL"}, JobStatus.FAILED, None),
        ({"status": "WAITING_FOR_GODOT", "progress": "n/a"}, JobStatus("WAITING_FOR_GODOT"), None),
    ],
)
def test_lenient_statuses_and_progress(message: dict[str, Any], status: JobStatus, percent: int | None) -> None:
    job = Message.model_validate({"messageId": "m-123456", **message}).normalised("imaginepro", PATTERNS)
    assert job.status == status and job.progress_percent == percent
    assert job.is_terminal == (status in (JobStatus.FAILED, JobStatus.MODERATED))


def test_an_upscale_is_one_picture_and_separate_images_are_kept() -> None:
    upscale = {"messageId": "m-123456", "status": "DONE", "uri": "https://c/u.png", "buttons": ["Vary (Strong)"]}
    job = Message.model_validate({**upscale, "originatingMessageId": "p-123456"}).normalised("imaginepro", PATTERNS)
    assert job.image_urls == ["https://c/u.png"] and job.verb == "button"
    images = [f"https://c/{n}.png" for n in range(4)]
    grid = Message.model_validate({**upscale, "buttons": ["U1"], "images": images}).normalised("imaginepro", PATTERNS)
    assert grid.image_urls == images and grid.grid_url == "https://c/u.png"


def test_moderation_patterns_are_configurable_and_checked() -> None:
    assert len(moderation_patterns("", CONN)) == len(DEFAULT_MODERATION_PATTERNS)
    custom = moderation_patterns("refused by policy|blocked", CONN)
    assert len(custom) == 1 and custom[0].search("BLOCKED here") and not custom[0].search("policy")
    assert len(moderation_patterns('["a", "b+"]', CONN)) == 2 and len(moderation_patterns(["x"], CONN)) == 1
    with pytest.raises(MidjourneyError, match=r"moderation_patterns.*invalid regular expression"):
        moderation_patterns("([unclosed", CONN)
    job = Message.model_validate({"messageId": "m-123456", "status": "FAIL", "error": "Blocked by the filter"})
    assert job.normalised("imaginepro", custom).status == JobStatus.MODERATED
    assert job.normalised("imaginepro", PATTERNS).status == JobStatus.FAILED


# -- refused before any request ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (lambda: SeedRequest.build(job_id="d15c1541-229a"), r"ImaginePro.*--seed"),
        (lambda: SettingsRequest.build(command="relax"), r"ImaginePro.*--relax"),
        (lambda: BlendRequest.from_images([b"png", "https://e.x/2.png"]), r"images\[0\].*ImaginePro.*URLs only"),
        (lambda: DescribeRequest.from_image(b"bytes"), r"image:.*ImaginePro.*URLs only"),
        (lambda: ButtonRequest.build(job_id="d15c1541-229a", button="Custom Zoom", prompt="x"), "not a button of"),
        (lambda: ButtonRequest.build(job_id="d15c1541-229a", button="Vary (Strong)", prompt="x"), "remix prompt"),
        (lambda: ButtonRequest.build(job_id=V3_JOB_ID, button="U1"), "ImaginePro messageId"),
        (lambda: ImagineRequest.build(prompt="p", channel="123"), "channel"),
        (lambda: ImagineRequest.build(prompt="p", reply_level="minimal"), "reply_level"),
        (
            lambda: BlendRequest.from_images(["https://e.x/1.png", "https://e.x/2.png"], blend_dimensions="Portrait"),
            "blendDimensions",
        ),
    ],
)
def test_what_imaginepro_cannot_take_fails_before_http(hook, emulator, request_, fragment) -> None:
    with pytest.raises(MidjourneyInvalidRequestError, match=fragment) as raised:
        hook.submit_job(request_())
    if "seed" in fragment or "relax" in fragment:
        assert isinstance(raised.value, MidjourneyUnsupportedError)
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("operator", "kwargs", "fragment"),
    [
        (MidjourneySeedOperator, {"job_id": "d15c1541-229a"}, r"ImaginePro.*--seed"),
        (MidjourneySettingsOperator, {"command": "fast"}, r"ImaginePro.*--fast"),
        (MidjourneyDescribeOperator, {"image": "<a local png>"}, r"ImaginePro.*URLs only"),
    ],
)
def test_operators_refuse_by_backend_before_http(emulator, ip_conn, tmp_path, operator, kwargs, fragment) -> None:
    if kwargs.get("image"):
        (tmp_path / "cat.png").write_bytes(png_bytes("cat"))
        kwargs = {"image": str(tmp_path / "cat.png")}
    with pytest.raises(MidjourneyInvalidRequestError, match=fragment):
        operator(task_id="t", midjourney_conn_id=CONN, **kwargs).execute(context())
    assert emulator.requests == []


def test_if_unsupported_skip_turns_the_refusal_into_a_skip(emulator, ip_conn) -> None:
    from airflow.exceptions import AirflowSkipException

    seed = MidjourneySeedOperator(task_id="t", job_id="d15c1541-229a", midjourney_conn_id=CONN, if_unsupported="skip")
    with pytest.raises(AirflowSkipException, match=r"if_unsupported='skip'.*ImaginePro"):
        seed.execute(context())
    assert emulator.requests == []
    with pytest.raises(MidjourneyInvalidRequestError, match="if_unsupported: must be 'fail' or 'skip'"):
        MidjourneySeedOperator(task_id="t", job_id="x", if_unsupported="ignore")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [({"api": "v9"}, "'api' must be one of nova, midjourney"), ({"job_timeout": 5}, "'job_timeout'.*10 to 900")],
)
def test_bad_connection_extras_fail_before_http(emulator, monkeypatch, extra, fragment) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IMAGINEPRO_DEFAULT", conn_json(emulator.base_url, **extra))
    hook = ImagineProHook(CONN)
    with pytest.raises(MidjourneyError, match=fragment):
        hook.submit_job(ImagineRequest.build(prompt="p"))
    ok, message = hook.test_connection()
    assert not ok and "extra" in message and emulator.requests == []


# -- the hook against the emulator, both API generations -------------------------------------------


def test_imagine_sends_ref_timeout_and_webhook_then_polls_to_a_grid(hook, emulator, api) -> None:
    job = hook.submit_job(
        ImagineRequest.build(prompt="a lighthouse", reply_ref="ref-1", reply_url="https://hooks.example/ip")
    )
    assert job.status == JobStatus.CREATED and job.backend == "imaginepro" and job.reply_ref == "ref-1"
    [post] = emulator.requests_to("POST", "/api/v1/")
    prefix = "/api/v1/nova" if api == "nova" else "/api/v1/midjourney"
    assert post.path == f"{prefix}/imagine" and post.authorized
    assert post.json == {
        "prompt": "a lighthouse",
        "ref": "ref-1",
        "webhookOverride": "https://hooks.example/ip",
        "timeout": 120,
    }
    done = finished(hook, emulator, job.job_id)
    assert done.status == JobStatus.COMPLETED and done.grid_url and done.image_urls == []
    assert done.reply_ref == "ref-1" and done.prompt == "a lighthouse" and "U1" in done.buttons
    poll = "/api/v1/message/fetch/" if api == "nova" else "/api/v1/midjourney/message/"
    assert emulator.requests_to("GET", poll) and TOKEN not in repr(done)


def test_buttons_blend_and_describe(hook, emulator) -> None:
    grid = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="fox")).job_id)
    up = hook.submit_job(ButtonRequest.build(job_id=grid.job_id, button="U2"))
    upscaled = finished(hook, emulator, up.job_id)
    assert upscaled.verb == "button" and len(upscaled.image_urls) == 1 and "Vary (Region)" in upscaled.buttons
    region = hook.submit_job(
        ButtonRequest.build(job_id=up.job_id, button="Vary (Region)", mask="bWFzaw==", prompt="a hat")
    )
    assert emulator.requests_to("POST", "/api/v1/")[-1].json == {
        "messageId": up.job_id,
        "button": "Vary (Region)",
        "prompt": "a hat",
        "mask": "bWFzaw==",
        "timeout": 120,
    }
    assert finished(hook, emulator, region.job_id).grid_url
    blend = hook.submit_job(BlendRequest.from_images(["https://e.x/1.png", "https://e.x/2.png"]))
    assert emulator.requests_to("POST", "/api/v1/midjourney/blend")[-1].json == {
        "urls": ["https://e.x/1.png", "https://e.x/2.png"],
        "timeout": 120,
    }
    assert finished(hook, emulator, blend.job_id).grid_url
    described = finished(hook, emulator, hook.submit_job(DescribeRequest.from_image("https://e.x/cat.png")).job_id)
    assert described.verb == "describe" and len(described.prompts) == 4 and described.to_xcom()["prompts"]


def test_cancel_job_button_while_running_and_after(hook, emulator) -> None:
    emulator.never_finish = True
    job = hook.submit_job(ImagineRequest.build(prompt="slow"))
    hook.cancel(job.job_id)
    assert emulator.requests_to("POST", "/api/v1/")[-1].json == {"messageId": job.job_id, "button": CANCEL_BUTTON}
    cancelled = hook.fetch_job(job.job_id)
    assert cancelled.status == JobStatus.FAILED and cancelled.error == "Job cancelled by user"
    with pytest.raises(MidjourneyAPIError, match="only available while the job is in progress"):
        hook.cancel(job.job_id)


def test_async_fetch_and_cancel(hook, emulator) -> None:
    emulator.never_finish = True
    job = hook.submit_job(ImagineRequest.build(prompt="async"))

    async def run() -> Any:
        async with ImagineProHook(CONN) as ahook:
            running = await ahook.afetch_job(job.job_id)
            await ahook.acancel(job.job_id)
            return running, await ahook.afetch_job(job.job_id)

    running, cancelled = asyncio.run(run())
    assert not running.is_terminal and cancelled.status == JobStatus.FAILED


def test_errors_in_nestjs_shape_are_mapped(hook, emulator) -> None:
    emulator.fail_next(1, status=402, path_prefix="/api/v1/", error="Insufficient credits")
    with pytest.raises(ImagineProCreditsError, match=r"Insufficient credits \(Payment Required\).*top it up"):
        hook.submit_job(ImagineRequest.build(prompt="p"))
    emulator.fail_next(1, status=400, path_prefix="/api/v1/", error="Your prompt contains banned words")
    with pytest.raises(MidjourneyModeratedError, match="banned words"):
        hook.submit_job(ImagineRequest.build(prompt="p"))
    assert len(emulator.requests_to("POST", "/api/v1/")) == 2  # neither was sent again
    emulator.token = "another-token"
    try:
        with pytest.raises(MidjourneyAuthError):
            hook.fetch_job("d15c1541-229a-442b-9873-d3494dede12a")
    finally:
        emulator.token = TOKEN


def test_find_job_by_ref_skips_failed_jobs(hook, emulator) -> None:
    assert hook.find_job_by_reply_ref("ref-x") is None
    first = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="one", reply_ref="ref-x")).job_id)
    finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="two", reply_ref="ref-y")).job_id)
    found = hook.find_job_by_reply_ref("ref-x")
    assert found is not None and found.job_id == first.job_id and found.status == JobStatus.COMPLETED


def test_test_button_is_honest(hook, emulator, monkeypatch) -> None:
    ok, message = hook.test_connection()
    assert ok and "ImaginePro" in message and emulator.base_url in message
    monkeypatch.setenv("AIRFLOW_CONN_IMAGINEPRO_DEFAULT", conn_json(emulator.base_url, token="wrong-token-123"))
    ok, message = ImagineProHook(CONN).test_connection()
    assert not ok and "refused the API token" in message and "wrong-token-123" not in message
    monkeypatch.setenv("AIRFLOW_CONN_IMAGINEPRO_DEFAULT", conn_json(emulator.base_url + "/v3/midjourney"))
    ok, message = ImagineProHook(CONN).test_connection()
    assert not ok and "does not look like" in message


# -- the emulator's routes keep the vendor's shapes --------------------------------------------------

SDK_MESSAGE_FIELDS = {
    "messageId", "prompt", "originalUrl", "uri", "progress", "status", "createdAt", "updatedAt", "buttons",
    "originatingMessageId", "ref", "error",
}  # fmt: skip


def test_emulator_answers_in_the_sdks_shapes(emulator) -> None:
    import httpx

    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=emulator.base_url, headers=auth) as client:
        bad = client.post("/api/v1/nova/imagine", json={"prompt": " ", "timeout": 5})
        assert bad.status_code == 400 and bad.json() == {
            "message": "prompt is required", "error": "Bad Request", "statusCode": 400
        }  # fmt: skip
        assert client.post("/api/v1/nova/imagine", json={"prompt": "p", "timeout": 5}).status_code == 400
        assert client.post("/api/v1/nova/button", json={"messageId": "x-123456", "button": "U9"}).status_code == 400
        assert client.get("/api/v1/message/fetch/no-such-message").status_code == 404
        created = client.post("/api/v1/nova/imagine", json={"prompt": "shapes", "ref": "r"}).json()
        assert set(created) == {"success", "messageId", "createdAt"} and created["success"] is True
        message = client.get(f"/api/v1/message/fetch/{created['messageId']}").json()
        assert set(message) <= SDK_MESSAGE_FIELDS and message["status"] in ("QUEUED", "PROCESSING")
        emulator.complete_job(job_for_message(emulator, created["messageId"]))
        done = client.get(f"/api/v1/midjourney/message/{created['messageId']}").json()
        assert set(done) <= SDK_MESSAGE_FIELDS and done["status"] == "DONE" and done["progress"] == 100
        assert done["ref"] == "r" and done["uri"].endswith("/grid_0.png")
        history = client.get("/api/v1/nova/images", params={"page": 1, "size": 5}).json()
        assert [set(e) for e in history["images"]] == [{"id", "type", "button", "prompt", "uri", "createdAt"}]
        assert client.get("/api/v1/nova/images").status_code == 200
        assert client.get("/api/v1/nova/images", headers={"Authorization": "Bearer nope"}).status_code == 401


# -- grids become four pictures ------------------------------------------------------------------------


def pixels(data: bytes) -> tuple[tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size, image.convert("RGB").tobytes()


def test_split_grid_is_lossless_for_png_and_jpeg() -> None:
    cells = [png_bytes(f"cell-{n}") for n in range(4)]
    grid = Image.new("RGB", (128, 128))
    for n, cell in enumerate(cells):
        grid.paste(Image.open(io.BytesIO(cell)), ((n % 2) * 64, (n // 2) * 64))
    for fmt in ("PNG", "JPEG"):
        buffer = io.BytesIO()
        grid.save(buffer, format=fmt)
        decoded = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
        quarters = split_grid(buffer.getvalue())
        for n, quarter in enumerate(quarters):
            box = ((n % 2) * 64, (n // 2) * 64, (n % 2) * 64 + 64, (n // 2) * 64 + 64)
            assert quarter.startswith(b"\x89PNG") and pixels(quarter) == ((64, 64), decoded.crop(box).tobytes())
        if fmt == "PNG":
            assert [pixels(q) for q in quarters] == [pixels(c) for c in cells]
    with pytest.raises(MidjourneyError, match="not a picture"):
        split_grid(b"<html>")


def test_download_images_cuts_the_grid_and_a_rerun_skips(hook, emulator, tmp_path) -> None:
    grid = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="four")).job_id)
    op = MidjourneyDownloadOperator(task_id="d", job_id=grid.job_id, destination=str(tmp_path), midjourney_conn_id=CONN)
    stored = op.execute({})  # type: ignore[arg-type]
    uid = grid.grid_url.split("/")[-2]
    assert [Path(f["uri"]).name for f in stored] == [f"{grid.job_id}_{n}.png" for n in range(1, 5)]
    for n, f in enumerate(stored):
        assert pixels((tmp_path / Path(f["uri"]).name).read_bytes()) == pixels(png_bytes(f"{uid}/0_{n}"))
        assert f["content_type"] == "image/png" and not f["skipped"] and f["url"] == grid.grid_url
    cdn = len([r for r in emulator.requests if r.path.startswith("/cdn/")])
    assert cdn == 1
    again = op.execute({})  # type: ignore[arg-type]
    assert all(f["skipped"] for f in again) and len([r for r in emulator.requests if r.path.startswith("/cdn/")]) == 1


def test_the_grid_fetch_is_retried_like_any_download(hook, emulator, tmp_path) -> None:
    grid = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="retry the cdn")).job_id)
    emulator.cdn_forbid_next(1)
    op = MidjourneyDownloadOperator(
        task_id="d", job_id=grid.job_id, destination=str(tmp_path), midjourney_conn_id=CONN, retry=FAST_RETRY
    )
    assert len(op.execute({})) == 4  # type: ignore[arg-type]
    assert [r.status for r in emulator.requests if r.path.startswith("/cdn/")] == [403, 200]


def test_without_pillow_the_error_names_the_extra_before_downloading(hook, emulator, tmp_path, monkeypatch) -> None:
    grid = finished(hook, emulator, hook.submit_job(ImagineRequest.build(prompt="no pillow")).job_id)
    monkeypatch.setitem(sys.modules, "PIL", None)
    op = MidjourneyDownloadOperator(task_id="d", job_id=grid.job_id, destination=str(tmp_path), midjourney_conn_id=CONN)
    with pytest.raises(MidjourneyError, match=PILLOW_EXTRA.replace("[", r"\[").replace("]", r"\]")):
        op.execute({})  # type: ignore[arg-type]
    assert not [r for r in emulator.requests if r.path.startswith("/cdn/")] and list(tmp_path.iterdir()) == []


# -- operators through dag.test() ------------------------------------------------------------------------

pytestmark_dag = pytest.mark.usefixtures("airflow_db", "ip_conn")
OPTS = 'midjourney_conn_id="imaginepro_default", poll_interval=0.05'


@pytestmark_dag
def test_dag_imagine_upscales_and_four_pictures(emulator, tmp_path) -> None:
    dr = run_dag(
        "ip_imagine_upscale",
        f"""
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt="a red fox", {OPTS})
        ups = [MidjourneyButtonOperator(task_id=f"u{{n}}", job_id=imagine.output["job_id"], button=f"U{{n}}", {OPTS})
               for n in range(1, 5)]
        pictures = MidjourneyDownloadOperator(task_id="pictures", job_id=imagine.output["job_id"],
                                              destination={str(tmp_path / "grid")!r}, contact_sheet=True,
                                              midjourney_conn_id="imaginepro_default")
        upscale = MidjourneyDownloadOperator(task_id="upscale", job_id=ups[0].output["job_id"],
                                             destination={str(tmp_path / "u1")!r},
                                             midjourney_conn_id="imaginepro_default")
        imagine >> ups >> pictures
        ups[0] >> upscale
    """,
    )
    assert set(task_states(dr).values()) == {"success"}
    result = xcom(dr, "imagine")
    assert result["backend"] == "imaginepro" and result["image_urls"] == [] and result["grid_url"]
    assert len({xcom(dr, f"u{n}")["job_id"] for n in range(1, 5)}) == 4
    job_id = result["job_id"]
    files = sorted(p.name for p in (tmp_path / "grid").iterdir())
    assert files == [*(f"{job_id}_{n}.png" for n in range(1, 5)), "index.html"]
    sheet = (tmp_path / "grid" / "index.html").read_text()
    assert all(f"./{job_id}_{n}.png" in sheet for n in range(1, 5)) and "a red fox" in sheet
    [upscaled] = xcom(dr, "upscale")
    assert upscaled["uri"].endswith(f"{xcom(dr, 'u1')['job_id']}_1.png")
    assert len(emulator.requests_to("POST", "/api/v1/nova/imagine")) == 1 and len(emulator.created_jobs()) == 5


@pytestmark_dag
def test_dag_blend_and_describe(emulator) -> None:
    dr = run_dag(
        "ip_blend_describe",
        f"""
        MidjourneyBlendOperator(task_id="blend", images=["https://e.x/a.png", "https://e.x/b.png"], {OPTS})
        MidjourneyDescribeOperator(task_id="describe", image="https://e.x/a.png", {OPTS})
    """,
    )
    assert task_states(dr) == {"blend": "success", "describe": "success"}
    assert xcom(dr, "blend")["grid_url"] and len(xcom(dr, "describe")["prompts"]) == 4


@pytestmark_dag
def test_dag_timeout_presses_cancel_job(emulator) -> None:
    emulator.never_finish = True
    dr = run_dag(
        "ip_timeout",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt="takes forever", timeout=0.5, {OPTS})
    """,
    )
    assert task_states(dr) == {"imagine": "failed"}
    [cancel] = emulator.requests_to("POST", "/api/v1/nova/button")
    assert cancel.json is not None and cancel.json["button"] == CANCEL_BUTTON and cancel.status == 200
    [job] = emulator.created_jobs()
    assert job["status"] == "failed"


@pytestmark_dag
def test_dag_retry_after_polling_errors_reattaches(emulator) -> None:
    # The job is done before the trigger gives up (2 polls 0.05 s apart), so on every Airflow
    # version the retry finds it: by its stored id (3.3+) or by its ref in the history.
    emulator.timings = JobTimings(start_after=0.005, progress_after=0.01, complete_after=0.02)
    emulator.fail_next(2, status=502, path_prefix="/api/v1/message/fetch/", method="GET")
    dr = run_dag(
        "ip_retry_polling",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt="reattach me", retries=1, retry_delay=timedelta(0),
                                  max_consecutive_errors=2, {OPTS})
    """,
    )
    assert task_states(dr) == {"imagine": "success"}
    assert len(emulator.requests_to("POST", "/api/v1/nova/imagine")) == 1 and len(emulator.created_jobs()) == 1


@pytestmark_dag
def test_dag_retry_after_a_lost_creation_answer_finds_the_job_by_ref(emulator) -> None:
    emulator.timings = JobTimings(start_after=0.005, progress_after=0.01, complete_after=0.02)
    emulator.drop_next(1, path_prefix="/api/v1/nova/imagine", after_handling=True)
    dr = run_dag(
        "ip_retry_lost_answer",
        f"""
        MidjourneyImagineOperator(task_id="imagine", prompt="answer lost", retries=1, retry_delay=timedelta(0), {OPTS})
    """,
    )
    assert task_states(dr) == {"imagine": "success"}
    assert len(emulator.created_jobs()) == 1
    [job] = emulator.created_jobs()
    assert job["request"]["ref"].startswith("airflow:ip_retry_lost_answer/")
