"""Models against the vendor's own samples, and every request validation rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError
from airflow_provider_midjourney.hooks.useapi_v3_models import (
    Account,
    AccountRequest,
    Job,
    RunningJobs,
    SSEEvent,
    job_body,
    job_path,
)
from airflow_provider_midjourney.image_intake import ImageBlob
from airflow_provider_midjourney.job_requests import (
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    ImagineRequest,
    SeedRequest,
    SettingsRequest,
)
from airflow_provider_midjourney.vocabulary import Button, JobStatus, Verb
from tests.doc_samples import job_samples, samples

JOB_ID = "j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney"
JOB_SAMPLES = job_samples()


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


# -- request validation -------------------------------------------------------------------------


def rejects(fn, *fragments: str) -> str:
    with pytest.raises(MidjourneyInvalidRequestError) as info:
        fn()
    for fragment in fragments:
        assert fragment in str(info.value)
    return str(info.value)


def test_imagine_prompt_rules() -> None:
    assert ImagineRequest.build(prompt="x" * 5000).prompt
    rejects(lambda: ImagineRequest.build(prompt="x" * 5001), "prompt", "5000", "5001")
    rejects(lambda: ImagineRequest.build(prompt="   "), "prompt", "required")
    rejects(lambda: ImagineRequest.build(), "prompt", "required")


def test_reply_fields() -> None:
    ok = ImagineRequest.build(
        prompt="p", reply_url="https://x/" + "a" * 1000, reply_ref="r" * 1024, reply_level="minimal"
    )
    assert job_body(ok).json_body == {
        "prompt": "p",
        "replyUrl": ok.reply_url,
        "replyRef": "r" * 1024,
        "replyLevel": "minimal",
        "stream": False,
    }
    rejects(
        lambda: ImagineRequest.build(prompt="p", reply_url="https://x/" + "a" * 1020), "replyUrl (reply_url)", "1024"
    )
    rejects(lambda: ImagineRequest.build(prompt="p", reply_ref="r" * 1025), "replyRef (reply_ref)", "1024")
    rejects(
        lambda: ImagineRequest.build(prompt="p", reply_level="loud"), "replyLevel", "'all', 'standard' or 'minimal'"
    )
    rejects(lambda: ImagineRequest.build(prompt="p", reply_url="ftp://x"), "replyUrl", "http(s)")
    rejects(lambda: ImagineRequest.build(prompt="p", channel="general"), "channel", "digits")


def test_camel_case_names_are_accepted_too() -> None:
    assert ImagineRequest.build(prompt="p", replyRef="abc").reply_ref == "abc"
    rejects(lambda: ImagineRequest.build(prompt="p", promt="typo"), "promt")


def test_button_rules() -> None:
    ok = ButtonRequest.build(job_id=JOB_ID, button="U1")
    assert job_body(ok).json_body == {"jobId": JOB_ID, "button": "U1", "stream": False}
    rejects(lambda: ButtonRequest.build(button="U1"), "jobId (job_id)", "required")
    rejects(lambda: ButtonRequest.build(job_id="", button="U1"), "jobId")
    rejects(lambda: ButtonRequest.build(job_id="../accounts", button="U1"), "jobId", "letters, digits")
    rejects(lambda: ButtonRequest.build(job_id=JOB_ID, button="U5"), "button 'U5'", "allow_unknown_button")
    assert (
        job_body(ButtonRequest.build(job_id=JOB_ID, button="U5", allow_unknown_button=True)).json_body["button"] == "U5"
    )
    rejects(lambda: ButtonRequest.build(job_id=JOB_ID, button="Vary (Region)"), "mask is required")
    assert ButtonRequest.build(job_id=JOB_ID, button="Vary (Region)", mask="iVBOR", prompt="a hat").mask
    rejects(
        lambda: ButtonRequest.build(job_id=JOB_ID, button="U1", mask="iVBOR"), "mask is only used by 'Vary (Region)'"
    )
    rejects(lambda: ButtonRequest.build(job_id=JOB_ID, button="Custom Zoom"), "prompt is required", "Custom Zoom")
    assert ButtonRequest.build(job_id=JOB_ID, button="Custom Zoom", prompt="cat --zoom 1.8").prompt
    rejects(lambda: ButtonRequest.build(job_id=JOB_ID, button="U2", prompt="x"), "prompt is not accepted by 'U2'")
    rejects(lambda: ButtonRequest.build(job_id=JOB_ID, button="V1", prompt="x" * 5001), "prompt", "5000")


def test_every_documented_button_is_known() -> None:
    for button in ["⬅️", "➡️", "⬆️", "⬇️", "Redo Upscale (Creative)", "Extend (High motion)", "Remaster", "🔄"]:
        assert Button(button).is_known
    assert len(Button) == 34


def test_seed_requires_a_job_id() -> None:
    assert job_body(SeedRequest.build(job_id=JOB_ID)).json_body == {"jobId": JOB_ID, "stream": False}
    rejects(lambda: SeedRequest.build(), "jobId", "required")
    rejects(lambda: SeedRequest.build(job_id="not a job"), "jobId", "letters, digits")
    # The v3 format itself is the useapi.net v3 hook's rule (tests/test_hook.py).


def test_blend_from_urls_paths_and_bytes(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n fake")
    request = BlendRequest.from_images(["https://e.x/1.jpg", image, b"\xff\xd8\xff raw"], blend_dimensions="Portrait")
    body = job_body(request)
    assert body.json_body is None and body.data == {
        "imageUrl_1": "https://e.x/1.jpg",
        "blendDimensions": "Portrait",
        "stream": "false",
    }
    assert [(name, f[0], f[2]) for name, f in body.files or []] == [
        ("imageBlob_2", "a.png", "image/png"),
        ("imageBlob_3", "image.jpg", "image/jpeg"),
    ]
    urls_only = job_body(BlendRequest.from_images(["https://e.x/1.jpg", "https://e.x/2.jpg"]))
    assert urls_only.json_body == {
        "imageUrl_1": "https://e.x/1.jpg",
        "imageUrl_2": "https://e.x/2.jpg",
        "stream": False,
    }


def test_blend_rules(tmp_path: Path) -> None:
    url = "https://e.x/1.jpg"
    rejects(lambda: BlendRequest.from_images([url]), "images", "2 to 5", "got 1")
    rejects(lambda: BlendRequest.from_images([url] * 6), "images", "2 to 5", "got 6")
    rejects(lambda: BlendRequest.from_images(url), "images", "list")
    rejects(lambda: BlendRequest.from_images([url, url], blend_dimensions="Round"), "blendDimensions", "Portrait")
    rejects(
        lambda: BlendRequest.build(image_url_1=url, image_blob_1=ImageBlob(content=b"x"), image_url_2=url),
        "imageUrl_1 or imageBlob_1, not both",
    )
    rejects(lambda: BlendRequest.build(image_url_1=url, image_url_3=url), "positions 1..2")
    rejects(lambda: BlendRequest.from_images([url, tmp_path / "missing.png"]), "images[1]", "no such local file")
    rejects(lambda: BlendRequest.from_images([url, "ftp://x/y.png"]), "images[1]", "http(s) URL")
    big = tmp_path / "big.png"
    big.write_bytes(b"0" * (10 * 1024 * 1024 + 1))
    rejects(lambda: BlendRequest.from_images([url, big]), "images[1]", "10485761 bytes", "10 MB")
    rejects(lambda: BlendRequest.from_images([url, b"0" * (10 * 1024 * 1024 + 1)]), "images[1]", "10 MB")


def test_describe_rules(tmp_path: Path) -> None:
    assert job_body(DescribeRequest.from_image("https://e.x/1.jpg")).json_body == {
        "imageUrl": "https://e.x/1.jpg",
        "stream": False,
    }
    blob = job_body(DescribeRequest.from_image(b"GIF89a bytes"))
    assert blob.data == {"stream": "false"} and blob.files and blob.files[0][0] == "imageBlob"
    rejects(lambda: DescribeRequest.build(), "exactly one of imageUrl")
    rejects(
        lambda: DescribeRequest.build(image_url="https://e.x/1.jpg", image_blob=ImageBlob(content=b"x")), "exactly one"
    )
    rejects(lambda: DescribeRequest.build(image_url="file:///etc/passwd"), "imageUrl", "http(s)")
    rejects(lambda: DescribeRequest.from_image(b"0" * (10 * 1024 * 1024 + 1)), "image", "10 MB")
    rejects(lambda: DescribeRequest.from_image(tmp_path), "image", "not a regular file")


def test_settings_commands() -> None:
    for command in ["settings", "info", "fast", "relax", "turbo", "remix", "variability"]:
        request = SettingsRequest.build(command=command, channel="123")
        assert job_path(request) == f"/v3/midjourney/jobs/{command}"
        assert job_body(request).json_body == {"channel": "123", "stream": False}
    rejects(lambda: SettingsRequest.build(command="stealth"), "command", "'settings'", "'variability'")


def test_account_rules() -> None:
    ok = AccountRequest.build(discord="secret-discord-token", max_jobs=15, max_image_jobs=12, max_video_jobs=3)
    assert "secret-discord-token" not in repr(ok) and "secret-discord-token" not in str(ok.model_dump())
    assert ok.http_body().json_body == {
        "discord": "secret-discord-token",
        "maxJobs": 15,
        "maxImageJobs": 12,
        "maxVideoJobs": 3,
    }
    rejects(lambda: AccountRequest.build(discord=""), "discord", "required")
    rejects(lambda: AccountRequest.build(discord="t", max_jobs=0), "maxJobs (max_jobs)", "greater than or equal to 1")
    rejects(lambda: AccountRequest.build(discord="t", max_jobs=16), "maxJobs", "less than or equal to 15")
    rejects(lambda: AccountRequest.build(discord="t", max_jobs=15, max_image_jobs=13), "maxImageJobs", "12")
    rejects(lambda: AccountRequest.build(discord="t", max_jobs=15, max_video_jobs=0), "maxVideoJobs", "1")
    rejects(
        lambda: AccountRequest.build(discord="t", max_jobs=4, max_image_jobs=5),
        "maxImageJobs (5) must be at most maxJobs (4)",
    )
    rejects(lambda: AccountRequest.build(discord="t", max_video_jobs=4), "maxVideoJobs (4) must be at most maxJobs (3)")
    msg = rejects(
        lambda: AccountRequest.build(discord="secret-discord-token", reply_url="h" * 2049), "replyUrl", "2048"
    )
    assert "secret-discord-token" not in msg
