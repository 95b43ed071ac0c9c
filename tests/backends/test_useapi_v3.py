"""useapi.net v3 on the wire: the docs' samples parse, and the hook against the emulator, endpoint by endpoint."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import pytest

from airflow_provider_midjourney.exceptions import (
    MidjourneyAuthError,
    MidjourneyChannelLockedError,
    MidjourneyConflictError,
    MidjourneyError,
    MidjourneyExpiredError,
    MidjourneyInvalidRequestError,
    MidjourneyNotFoundError,
    MidjourneySubscriptionError,
    MidjourneyValidationError,
)
from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook, base_url_from_host
from airflow_provider_midjourney.hooks.useapi_v3_models import Account, Job, RunningJobs, SSEEvent
from airflow_provider_midjourney.vocabulary import Button, JobStatus, Verb
from tests.conftest import FAST_RETRY, TOKEN, connection_json
from tests.doc_samples import job_samples, samples

JOB_ID = "j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney"
JOB_SAMPLES = job_samples()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def completed(page: str) -> Job:
    [job] = [Job.model_validate(s.data) for s in JOB_SAMPLES if s.page == page and s.data["status"] == "completed"]
    return job


# -- every sample parses ----------------------------------------------------------------------


def test_the_docs_hold_samples_of_every_job_endpoint() -> None:
    pages = {s.page for s in JOB_SAMPLES}
    verbs = ["imagine", "button", "blend", "describe", "seed", "settings", "info", "fast", "relax", "turbo", "remix"]
    assert {f"post-midjourney-jobs-{v}" for v in [*verbs, "variability"]} <= pages
    assert len(JOB_SAMPLES) >= 50


@pytest.mark.parametrize("sample", JOB_SAMPLES, ids=lambda s: s.id)
def test_every_job_sample_parses_and_keeps_unknown_fields(sample) -> None:
    job = Job.model_validate(sample.data)
    assert job.jobid == sample.data["jobid"]
    assert job.status.is_known and job.verb.is_known
    dumped = job.model_dump(mode="json")
    if sample.data.get("response"):
        # Discord fields the model does not name (webhook_id, mentions, ...) survive a round trip.
        assert set(sample.data["response"]) <= set(dumped["response"])


@pytest.mark.parametrize("sample", [s for s in samples() if s.kind == "sse"], ids=lambda s: s.id)
def test_every_sse_event_parses(sample) -> None:
    event = SSEEvent.model_validate(sample.data)
    assert event.event in {"initialized", "midjourney_created", "midjourney_progress", "midjourney_completed"}
    assert (event.job is None) == (event.event == "initialized")


def test_running_jobs_and_accounts_samples() -> None:
    [running] = [s.data for s in samples("get-midjourney-jobs") if "total" in s.data]
    jobs = RunningJobs.model_validate(running)
    assert jobs.total == 2 and len(jobs.job_ids) == 2
    assert jobs.channels["1234567890123456789"].maxImageJobs == 3
    [accounts] = [s.data for s in samples("get-midjourney-accounts") if "error" not in s.data]
    parsed = {k: Account.model_validate(v) for k, v in accounts.items()}
    assert parsed["9876543210987654321"].error == "Pending mod message"
    assert parsed["1234567890123456789"].discord == "MTI...xyz"


# -- derived values on the docs' samples ------------------------------------------------------


def test_imagine_sample_derived_values() -> None:
    job = completed("post-midjourney-jobs-imagine")
    assert job.is_terminal and job.jobType == "image"
    assert job.image_urls == [
        f"https://cdn.midjourney.com/xxxxxxxx-xxxx-xxxx-xxxx-bbd798ffcb5d/0_{i}.jpeg" for i in range(4)
    ]
    assert job.grid_url and job.grid_url.endswith("bbd798ffcb5d.png")
    assert job.buttons == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
    assert job.seed is None and job.prompts == [] and job.settings == {} and job.video_urls == []


def test_image_urls_follow_ids_not_list_order() -> None:
    data = completed("post-midjourney-jobs-imagine").model_dump(mode="json")
    data["response"]["imageUx"].reverse()
    assert [u[-6:] for u in Job.model_validate(data).image_urls] == ["0.jpeg", "1.jpeg", "2.jpeg", "3.jpeg"]


def test_seed_is_parsed_from_content_or_taken_from_response() -> None:
    job = completed("post-midjourney-jobs-seed")
    assert job.seed == 3937070146
    data = job.model_dump(mode="json")
    data["response"]["seed"] = 42
    assert Job.model_validate(data).seed == 42


def test_describe_prompts_come_from_the_embed() -> None:
    prompts = completed("post-midjourney-jobs-describe").prompts
    assert len(prompts) == 4
    assert prompts[0].startswith("a vintage bmw motorcycle from the early showa era")
    assert prompts[3].endswith("in the style of bmw. --ar 16:9")
    assert not any("2️⃣" in p for p in prompts)


def test_describe_prompts_fall_back_to_content() -> None:
    data = {
        "jobid": JOB_ID,
        "verb": "describe",
        "status": "completed",
        "response": {"content": "1⃣ one\n\n2⃣ two\n\n3⃣ three\n\n4⃣ four"},
    }
    assert Job.model_validate(data).prompts == ["one", "two", "three", "four"]


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("post-midjourney-jobs-fast", {"fast": True, "relax": False, "turbo": False}),
        ("post-midjourney-jobs-relax", {"fast": False, "relax": True, "turbo": False}),
        ("post-midjourney-jobs-turbo", {"fast": False, "relax": False, "turbo": True}),
        ("post-midjourney-jobs-info", {"fast": False, "relax": True, "turbo": False}),
        ("post-midjourney-jobs-remix", {"remix": True}),
        ("post-midjourney-jobs-variability", {"variability": True}),
    ],
)
def test_settings_family_samples(page: str, expected: dict[str, bool]) -> None:
    assert completed(page).settings == expected


def test_full_settings_sample() -> None:
    settings = completed("post-midjourney-jobs-settings").settings
    assert settings["version"] == "7" and settings["stylize"] == 250 and settings["suffix"] == "--v 7 --s 250"
    assert len(settings) == 11


def test_button_sample_has_upscale_buttons_and_a_grid() -> None:
    job = completed("post-midjourney-jobs-button")
    assert job.request.button == Button.U2 and job.request.jobId
    assert "Vary (Region)" in job.buttons and job.grid_url


def test_progress_samples_rise_and_are_not_terminal() -> None:
    progress = [Job.model_validate(s.data) for s in JOB_SAMPLES if s.page == "post-midjourney-jobs-imagine"]
    percents = [j.progress_percent for j in progress if j.status == "progress"]
    assert percents == [0, 15, 38, 96]
    assert [j.is_terminal for j in progress if j.status != "completed"] == [False] * 6


def test_unknown_status_verb_and_button_are_tolerated_but_not_terminal() -> None:
    job = Job.model_validate(
        {
            "jobid": JOB_ID,
            "verb": "dream",
            "status": "queued_elsewhere",
            "brandNew": {"x": 1},
            "response": {"buttons": ["U1", "Hyper Zoom"], "newField": 3},
        }
    )
    assert job.verb == "dream" and not job.verb.is_known
    assert job.status == "queued_elsewhere" and not job.is_terminal
    assert job.buttons == ["U1", "Hyper Zoom"]
    assert job.model_dump(mode="json")["brandNew"] == {"x": 1}
    assert JobStatus("completed") is JobStatus.COMPLETED and Verb("seed") is Verb.SEED


@pytest.mark.parametrize("status", ["completed", "failed", "moderated"])
def test_terminal_statuses(status: str) -> None:
    assert Job.model_validate({"jobid": JOB_ID, "verb": "imagine", "status": status}).is_terminal


def wait_done(hook: UseapiV3Hook, job: Job, seconds: float = 5.0) -> Job:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = hook.get_job(job.jobid)
        if job.is_terminal:
            return job
        time.sleep(0.02)
    raise AssertionError(f"{job.jobid} still {job.status} after {seconds}s")


def posts(emulator, endpoint: str):
    return emulator.requests_to("POST", f"/v3/midjourney/jobs/{endpoint}")


# -- jobs ---------------------------------------------------------------------------------------


def test_imagine_then_poll_to_completion(hook, emulator) -> None:
    job = hook.imagine("a cat in a hat --ar 16:9", reply_ref="ref-1")
    assert job.status == JobStatus.CREATED and job.verb == "imagine" and job.jobType == "image"
    [sent] = posts(emulator, "imagine")
    assert sent.json == {"prompt": "a cat in a hat --ar 16:9", "replyRef": "ref-1", "stream": False}
    assert sent.authorized and sent.status == 201
    seen = {job.status}
    deadline = time.monotonic() + 5
    while not job.is_terminal and time.monotonic() < deadline:
        job = hook.get_job(job.jobid)
        seen.add(job.status)
        time.sleep(0.01)
    assert job.status == "completed" and {"progress", "completed"} <= seen
    assert len(job.image_urls) == 4 and len(set(job.image_urls)) == 4
    assert all(url.startswith(emulator.cdn_base_url) for url in job.image_urls)
    assert job.grid_url and job.buttons[:4] == ["U1", "U2", "U3", "U4"]
    assert job.request.replyRef == "ref-1"


def test_button_upscale_runs_once(hook, emulator) -> None:
    parent = wait_done(hook, hook.imagine("a red fox"))
    child = hook.button(parent.jobid, "U1")
    again = hook.button(parent.jobid, "U1")
    assert again.jobid == child.jobid
    assert [r.status for r in posts(emulator, "button")] == [201, 200]
    assert len(emulator.created_jobs("button")) == 1
    child = wait_done(hook, child)
    assert child.status == "completed" and child.grid_url
    assert hook.get_job(parent.jobid).children  # the parent tracks its child


def test_button_rejected_by_the_api_for_an_unavailable_button(hook) -> None:
    parent = wait_done(hook, hook.imagine("a red fox"))
    upscaled = wait_done(hook, hook.button(parent.jobid, "U2"))
    with pytest.raises(MidjourneyValidationError) as info:
        hook.button(upscaled.jobid, "V1")  # an upscaled image has no V1
    assert info.value.status_code == 400


def test_button_on_unknown_or_expired_parent(hook, emulator) -> None:
    with pytest.raises(MidjourneyNotFoundError, match="Parent job not found"):
        hook.button("j1111111111111111111i-u1-c1000000000000000001-bot:midjourney", "U1")
    parent = wait_done(hook, hook.imagine("old"))
    emulator.expire_job(parent.jobid)
    with pytest.raises(MidjourneyExpiredError):
        hook.button(parent.jobid, "U1")
    with pytest.raises(MidjourneyExpiredError) as info:
        hook.get_job(parent.jobid)
    assert info.value.status_code == 410


def test_blend_mixes_urls_and_uploads(hook, emulator, tmp_path: Path) -> None:
    local = tmp_path / "b.png"
    local.write_bytes(PNG_SIGNATURE + b"x" * 100)
    job = hook.blend(["https://example.com/1.jpg", local, b"raw-bytes"], dimensions="Portrait")
    [sent] = posts(emulator, "blend")
    assert sent.form_fields["imageUrl_1"] == "https://example.com/1.jpg"
    assert sent.form_fields["imageBlob_2"] == 108 and sent.form_fields["imageBlob_3"] == 9
    assert sent.form_fields["stream"] == "false" and sent.form_fields["blendDimensions"] == "Portrait"
    assert job.request.blendDimensions == "Portrait"
    done = wait_done(hook, job)
    assert done.status == "completed" and len(done.image_urls) == 4


def test_describe_url_and_upload(hook, emulator) -> None:
    by_url = wait_done(hook, hook.describe("https://example.com/bike.jpg"))
    assert len(by_url.prompts) == 4 and by_url.jobType is None
    by_blob = hook.describe(PNG_SIGNATURE + b"pixels")
    assert by_blob.request.describeUrl == "blob"
    assert posts(emulator, "describe")[1].form_fields["imageBlob"] == 14


def test_seed(hook) -> None:
    parent = wait_done(hook, hook.imagine("a lighthouse"))
    seed = wait_done(hook, hook.seed(parent.jobid))
    assert isinstance(seed.seed, int) and seed.seed > 0
    assert hook.seed(parent.jobid).jobid == seed.jobid  # execute-once


def test_seed_of_an_unfinished_parent_is_refused(hook, emulator) -> None:
    emulator.never_finish = True
    parent = hook.imagine("slow")
    with pytest.raises(MidjourneyValidationError, match='must be "completed"'):
        hook.seed(parent.jobid)


@pytest.mark.parametrize(
    ("command", "keys"),
    [
        (
            "settings",
            {
                "version",
                "stylize",
                "raw",
                "personalization",
                "public",
                "remix",
                "variability",
                "turbo",
                "fast",
                "relax",
                "suffix",
            },
        ),
        ("info", {"fast", "relax", "turbo"}),
        ("fast", {"fast", "relax", "turbo"}),
        ("relax", {"fast", "relax", "turbo"}),
        ("turbo", {"fast", "relax", "turbo"}),
        ("remix", {"remix"}),
        ("variability", {"variability"}),
    ],
)
def test_settings_family(hook, emulator, command: str, keys: set[str]) -> None:
    job = wait_done(hook, getattr(hook, command)())
    assert job.verb == command and set(job.settings) == keys
    assert posts(emulator, command)[0].json == {"stream": False}


def test_speed_mode_state_is_kept(hook) -> None:
    wait_done(hook, hook.turbo())
    assert wait_done(hook, hook.info()).settings == {"fast": False, "relax": False, "turbo": True}
    wait_done(hook, hook.relax())
    assert wait_done(hook, hook.info()).settings["relax"] is True


def test_default_channel_comes_from_the_connection(emulator, midjourney_conn, monkeypatch) -> None:
    channel = next(iter(emulator_accounts(emulator)))
    monkeypatch.setenv("AIRFLOW_CONN_MJ_CHANNEL", connection_json(emulator.base_url, channel=channel, timeout=5))
    with UseapiV3Hook("mj_channel", retry=FAST_RETRY) as hook:
        assert hook.connection_settings.timeout == 5.0
        parent = wait_done(hook, hook.imagine("p"))
        hook.button(parent.jobid, "U1")
    assert posts(emulator, "imagine")[0].json["channel"] == channel
    assert "channel" not in posts(emulator, "button")[0].json  # button jobs run in the parent's channel


def emulator_accounts(emulator) -> dict:
    with UseapiV3Hook("midjourney_default", retry=FAST_RETRY) as hook:
        return hook.list_accounts()


def test_list_and_cancel_running_jobs(hook, emulator) -> None:
    emulator.never_finish = True
    job = hook.imagine("forever")
    running = hook.list_jobs()
    assert running.total == 1 and running.job_ids == [job.jobid]
    hook.cancel_job(job.jobid)
    cancelled = hook.get_job(job.jobid)
    assert cancelled.status == "failed" and cancelled.error == "Job cancelled by user"
    assert hook.list_jobs().total == 0
    assert emulator.requests_to("DELETE", "/v3/midjourney/jobs/")[0].status == 204
    with pytest.raises(MidjourneyNotFoundError):
        hook.cancel_job("j1111111111111111111i-u1-c1000000000000000001-bot:midjourney")


def test_job_ids_are_checked_before_they_reach_a_url(hook, emulator) -> None:
    for bad in ["", "../accounts", "j1-u1-c1-bot:midjourney/../../x", "not a job"]:
        with pytest.raises(MidjourneyInvalidRequestError, match="jobid"):
            hook.get_job(bad)
    assert emulator.requests == []


def test_the_v3_hook_checks_v3_job_ids_of_button_and_seed_requests(hook, emulator) -> None:
    from airflow_provider_midjourney.job_requests import ButtonRequest, SeedRequest

    for request in (ButtonRequest.build(job_id="12345", button="U1"), SeedRequest.build(job_id="abc-1")):
        with pytest.raises(MidjourneyInvalidRequestError, match=r"jobId \(job_id\): must be a v3 job id"):
            hook.submit_job(request)
    assert emulator.requests == []


def test_channel_ids_are_checked_before_they_reach_a_url(hook, emulator) -> None:
    for call in (hook.get_account, hook.delete_account, hook.reset_account):
        with pytest.raises(MidjourneyInvalidRequestError, match="channel: must be a Discord channel id"):
            call("../jobs")
    assert emulator.requests == []


def test_bad_input_never_reaches_the_api(hook, emulator) -> None:
    with pytest.raises(MidjourneyInvalidRequestError, match="prompt"):
        hook.imagine("x" * 5001)
    with pytest.raises(MidjourneyInvalidRequestError, match="mask"):
        hook.button("j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney", "Vary (Region)")
    with pytest.raises(MidjourneyInvalidRequestError, match="2 to 5"):
        hook.blend(["https://e.x/1.png"])
    assert emulator.requests == []


# -- accounts -----------------------------------------------------------------------------------


def test_accounts_lifecycle(hook, emulator) -> None:
    discord = "discord-secret-ABCDEFGHIJ"
    created = hook.create_or_update_account(discord, max_jobs=5, max_image_jobs=4, max_video_jobs=2)
    assert created.channel and created.maxJobs == 5 and created.discord and discord not in created.discord
    updated = hook.create_or_update_account(discord, max_jobs=3)
    assert updated.channel == created.channel and updated.maxJobs == 3
    assert [r.status for r in emulator.requests_to("POST", "/v3/midjourney/accounts")] == [201, 200]
    assert all(discord not in repr(r) for r in emulator.requests)
    assert hook.get_account(created.channel).maxJobs == 3
    assert created.channel in hook.list_accounts()
    hook.reset_account(created.channel)
    hook.delete_account(created.channel)
    with pytest.raises(MidjourneyNotFoundError):
        hook.get_account(created.channel)
    for channel in list(hook.list_accounts()):
        hook.delete_account(channel)
    assert hook.list_accounts() == {}  # 404 "no channels configured" reads as empty


def test_account_conflict_with_v2(hook) -> None:
    with pytest.raises(MidjourneyConflictError, match="v2") as info:
        hook.create_or_update_account("v2-legacy-token")
    assert info.value.status_code == 409


def test_account_limits_are_validated_locally(hook, emulator) -> None:
    with pytest.raises(MidjourneyInvalidRequestError, match="maxImageJobs"):
        hook.create_or_update_account("t", max_jobs=2, max_image_jobs=3)
    assert emulator.requests == []


# -- errors -------------------------------------------------------------------------------------


def test_wrong_token_is_401_without_the_token_anywhere(emulator, monkeypatch, caplog) -> None:
    wrong = "wrong-token-SHOULD-NOT-APPEAR"
    monkeypatch.setenv("AIRFLOW_CONN_MJ_WRONG", connection_json(emulator.base_url, token=wrong))
    caplog.set_level(logging.DEBUG)
    with UseapiV3Hook("mj_wrong", retry=FAST_RETRY) as hook, pytest.raises(MidjourneyAuthError) as info:
        hook.imagine("p")
    assert info.value.status_code == 401 and info.value.error == "Unauthorized"
    assert wrong not in str(info.value) and wrong not in repr(info.value) and wrong not in caplog.text
    assert len(emulator.requests) == 1  # 401 is not retried
    ok, message = UseapiV3Hook("mj_wrong").test_connection()
    assert not ok and "401" in message and wrong not in message


def test_subscription_expired_is_402(hook, emulator) -> None:
    emulator.subscription_expired = True
    with pytest.raises(MidjourneySubscriptionError) as info:
        hook.get_job("j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney")
    assert info.value.status_code == 402
    ok, message = hook.test_connection()
    assert not ok and "402" in message


def test_test_connection_ok(hook) -> None:
    ok, message = hook.test_connection()
    assert ok and "channel" in message


def test_unknown_job_is_404(hook) -> None:
    with pytest.raises(MidjourneyNotFoundError, match="Job not found"):
        hook.get_job("j1111111111111111111i-u1-c1000000000000000001-bot:midjourney")


def test_channel_locked_596_names_the_fix_and_is_not_retried(hook, emulator) -> None:
    for channel in emulator_accounts(emulator):
        emulator.lock_channel(channel)
    with pytest.raises(MidjourneyChannelLockedError) as info:
        hook.imagine("p")
    assert info.value.status_code == 596
    assert "CAPTCHA" in str(info.value) and "reset" in str(info.value)
    channel = next(iter(emulator.channels))
    assert f"channel {channel}: Pending mod message" in str(info.value)
    assert len(posts(emulator, "imagine")) == 1
    channel = next(iter(hook.list_accounts()))
    assert hook.get_account(channel).error
    hook.reset_account(channel)
    assert hook.imagine("p").status == "created"


# -- CDN ----------------------------------------------------------------------------------------


def test_cdn_direct_sends_browser_headers_and_no_token(hook, emulator) -> None:
    job = wait_done(hook, hook.imagine("p"))
    images = [hook.fetch_cdn_asset(url) for url in job.image_urls]
    assert all(image.startswith(PNG_SIGNATURE) for image in images) and len(set(images)) == 4
    cdn_requests = [r for r in emulator.requests if r.path.startswith("/cdn")]
    assert len(cdn_requests) == 4 and all(not r.authorized and "Mozilla/" in (r.user_agent or "") for r in cdn_requests)
    assert hook.fetch_cdn_asset(job.grid_url).startswith(PNG_SIGNATURE)


def test_cdn_without_browser_headers_is_refused(hook) -> None:
    job = wait_done(hook, hook.imagine("p"))
    assert httpx.get(job.image_urls[0]).status_code == 403


def test_cdn_through_the_proxy(hook, emulator) -> None:
    job = wait_done(hook, hook.imagine("p"))
    assert hook.fetch_cdn_asset(job.image_urls[1], use_proxy=True).startswith(PNG_SIGNATURE)
    [proxied] = emulator.requests_to("GET", "/v1/proxy/cdn-midjourney")
    assert proxied.authorized and proxied.query["cdnUrl"] == job.image_urls[1]


def test_cdn_403_raises(hook, emulator) -> None:
    job = wait_done(hook, hook.imagine("p"))
    emulator.cdn_forbid_next(1)
    with pytest.raises(MidjourneyError, match="403"):
        hook.fetch_cdn_asset(job.image_urls[0])
    assert hook.fetch_cdn_asset(job.image_urls[0]).startswith(PNG_SIGNATURE)


# -- connection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, None, "https://api.useapi.net"),
        ("", None, "https://api.useapi.net"),
        ("api.useapi.net", None, "https://api.useapi.net"),
        ("http://127.0.0.1:8765", None, "http://127.0.0.1:8765"),
        ("http://127.0.0.1:8765/", None, "http://127.0.0.1:8765"),
        ("127.0.0.1", 8765, "https://127.0.0.1:8765"),
        ("http://localhost", 9000, "http://localhost:9000"),
    ],
)
def test_base_url_from_host(host, port, expected) -> None:
    assert base_url_from_host(host, port) == expected


def test_bad_host_and_missing_token(monkeypatch) -> None:
    with pytest.raises(MidjourneyError, match="not an http"):
        base_url_from_host("ftp://x")
    monkeypatch.setenv("AIRFLOW_CONN_MJ_NOTOKEN", connection_json("http://127.0.0.1:1", token=""))
    with pytest.raises(MidjourneyError, match="no API token"):
        UseapiV3Hook("mj_notoken").get_conn()
    monkeypatch.setenv("AIRFLOW_CONN_MJ_BADTIMEOUT", connection_json("http://127.0.0.1:1", timeout="soon"))
    with pytest.raises(MidjourneyError, match="timeout"):
        UseapiV3Hook("mj_badtimeout").get_conn()


def test_token_stays_out_of_reprs(hook) -> None:
    assert TOKEN not in repr(hook.connection_settings)
    assert TOKEN not in repr(hook._auth(hook.connection_settings))
