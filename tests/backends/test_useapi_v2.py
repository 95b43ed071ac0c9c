"""The useapi.net v2/v1 backend: the hook against the emulator, the vendor's contract, and dag.test() runs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from airflow_provider_midjourney.exceptions import (
    AirflowFailException,
    MidjourneyBusyError,
    MidjourneyConfigurationError,
    MidjourneyInvalidRequestError,
    MidjourneyMalformedAnswerError,
    MidjourneySubmitUncertainError,
    MidjourneyUnsupportedError,
)
from airflow_provider_midjourney.hooks.base import Capability, hook_for_connection
from airflow_provider_midjourney.hooks.useapi_v2 import (
    UseapiV2Hook,
    UseapiV2PendingModerationError,
    UseapiV2QueuedUntrackedError,
)
from airflow_provider_midjourney.hooks.useapi_v2_models import V2Job
from airflow_provider_midjourney.image_intake import ImageBlob
from airflow_provider_midjourney.job_requests import (
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    ImagineRequest,
    SeedRequest,
    SettingsRequest,
)
from airflow_provider_midjourney.testing import MidjourneyEmulator
from airflow_provider_midjourney.testing.useapi_v2 import QUEUED_NOT_TRACKED
from airflow_provider_midjourney.vocabulary import JobStatus
from tests.conftest import FAST_RETRY, TOKEN
from tests.dag_runs import run_dag, task_states, xcom

FIXTURES = Path(__file__).parents[1] / "fixtures" / "useapi_v2"
CONN_ID = "midjourney_useapi_v2_default"
DISCORD = "discord-SECRET-token-4Rz9"
SERVER = "1234567890123456789"
IMAGE = "https://example.com/cat.png"
PNG = ImageBlob(content=b"\x89PNG\r\n\x1a\n" + b"0" * 64, filename="cat.png", content_type="image/png")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def v2_connection(emulator: MidjourneyEmulator, version: str = "v2", **extra: Any) -> str:
    extras = {"api_version": version, "discord_token": DISCORD, "server": SERVER, "channel": emulator.channels[0]}
    if "discord" in extra:  # the API's own field name, accepted as the extra's name too
        extras.pop("discord_token")
    extras.update({"max_jobs": 3, **extra})
    return json.dumps(
        {"conn_type": "midjourney_useapi_v2", "host": emulator.base_url, "password": TOKEN, "extra": extras}
    )


@pytest.fixture(params=["v2", "v1"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def v2_conn(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch, version: str) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_USEAPI_V2_DEFAULT", v2_connection(emulator, version))
    return CONN_ID


@pytest.fixture
def hook(v2_conn: str) -> Iterator[UseapiV2Hook]:
    with UseapiV2Hook(v2_conn, retry=FAST_RETRY) as hook:
        yield hook


def completed(hook: UseapiV2Hook, request: Any) -> Any:
    job = hook.submit_job(request)
    deadline = time.monotonic() + 10
    while not job.is_terminal and time.monotonic() < deadline:
        time.sleep(0.02)
        job = hook.fetch_job(job.job_id)
    assert job.status == JobStatus.COMPLETED, job
    return job


def raw(emulator: MidjourneyEmulator, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=emulator.base_url, headers=headers, timeout=10) as client:
        return client.request(method, path, **kwargs)


# -- the vendor's own samples (tests/fixtures/useapi_v2, see build_useapi_v2_fixtures.py) ---------------


def test_v1_page_samples_normalise() -> None:
    # The page's samples say "<jobid>" where an id goes: a real answer with that id is refused (class 9 of #18).
    pages = json.loads(json.dumps(fixture("v1-samples.json")).replace("<jobid>", "job-1"))
    [started] = pages["jobs-imagine"]["samples"]["200"]
    job = V2Job.model_validate(started).normalised("useapi_v2", http_status=200)
    assert (job.status, job.verb, job.prompt, job.is_terminal) == (JobStatus.STARTED, "imagine", "Steampunk cat", False)
    [moderated] = pages["jobs-imagine"]["samples"]["422"]
    job = V2Job.model_validate(moderated).normalised("useapi_v2", http_status=422)
    assert job.status == JobStatus.MODERATED and job.is_terminal and job.job_id == "job-1"
    assert job.error == "Unable to find posted message, likely moderated or invalid prompt"
    [button] = pages["jobs-button"]["samples"]["200"]
    job = V2Job.model_validate(button).normalised("useapi_v2")
    assert (job.status, job.verb) == (JobStatus.STARTED, "button")
    assert len(pages["jobs-button"]["samples"]["400"]) == 2


@pytest.mark.parametrize(
    ("status", "normalised", "terminal"),
    [
        ("created", "created", False),
        ("started", "started", False),
        ("progress", "progress", False),
        ("completed", "completed", True),
        ("failed", "failed", True),
        ("cancelled", "failed", True),
        ("moderated", "moderated", True),
        ("queued-somewhere", "queued-somewhere", False),
    ],
)
def test_every_documented_status_and_an_unknown_one(status: str, normalised: str, terminal: bool) -> None:
    enum = fixture("v2-responses.json")["responses"]["GET /jobs/"]["200"]["properties"]["status"]["enum"]
    assert status in enum or status == "queued-somewhere"
    job = V2Job.model_validate({"jobid": "j1", "verb": "imagine", "status": status}).normalised("useapi_v2")
    assert (str(job.status), job.is_terminal) == (normalised, terminal)


def test_grid_is_attachment_zero_and_progress_comes_from_content() -> None:
    grid = {"url": "https://cdn.discordapp.com/g.png", "content_type": "image/png"}
    done = {
        "jobid": "j2",
        "verb": "imagine",
        "status": "completed",
        "attachments": [grid],
        "content": "**cat** - (fast)",
    }
    job = V2Job.model_validate(done).normalised("useapi_v2")
    assert job.grid_url == grid["url"] and job.image_urls == [] and job.prompt == "cat"
    running = {"jobid": "j2", "verb": "imagine", "status": "progress", "content": "**cat** - <@1> (62%) (fast)"}
    job = V2Job.model_validate(running).normalised("useapi_v2")
    assert job.progress_percent == 62 and job.grid_url is None
    seed = {"jobid": "j3", "verb": "seed_async", "status": "completed", "seed": {"content": "x", "value": "42"}}
    seed["attachments"] = [dict(grid, url=f"https://cdn/{n}.png") for n in range(4)]
    job = V2Job.model_validate(seed).normalised("useapi_v2")
    assert job.seed == 42 and len(job.image_urls) == 4 and job.grid_url is None and job.to_xcom()["seed"] == 42


# -- the emulator answers in the vendor's shapes ----------------------------------------------------------


def _schema(version: str, operation: str, status: int) -> dict[str, Any]:
    schema = fixture(f"{version}-responses.json")["responses"][operation][str(status)]
    assert schema is not None

    def loosen(node: Any) -> Any:
        # v1 is routed to v2 since March 2024 (answers carry v2's extra fields): keep v1's required
        # fields, types and enums, drop additionalProperties: false.
        if isinstance(node, dict):
            return {k: loosen(v) for k, v in node.items() if not (version == "v1" and k == "additionalProperties")}
        return [loosen(v) for v in node] if isinstance(node, list) else node

    return loosen(schema)  # type: ignore[no-any-return]


def _valid(version: str, operation: str, response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    jsonschema.validate(body, _schema(version, operation, response.status_code))
    return body  # type: ignore[no-any-return]


def test_emulator_answers_match_the_openapi_files(emulator: MidjourneyEmulator, version: str) -> None:
    account = {"discord": DISCORD, "server": SERVER, "channel": emulator.channels[0]}
    submitted = _valid(
        version,
        "POST /jobs/imagine",
        raw(emulator, "POST", f"/{version}/jobs/imagine", json={"prompt": "a fox", **account}),
    )
    jobid = submitted["jobid"]
    assert submitted["status"] == "started" and submitted["discord"] != DISCORD
    emulator.complete_job(jobid)
    job = _valid(version, "GET /jobs/", raw(emulator, "GET", f"/{version}/jobs/", params={"jobid": jobid}))
    assert job["attachments"][0]["url"].endswith("grid_0.png") and "imageUx" not in job
    button = raw(emulator, "POST", f"/{version}/jobs/button", json={"jobid": jobid, "button": "U2"})
    _valid(version, "POST /jobs/button", button)
    again = raw(emulator, "POST", f"/{version}/jobs/button", json={"jobid": jobid, "button": "U2"})
    assert again.status_code == 409 and again.json()["jobid"] == button.json()["jobid"]
    emulator.never_finish = True  # still running when GET /jobs lists them
    blend = {"blendUrls": [IMAGE, IMAGE], "blendDimensions": "Landscape", **account}
    blended = _valid(version, "POST /jobs/blend", raw(emulator, "POST", f"/{version}/jobs/blend", json=blend))
    describe = raw(emulator, "POST", f"/{version}/jobs/describe", json={"describeUrl": IMAGE, **account})
    _valid(version, "POST /jobs/describe", describe)
    running = _valid(version, "GET /jobs", raw(emulator, "GET", f"/{version}/jobs"))
    assert blended["jobid"] in running
    cancelled = _valid(
        version,
        "GET /jobs/cancel/",
        raw(emulator, "GET", f"/{version}/jobs/cancel/", params={"jobid": blended["jobid"]}),
    )
    assert cancelled["status"] == "cancelled"
    assert raw(emulator, "GET", f"/{version}/jobs/", params={"jobid": "j404"}).status_code == 404
    assert raw(emulator, "GET", f"/{version}/jobs/").json() == {"error": "Query param jobid not provided", "code": 400}


def test_emulator_v2_only_parts(emulator: MidjourneyEmulator) -> None:
    moderated = raw(emulator, "POST", "/v2/jobs/imagine", json={"prompt": "something forbidden"})
    body = _valid("v2", "POST /jobs/imagine", moderated)
    assert moderated.status_code == 422 and body["status"] == "moderated"
    assert raw(emulator, "GET", "/v2/jobs/", params={"jobid": body["jobid"]}).json()["status"] == "moderated"
    info = raw(emulator, "POST", "/v2/jobs/info", json={})
    assert info.status_code == 200 and _valid("v2", "POST /jobs/info", info)["status"] == "completed"
    assert raw(emulator, "POST", "/v1/jobs/seed_async", json={"jobid": "x"}).status_code == 404
    v1 = raw(emulator, "POST", "/v1/jobs/imagine", json={"prompt": "no account"})
    assert (v1.status_code, v1.json()) == (412, {"error": "discord is missing", "code": 412})
    emulator.set_channel_limits(emulator.channels[0], max_jobs=1, max_image_jobs=1)
    emulator.never_finish = True
    first = raw(emulator, "POST", "/v2/jobs/imagine", json={"prompt": "one"}).json()["jobid"]
    busy = raw(emulator, "POST", "/v2/jobs/imagine", json={"prompt": "two"})
    assert busy.status_code == 429 and busy.json()["executingJobs"] == [first]
    unauthorised = httpx.get(f"{emulator.base_url}/v2/jobs")
    assert (unauthorised.status_code, unauthorised.json()) == (401, {"error": "Unauthorized", "code": 401})
    # the v3 emulator's CDN proxy under /v1/ still answers beside the v1 job routes
    proxy = raw(emulator, "GET", "/v1/proxy/cdn-midjourney/", params={"cdnUrl": "https://cdn.midjourney.com/x/0_0.png"})
    assert proxy.status_code == 200 and proxy.headers["content-type"] == "image/png"


# -- the hook --------------------------------------------------------------------------------------------


def test_every_job_kind_through_the_hook(hook: UseapiV2Hook, emulator: MidjourneyEmulator, version: str) -> None:
    imagine = completed(hook, ImagineRequest.build(prompt="a red fox", reply_ref="ref-1"))
    assert (
        imagine.grid_url and imagine.image_urls == [] and imagine.reply_ref == "ref-1" and imagine.prompt == "a red fox"
    )
    [sent] = emulator.requests_to("POST", f"/{version}/jobs/imagine")
    assert sent.json == {
        "prompt": "a red fox",
        "discord": "dis...Rz9",  # as the emulator records it: the hook sent the real token
        "server": SERVER,
        "channel": emulator.channels[0],
        "maxJobs": 3,
        "replyRef": "ref-1",
    }
    upscale = completed(hook, ButtonRequest.build(job_id=imagine.job_id, button="U3"))
    assert len(upscale.image_urls) == 1 and upscale.verb == "button"
    assert hook.submit_job(ButtonRequest.build(job_id=imagine.job_id, button="U3")).job_id == upscale.job_id
    assert hook.fetch_job(imagine.job_id).children == {"U3": upscale.job_id}
    blend = completed(hook, BlendRequest.from_images([IMAGE, IMAGE, IMAGE], blend_dimensions="Portrait"))
    assert blend.grid_url and blend.verb == "blend"
    [sent] = emulator.requests_to("POST", f"/{version}/jobs/blend")
    assert sent.json and sent.json["blendUrls"] == [IMAGE] * 3 and sent.json["blendDimensions"] == "Portrait"
    describe = completed(hook, DescribeRequest.from_image(IMAGE))
    assert len(describe.prompts) == 4 and describe.to_xcom()["prompts"] == describe.prompts
    if version == "v2":
        zoom = completed(
            hook, ButtonRequest.build(job_id=upscale.job_id, button="Custom Zoom", prompt="fox --zoom 1.8")
        )
        assert zoom.grid_url and emulator.requests_to("POST", "/v2/jobs/button")[-1].json["prompt"] == "fox --zoom 1.8"  # type: ignore[index]
        seed = completed(hook, SeedRequest.build(job_id=imagine.job_id))
        assert isinstance(seed.seed, int) and len(seed.image_urls) == 4 and seed.grid_url is None
        assert hook.fetch_job(imagine.job_id).children == {"U3": upscale.job_id}  # buttons only, not the seed
        info = hook.submit_job(SettingsRequest.build(command="info"))
        assert info.status == JobStatus.COMPLETED and info.settings == {"relax": False, "fast": True, "turbo": False}
        relax = hook.submit_job(SettingsRequest.build(command="relax"))
        assert relax.to_xcom()["settings"] == {"relax": True, "fast": False, "turbo": False}
    assert {r.path.split("/")[1] for r in emulator.requests} == {version}


def test_async_poll_list_and_cancel(hook: UseapiV2Hook, emulator: MidjourneyEmulator, version: str) -> None:
    emulator.never_finish = True
    job = hook.submit_job(ImagineRequest.build(prompt="slow", reply_ref="find-me"))

    async def go() -> tuple[Any, set[str] | None]:
        async with UseapiV2Hook(CONN_ID, retry=FAST_RETRY) as other:
            fetched = await other.afetch_job(job.job_id)
            running = await other.alist_running_job_ids()
            await other.acancel(job.job_id)
            return fetched, running

    fetched, running = asyncio.run(go())
    assert fetched.job_id == job.job_id and running == {job.job_id}
    assert hook.find_job_by_reply_ref("find-me") is None  # cancelled: no longer running
    after = hook.fetch_job(job.job_id)
    assert after.status == JobStatus.FAILED and after.error == "Job cancelled by user"
    assert emulator.requests_to("GET", f"/{version}/jobs/cancel/")[0].query == {"jobid": job.job_id}


def test_find_job_by_reply_ref(hook: UseapiV2Hook, emulator: MidjourneyEmulator) -> None:
    emulator.never_finish = True
    hook.submit_job(ImagineRequest.build(prompt="other", reply_ref="not-mine"))
    mine = hook.submit_job(ImagineRequest.build(prompt="mine", reply_ref="mine"))
    found = hook.find_job_by_reply_ref("mine")
    assert found is not None and found.job_id == mine.job_id
    assert hook.find_job_by_reply_ref("nobody") is None


@pytest.mark.parametrize(
    ("request_args", "fragment"),
    [
        ({"kind": ImagineRequest, "prompt": "x", "reply_level": "all"}, r"replyLevel \(reply_level\)"),
        ({"kind": ButtonRequest, "job_id": "j1", "button": "Vary (Region)", "mask": "bWFzaw=="}, "button: "),
        ({"kind": ButtonRequest, "job_id": "j1", "button": "V1", "prompt": "remix"}, "prompt: "),
        ({"kind": DescribeRequest, "image_blob": PNG}, "'upload_files' capability"),
        ({"kind": SettingsRequest, "command": "remix"}, "(command: |api_version to 'v2')"),
        ({"kind": SettingsRequest, "command": "settings"}, "(type 'midjourney'|api_version to 'v2')"),
    ],
)
def test_what_the_api_cannot_take_fails_before_any_request(
    hook: UseapiV2Hook, emulator: MidjourneyEmulator, request_args: dict[str, Any], fragment: str
) -> None:
    args = dict(request_args)
    kind = args.pop("kind")
    with pytest.raises(MidjourneyInvalidRequestError, match=fragment):
        hook.submit_job(kind.build(**args))
    assert emulator.requests == []


def test_v1_limits_before_any_request(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_USEAPI_V2_DEFAULT", v2_connection(emulator, "v1"))
    hook = UseapiV2Hook(retry=FAST_RETRY)
    with pytest.raises(MidjourneyUnsupportedError, match="api_version to 'v2'"):
        hook.submit_job(SeedRequest.build(job_id="j1"))
    with pytest.raises(MidjourneyInvalidRequestError, match="at most 1024 characters"):
        hook.submit_job(ImagineRequest.build(prompt="x" * 1025))
    with pytest.raises(MidjourneyInvalidRequestError, match=r"button: .*'Custom Zoom'"):
        hook.submit_job(ButtonRequest.build(job_id="j1", button="Custom Zoom", prompt="a --zoom 2"))
    assert Capability.SEED not in hook.supported_capabilities()
    monkeypatch.setenv(
        "AIRFLOW_CONN_MIDJOURNEY_USEAPI_V2_DEFAULT", v2_connection(emulator, "v1", discord="", channel="")
    )
    with pytest.raises(MidjourneyInvalidRequestError, match=r"^discord, channel: the v1 API needs"):
        UseapiV2Hook().submit_job(ImagineRequest.build(prompt="no account"))
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"api_version": "v3"}, "extra 'api_version' must be 'v2' or 'v1'"),
        ({"max_jobs": 16}, "extra 'max_jobs' must be a whole number from 1 to 15"),
        ({"max_jobs": "three"}, "extra 'max_jobs'"),
        ({"server": "my-server"}, "extra 'server' must be a Discord id"),
    ],
)
def test_bad_connection_extras_are_named(
    emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], fragment: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_USEAPI_V2_DEFAULT", v2_connection(emulator, **extra))
    with pytest.raises(MidjourneyInvalidRequestError, match=fragment):
        UseapiV2Hook().submit_job(ImagineRequest.build(prompt="x"))
    assert emulator.requests == []


def test_a_discord_token_with_a_line_break_is_refused_without_echoing_it(
    emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MIDJOURNEY_USEAPI_V2_DEFAULT", v2_connection(emulator, discord="abc\ndef-SECRET-9")
    )
    with pytest.raises(MidjourneyConfigurationError, match="extra 'discord'") as info:
        UseapiV2Hook().submit_job(ImagineRequest.build(prompt="x"))
    assert "SECRET" not in str(info.value) and emulator.requests == []


def test_malformed_answers(hook: UseapiV2Hook, emulator: MidjourneyEmulator, version: str) -> None:
    emulator.malformed_next(1, path_prefix=f"/{version}/jobs/imagine", method="POST", kind="missing_fields")
    with pytest.raises(MidjourneySubmitUncertainError, match="not sent again") as info:
        hook.submit_job(ImagineRequest.build(prompt="lost in a bad answer", reply_ref="bad-answer"))
    assert info.value.reply_ref == "bad-answer" and len(emulator.created_jobs()) == 1
    [job] = emulator.created_jobs()
    emulator.malformed_next(1, path_prefix=f"/{version}/jobs/", kind="html")
    with pytest.raises(MidjourneyMalformedAnswerError, match="not JSON"):  # transient: the next poll may be fine
        hook.fetch_job(job["jobid"])
    assert hook.fetch_job(job["jobid"]).job_id == job["jobid"]


def test_moderated_at_submit_is_terminal_and_not_resent(
    hook: UseapiV2Hook, emulator: MidjourneyEmulator, version: str
) -> None:
    job = hook.submit_job(ImagineRequest.build(prompt="a forbidden fox"))
    assert job.status == JobStatus.MODERATED and job.is_terminal and job.code == 422
    assert len(emulator.requests_to("POST", f"/{version}/jobs/imagine")) == 1 and len(emulator.created_jobs()) == 1
    assert hook.fetch_job(job.job_id).status == JobStatus.MODERATED


def test_429_is_retried_and_504_is_not(hook: UseapiV2Hook, emulator: MidjourneyEmulator, version: str) -> None:
    path = f"/{version}/jobs/imagine"
    emulator.fail_next(2, status=429, path_prefix=path, error="Maximum of 3 jobs executing in parallel supported")
    assert hook.submit_job(ImagineRequest.build(prompt="busy")).status == JobStatus.STARTED
    assert [r.status for r in emulator.requests_to("POST", path)] == [429, 429, 200]
    emulator.fail_next(9, status=429, path_prefix=path)
    with pytest.raises(MidjourneyBusyError):
        hook.submit_job(ImagineRequest.build(prompt="always busy"))
    emulator.reset()
    emulator.fail_next(1, status=504, path_prefix=path, error=QUEUED_NOT_TRACKED)
    with pytest.raises(UseapiV2QueuedUntrackedError, match="not resubmitted") as info:
        hook.submit_job(ImagineRequest.build(prompt="queued"))
    assert isinstance(info.value, AirflowFailException) and "will still be processed by Midjourney" in str(info.value)
    assert len(emulator.requests_to("POST", path)) == 1


def test_596_names_the_fix_and_reset_clears_it(hook: UseapiV2Hook, emulator: MidjourneyEmulator) -> None:
    channel = emulator.channels[0]
    emulator.lock_channel(channel, "Pending mod message")
    with pytest.raises(UseapiV2PendingModerationError, match=r"POST /v2/account/midjourney/<channel>/reset"):
        hook.submit_job(ImagineRequest.build(prompt="locked"))
    hook.reset_pending_mod_message(channel)
    assert hook.submit_job(ImagineRequest.build(prompt="unlocked")).status == JobStatus.STARTED


def test_secrets_stay_out_of_errors_and_reprs(hook: UseapiV2Hook, emulator: MidjourneyEmulator, version: str) -> None:
    emulator.fail_next(1, status=400, path_prefix=f"/{version}/jobs/imagine", error=f"bad token {DISCORD} / {TOKEN}")
    with pytest.raises(Exception) as info:
        hook.submit_job(ImagineRequest.build(prompt="x"))
    assert DISCORD not in str(info.value) and TOKEN not in str(info.value) and "***" in str(info.value)
    assert DISCORD not in repr(hook.connection_settings) and TOKEN not in repr(hook.connection_settings)
    job = completed(hook, ImagineRequest.build(prompt="y"))
    assert DISCORD not in json.dumps(job.to_xcom()) and DISCORD not in json.dumps(job.to_event())


def test_connection_test_button(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_USEAPI_V2_DEFAULT", v2_connection(emulator, version))
    ok, message = UseapiV2Hook().test_connection()
    assert ok and message.startswith(f"Connected to the useapi.net Midjourney API {version}")
    assert [r.path for r in emulator.requests] == [f"/{version}/jobs"]
    wrong = json.loads(v2_connection(emulator, version))
    wrong["password"] = "wrong-token-123"
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_USEAPI_V2_DEFAULT", json.dumps(wrong))
    ok, message = UseapiV2Hook().test_connection()
    assert not ok and "refused the API token (401" in message and "wrong-token" not in message
    wrong.update(password=TOKEN, host=f"{emulator.base_url}/api")
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_USEAPI_V2_DEFAULT", json.dumps(wrong))
    ok, message = UseapiV2Hook().test_connection()
    assert not ok and "does not look like the useapi.net Midjourney API" in message


def test_connection_type_picks_this_hook(v2_conn: str, emulator: MidjourneyEmulator) -> None:
    hook = hook_for_connection(v2_conn, retry=FAST_RETRY)
    assert isinstance(hook, UseapiV2Hook) and hook.backend == "useapi_v2"
    assert hook.submit_job(ImagineRequest.build(prompt="picked")).backend == "useapi_v2"


# -- operators through dag.test() ------------------------------------------------------------------------


def run_dag_v2(name: str, body: str) -> Any:
    return run_dag(name, body, conn_id=CONN_ID)


@pytest.mark.usefixtures("airflow_db")
def test_dag_imagine_upscales_seed_and_downloads(
    emulator: MidjourneyEmulator, v2_conn: str, tmp_path: Path, version: str
) -> None:
    seed = (
        f"""
        seed = MidjourneySeedOperator(task_id="seed", job_id=imagine.output["job_id"], midjourney_conn_id=C,
                                      poll_interval=0.05)
        seed_files = MidjourneyDownloadOperator(task_id="seed_files", job_id=seed.output["job_id"],
                                                midjourney_conn_id=C, destination="{tmp_path}/seed")
        imagine >> seed >> seed_files
        """
        if version == "v2"
        else ""
    )
    dr = run_dag_v2(
        f"useapi_{version}_imagine",
        f"""
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt="a lighthouse", midjourney_conn_id=C,
                                            poll_interval=0.05)
        grid = MidjourneyDownloadOperator(task_id="grid", job_id=imagine.output["job_id"], kind="grid",
                                          midjourney_conn_id=C, destination="{tmp_path}/grid")
        imagine >> grid
        for n in range(1, 5):  # waiting in the worker: the imagine and seed tasks cover the triggerer
            up = MidjourneyButtonOperator(task_id=f"u{{n}}", job_id=imagine.output["job_id"], button=f"U{{n}}",
                                          midjourney_conn_id=C, poll_interval=0.05, deferrable=False)
            imagine >> up
        files = MidjourneyDownloadOperator(task_id="files", job_id=up.output["job_id"], midjourney_conn_id=C,
                                           destination="{tmp_path}/u4")
        up >> files
        """
        + seed,
    )
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    result = xcom(dr, "imagine")
    assert result["backend"] == "useapi_v2" and result["grid_url"] and result["status"] == "completed"
    upscales = [xcom(dr, f"u{n}") for n in range(1, 5)]
    assert len({u["job_id"] for u in upscales}) == 4 and all(len(u["image_urls"]) == 1 for u in upscales)
    [stored] = xcom(dr, "files")
    assert stored["url"] == upscales[3]["image_urls"][0] and stored["content_type"] == "image/png"
    assert len(list((tmp_path / "grid").glob("*.png"))) == 1
    expected = {"imagine": 1, "button": 4}
    if version == "v2":
        assert isinstance(xcom(dr, "seed")["seed"], int) and len(list((tmp_path / "seed").glob("*.png"))) == 4
        expected["seed"] = 1
    assert {verb: len(emulator.created_jobs(verb)) for verb in expected} == expected


@pytest.mark.usefixtures("airflow_db")
def test_dag_blend_and_describe(emulator: MidjourneyEmulator, v2_conn: str, version: str) -> None:
    dr = run_dag_v2(
        f"useapi_{version}_blend_describe",
        f"""
        MidjourneyBlendOperator(task_id="blend", images=[{IMAGE!r}, {IMAGE!r}], dimensions="Landscape",
                                midjourney_conn_id=C, poll_interval=0.05)
        MidjourneyDescribeOperator(task_id="describe", image={IMAGE!r}, midjourney_conn_id=C, poll_interval=0.05)
        """,
    )
    assert task_states(dr) == {"blend": "success", "describe": "success"}
    assert xcom(dr, "blend")["grid_url"] and len(xcom(dr, "describe")["prompts"]) == 4
    [sent] = emulator.requests_to("POST", f"/{version}/jobs/blend")
    assert sent.json and sent.json["blendDimensions"] == "Landscape"


@pytest.mark.usefixtures("airflow_db")
def test_dag_moderation_is_never_resubmitted(emulator: MidjourneyEmulator, v2_conn: str, version: str) -> None:
    dr = run_dag_v2(
        f"useapi_{version}_moderated",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="something forbidden", retries=3, retry_delay=timedelta(0),
                                  midjourney_conn_id=C, poll_interval=0.05)
        """,
    )
    assert task_states(dr) == {"imagine": "failed"}
    assert len(emulator.requests_to("POST", f"/{version}/jobs/imagine")) == 1
    assert len(emulator.created_jobs("imagine")) == 1


