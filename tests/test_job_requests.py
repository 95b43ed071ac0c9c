"""Every rule of the neutral job requests, checked before any HTTP call (and v3's bodies of them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError
from airflow_provider_midjourney.hooks.useapi_v3_models import (
    AccountRequest,
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
from airflow_provider_midjourney.vocabulary import Button

JOB_ID = "j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney"
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
    # The v3 format itself is the useapi.net v3 hook's rule (tests/backends/test_useapi_v3.py).


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