@pytest.mark.usefixtures("airflow_db")
def test_dag_504_fails_once_without_a_second_job(emulator: MidjourneyEmulator, v2_conn: str, version: str) -> None:
    emulator.fail_next(1, status=504, path_prefix=f"/{version}/jobs/imagine", error=QUEUED_NOT_TRACKED)
    dr = run_dag_v2(
        f"useapi_{version}_504",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="queued", retries=2, retry_delay=timedelta(0),
                                  midjourney_conn_id=C, poll_interval=0.05)
        """,
    )
    assert task_states(dr) == {"imagine": "failed"}
    assert len(emulator.requests_to("POST", f"/{version}/jobs/imagine")) == 1


@pytest.mark.usefixtures("airflow_db")
def test_dag_timeout_cancels_the_job(emulator: MidjourneyEmulator, v2_conn: str, version: str) -> None:
    emulator.never_finish = True
    dr = run_dag_v2(
        f"useapi_{version}_timeout",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="takes forever", timeout=0.5, midjourney_conn_id=C,
                                  poll_interval=0.05)
        """,
    )
    assert task_states(dr) == {"imagine": "failed"}
    [job] = emulator.created_jobs("imagine")
    cancels = emulator.requests_to("GET", f"/{version}/jobs/cancel/")
    assert [(r.status, r.query) for r in cancels] == [(200, {"jobid": job["jobid"]})]
    assert raw(emulator, "GET", f"/{version}/jobs/", params={"jobid": job["jobid"]}).json()["status"] == "cancelled"


@pytest.mark.usefixtures("airflow_db")
def test_dag_retry_reattaches_without_a_duplicate(emulator: MidjourneyEmulator, v2_conn: str, version: str) -> None:
    # Still running when the retry looks: Airflow < 3.3 finds it among the running jobs by replyRef.
    emulator.timings = emulator.timings.__class__(start_after=0.05, progress_after=0.1, complete_after=4.0)
    emulator.drop_next(1, path_prefix=f"/{version}/jobs/imagine", after_handling=True)
    dr = run_dag_v2(
        f"useapi_{version}_retry",
        """
        MidjourneyImagineOperator(task_id="imagine", prompt="answer lost", retries=1, retry_delay=timedelta(0),
                                  midjourney_conn_id=C, poll_interval=0.05)
        """,
    )
    assert task_states(dr) == {"imagine": "success"}
    assert len(emulator.requests_to("POST", f"/{version}/jobs/imagine")) == 1
    [job] = emulator.created_jobs("imagine")
    assert job["request"]["replyRef"].startswith(f"airflow:useapi_{version}_retry/")
    assert xcom(dr, "imagine")["job_id"] == job["jobid"]
