"""The Midjourney API v3 emulator, exercised over real loopback HTTP with httpx."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator
from airflow_provider_midjourney.testing.settings import SETTINGS_VERBS
from tests.doc_samples import completed_event, created_answer

pytest_plugins = ["pytester"]

TOKEN = "emulator-test-token-Zq9"
TIMINGS = JobTimings(start_after=0.03, progress_after=0.06, complete_after=0.25)
JOBS = "/v3/midjourney/jobs"
ACCOUNTS = "/v3/midjourney/accounts"
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/139.0 Safari/537.36"}
JOBID_RE = re.compile(r"^j\d{19}(i?)-u12345-c(\d{19})-bot:midjourney$")
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ALL_LOCKED = (
    "All configured Midjourney channels ({n}) have errors (pending moderation, CAPTCHA, etc.). "
    "Please resolve channel issues before making new requests."
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOO_LONG, CHARS = "must be at most", "characters"
UPSCALED_BUTTONS = [
    "Upscale (Subtle)",
    "Upscale (Creative)",
    "Vary (Subtle)",
    "Vary (Strong)",
    "Vary (Region)",
    "Zoom Out 2x",
    "Zoom Out 1.5x",
    "Custom Zoom",
    "⬅️",
    "➡️",
    "⬆️",
    "⬇️",
    "Animate (High motion)",
    "Animate (Low motion)",
]


# -- fixtures & helpers -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[MidjourneyEmulator]:
    with MidjourneyEmulator(token=TOKEN, timings=TIMINGS) as emulator:
        yield emulator


@pytest.fixture
def emu(server: MidjourneyEmulator) -> Iterator[MidjourneyEmulator]:
    server.reset()
    yield server
    server.reset()


def _client(emulator: MidjourneyEmulator, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=emulator.base_url, headers=headers, timeout=5.0)


@pytest.fixture
def client(emu: MidjourneyEmulator) -> Iterator[httpx.Client]:
    with _client(emu) as http:
        yield http


def create(client: httpx.Client, verb: str, **params: Any) -> dict[str, Any]:
    response = client.post(f"{JOBS}/{verb}", json={"stream": False, **params})
    assert response.status_code == 201, response.text
    return dict(response.json())


def wait_for(
    client: httpx.Client,
    jobid: str,
    statuses: tuple[str, ...] = ("completed", "failed", "moderated"),
    timeout: float = 3.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{JOBS}/{jobid}").json()
        if job["status"] in statuses:
            return dict(job)
        time.sleep(0.01)
    raise AssertionError(f"job {jobid} never reached {statuses}")


def completed(client: httpx.Client, verb: str = "imagine", **params: Any) -> dict[str, Any]:
    if verb == "imagine":
        params.setdefault("prompt", "a cat in a hat")
    job = wait_for(client, create(client, verb, **params)["jobid"])
    assert job["status"] == "completed", job
    return job


def read_sse(response: httpx.Response, timeout: float = 5.0) -> list[dict[str, Any]]:
    assert response.headers["content-type"].startswith("text/event-stream")
    events, deadline = [], time.monotonic() + timeout
    for line in response.iter_lines():
        assert time.monotonic() < deadline, "SSE stream did not finish in time"
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: ") :]))
    return events


def error(response: httpx.Response) -> str:
    return str(response.json()["error"])


# -- import cost, ids, lifecycle ---------------------------------------------------------------------------------
def test_importing_the_package_does_not_import_fastapi_or_uvicorn() -> None:
    code = (
        "import sys, airflow_provider_midjourney.testing, airflow_provider_midjourney.testing.pytest_plugin\n"
        "heavy = [m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_imagine_progresses_from_created_to_completed(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    emu.timings = JobTimings(start_after=0.08, progress_after=0.16, complete_after=0.6)
    created = create(client, "imagine", prompt="cat in the hat", replyRef="ref-1")
    assert JOBID_RE.match(created["jobid"]).group(1) == "i"  # type: ignore[union-attr]
    assert list(created) == ["jobid", "verb", "jobType", "status", "created", "request"]
    assert (created["verb"], created["jobType"], created["status"]) == ("imagine", "image", "created")
    assert ISO_RE.match(created["created"])
    assert created["request"] == {"replyRef": "ref-1", "stream": False, "prompt": "cat in the hat"}

    statuses: list[str] = []
    percents: list[int] = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        job = client.get(f"{JOBS}/{created['jobid']}").json()
        if not statuses or statuses[-1] != job["status"]:
            statuses.append(job["status"])
        if job["status"] == "progress":
            percents.append(job["response"]["progress_percent"])
        if job["status"] == "completed":
            break
        time.sleep(0.01)
    assert statuses == ["created", "started", "progress", "completed"]
    assert percents == sorted(percents) and len(set(percents)) >= 3

    response = job["response"]
    assert response["content"] == "**cat in the hat --v 7.0 --s 250** - <@9876543210123456789> (fast)"
    assert response["progress_percent"] == 100 and job["code"] == 200 and ISO_RE.match(job["updated"])
    assert response["buttons"] == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
    assert [ux["id"] for ux in response["imageUx"]] == [1, 2, 3, 4]
    assert all(ux["url"].startswith(f"{emu.cdn_base_url}/") for ux in response["imageUx"])
    grid = response["attachments"][0]
    assert set(grid) >= {"url", "proxy_url", "filename", "width", "height", "content_type", "size", "id"}
    assert grid["url"] == f"{emu.base_url}/cdn/attachments/{grid['url'].split('/')[-2]}/grid_0.png"
    labels = [
        c.get("label") or c.get("emoji", {}).get("name") for row in response["components"] for c in row["components"]
    ]
    assert labels[:5] == ["U1", "U2", "U3", "U4", "🔄"]
    assert response["children"] == {} and response["executeOnce"] == {}
    assert emu.jobs[job["jobid"]] == job
    assert [j["jobid"] for j in emu.created_jobs("imagine")] == [job["jobid"]]


@pytest.mark.parametrize(
    ("kwargs", "stream"),
    [
        ({"json": {"prompt": "sse cat"}}, None),
        ({"json": {"prompt": "sse cat", "stream": True}}, True),
        ({"files": {"prompt": (None, "sse cat"), "stream": (None, "true")}}, True),
    ],
    ids=["absent", "true", "multipart-true"],
)
def test_imagine_streams_sse_events_by_default(
    client: httpx.Client, kwargs: dict[str, Any], stream: bool | None
) -> None:
    with client.stream("POST", f"{JOBS}/imagine", **kwargs) as response:
        assert response.status_code == 200
        events = read_sse(response)
    first, lifecycle = events[0], events[1:]
    assert first["event"] == "initialized" and first["message"] == "Stream initialized" and first["seq"] == 0
    assert JOBID_RE.match(first["jobId"]) and re.match(r"^\d\d:\d\d:\d\d\.\d{3}$", first["ts"])
    names = [e["event"] for e in lifecycle]
    assert names[:2] == ["midjourney_created", "midjourney_started"] and names[-1] == "midjourney_completed"
    assert set(names[2:-1]) == {"midjourney_progress"} and len(names) >= 5
    assert [e["seq"] for e in events] == sorted({e["seq"] for e in events})
    percents = [e["job"]["response"]["progress_percent"] for e in lifecycle if e["event"] == "midjourney_progress"]
    assert percents == sorted(set(percents))
    assert all(e["job"]["jobid"] == first["jobId"] for e in lifecycle)
    assert lifecycle[-1]["job"]["response"]["imageUx"][0]["id"] == 1
    assert lifecycle[0]["job"]["request"].get("stream") is stream


def test_zero_durations_still_answer_created_then_stream_to_the_end(
    emu: MidjourneyEmulator, client: httpx.Client
) -> None:
    emu.timings = JobTimings(start_after=0.0, progress_after=0.0, complete_after=0.0)
    assert create(client, "imagine", prompt="instant")["status"] == "created"
    with client.stream("POST", f"{JOBS}/imagine", json={"prompt": "instant"}) as response:
        names = [e["event"] for e in read_sse(response)]
    assert names == ["initialized", "midjourney_created", "midjourney_completed"]


def test_multipart_stream_false_returns_json(client: httpx.Client) -> None:
    response = client.post(f"{JOBS}/imagine", files={"prompt": (None, "form cat"), "stream": (None, "false")})
    assert response.status_code == 201
    assert response.json()["request"] == {"stream": False, "prompt": "form cat"}


# -- parity with the docs' samples ------------------------------------------------------------------------------
SEMANTIC = {
    "content",
    "progress_percent",
    "buttons",
    "imageUx",
    "videoUx",
    "attachments",
    "embeds",
    "components",
    "settings",
}
VERB_PARAMS: dict[str, dict[str, Any]] = {
    "imagine": {"prompt": "cat in the hat"},
    "blend": {"imageUrl_1": "https://e.com/1.png", "imageUrl_2": "https://e.com/2.png", "blendDimensions": "Portrait"},
    "describe": {"imageUrl": "https://e.com/1.png"},
}


@pytest.mark.parametrize("verb", ["imagine", "button", "blend", "describe", "seed", *SETTINGS_VERBS])
def test_answers_have_the_shape_of_the_docs_samples(emu: MidjourneyEmulator, client: httpx.Client, verb: str) -> None:
    emu.timings = JobTimings(start_after=0.0, progress_after=0.005, complete_after=0.02)
    params = dict(VERB_PARAMS.get(verb, {}))
    if verb in ("button", "seed"):
        params["jobId"] = completed(client)["jobid"]
        params.update({"button": "U1"} if verb == "button" else {})
    created = create(client, verb, replyUrl="https://h/cb", replyRef="ref", **params)
    doc_created = created_answer(verb)
    assert list(created) == list(doc_created)
    assert list(created["request"]) == list(doc_created["request"])
    job = wait_for(client, created["jobid"])
    doc_job = completed_event(verb)["job"]
    assert set(doc_job) <= set(job) and job["status"] == doc_job["status"] == "completed"
    assert job.get("jobType") == doc_job.get("jobType") and job["code"] == doc_job["code"]
    assert set(doc_job["response"]) & SEMANTIC <= set(job["response"])
    if "settings" in doc_job["response"]:
        assert set(job["response"]["settings"]) == set(doc_job["response"]["settings"])


# -- validation and documented error codes ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("verb", "payload", "message"),
    [
        ("imagine", {}, "Parameter prompt is required"),
        ("imagine", {"prompt": "   "}, "Parameter prompt is required"),
        ("imagine", {"prompt": "x" * 5001}, "Parameter prompt must be at most 5000 characters"),
        (
            "imagine",
            {"prompt": "x", "replyUrl": "https://h/" + "a" * 1024},
            f"Parameter replyUrl {TOO_LONG} 1024 {CHARS}",
        ),
        ("imagine", {"prompt": "x", "replyRef": "r" * 1025}, f"Parameter replyRef {TOO_LONG} 1024 {CHARS}"),
        (
            "imagine",
            {"prompt": "x", "replyLevel": "loud"},
            "Parameter replyLevel must be one of: all, standard, minimal",
        ),
        ("imagine", {"prompt": "x", "stream": "maybe"}, "Parameter stream must be true or false"),
        ("imagine", {"prompt": "x", "channel": "42"}, "Channel 42 is not configured"),
        ("button", {"button": "U1"}, "jobId is required"),
        ("button", {"jobId": "j1"}, "button is required"),
        ("button", {"jobId": "j1", "button": "U9"}, "Unsupported button U9"),
        ("button", {"jobId": "j1", "button": "Vary (Region)"}, "Parameter mask is required for button Vary (Region)"),
        ("button", {"jobId": "j1", "button": "Custom Zoom"}, "Parameter prompt is required for button Custom Zoom"),
        ("blend", {"imageUrl_1": "https://e.com/1.png"}, "At least 2 images are required for blend"),
        (
            "blend",
            {"imageUrl_1": "https://e/1", "imageUrl_2": "https://e/2", "blendDimensions": "Round"},
            "Parameter blendDimensions must be one of: Portrait, Square, Landscape",
        ),
        ("describe", {}, "Either imageUrl or imageBlob is required"),
        ("seed", {}, "jobId is required"),
    ],
)
def test_validation_errors_answer_400(client: httpx.Client, verb: str, payload: dict[str, Any], message: str) -> None:
    response = client.post(f"{JOBS}/{verb}", json={"stream": False, **payload})
    assert (response.status_code, response.json()) == (400, {"error": message})


def test_invalid_json_and_unknown_command(client: httpx.Client) -> None:
    response = client.post(f"{JOBS}/imagine", content=b"{not json", headers={"content-type": "application/json"})
    assert (response.status_code, error(response)) == (400, "Invalid JSON body")
    assert client.post(f"{JOBS}/dance", json={}).status_code == 404


def test_401_without_valid_token_and_402_when_subscription_expired(emu: MidjourneyEmulator) -> None:
    for token in (None, "wrong"):
        with _client(emu, token) as anonymous:
            response = anonymous.post(f"{JOBS}/imagine", json={"prompt": "x", "stream": False})
            assert (response.status_code, response.json()) == (401, {"error": "Unauthorized"})
    assert emu.created_jobs() == [] and [r.authorized for r in emu.requests] == [False, False]
    emu.subscription_expired = True
    with _client(emu) as http:
        for method, path in (("GET", f"{JOBS}"), ("POST", f"{JOBS}/imagine"), ("GET", ACCOUNTS)):
            response = http.request(method, path, json={"prompt": "x"})
            assert (response.status_code, response.json()) == (
                402,
                {"error": "Account has no subscription or subscription expired"},
            )


def test_404_and_410_for_jobs_and_parents(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    unknown = "j1024181105489769750i-u12345-c1000000000000000001-bot:midjourney"
    for method in ("GET", "DELETE"):
        response = client.request(method, f"{JOBS}/{unknown}")
        assert (response.status_code, response.json()) == (404, {"error": "Job not found"})
    for verb, extra in (("button", {"button": "U1"}), ("seed", {})):
        response = client.post(f"{JOBS}/{verb}", json={"jobId": unknown, "stream": False, **extra})
        assert (response.status_code, error(response)) == (404, "Parent job not found")
    job = completed(client)
    emu.expire_job(job["jobid"])
    for method in ("GET", "DELETE"):
        response = client.request(method, f"{JOBS}/{job['jobid']}")
        assert (response.status_code, error(response)) == (410, f"Job {job['jobid']} has expired")
    for verb, extra in (("button", {"button": "U1"}), ("seed", {})):
        response = client.post(f"{JOBS}/{verb}", json={"jobId": job["jobid"], "stream": False, **extra})
        assert (response.status_code, error(response)) == (410, "Parent job has expired")


# -- buttons, seed, blend, describe -------------------------------------------------------------------------------
def test_buttons_execute_once_children_and_results(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    parent = completed(client, prompt="cat in the hat")
    jobid = parent["jobid"]
    upscale = create(client, "button", jobId=jobid, button="U2")
    assert (upscale["verb"], upscale["jobType"]) == ("button", "image")
    assert upscale["request"] == {"stream": False, "button": "U2", "jobId": jobid}
    assert JOBID_RE.match(upscale["jobid"]).group(2) == JOBID_RE.match(jobid).group(2)  # type: ignore[union-attr]
    again = client.post(f"{JOBS}/button", json={"jobId": jobid, "button": "U2", "stream": False})
    assert (again.status_code, again.json()["jobid"]) == (200, upscale["jobid"])
    variation = create(client, "button", jobId=jobid, button="V1", prompt="remixed cat")
    parent_now = client.get(f"{JOBS}/{jobid}").json()["response"]
    assert parent_now["children"] == {"U2": upscale["jobid"], "V1": variation["jobid"]}
    assert parent_now["executeOnce"] == {"U2": upscale["jobid"]}
    assert len(emu.created_jobs("button")) == 2

    result = wait_for(client, upscale["jobid"])["response"]
    assert result["buttons"] == UPSCALED_BUTTONS and len(result["imageUx"]) == 1 and len(result["attachments"]) == 1
    assert result["content"] == "**cat in the hat --v 7.0 --s 250** - Image #2 <@9876543210123456789>"
    grid = wait_for(client, variation["jobid"])["response"]
    assert len(grid["imageUx"]) == 4 and grid["content"].startswith("**remixed cat --v 7.0 --s 250** - V1 by")

    response = client.post(f"{JOBS}/button", json={"jobId": jobid, "button": "Upscale (Subtle)", "stream": False})
    assert response.status_code == 400 and error(response).startswith("Button Upscale (Subtle) is not available")
    region = create(client, "button", jobId=upscale["jobid"], button="Vary (Region)", mask="aGVsbG8=")
    assert region["request"]["mask"] == "aGVsbG8="
    emu.timings = JobTimings(complete_after=5)
    running = create(client, "imagine", prompt="slow")
    response = client.post(f"{JOBS}/button", json={"jobId": running["jobid"], "button": "U1", "stream": False})
    assert (response.status_code, error(response)) == (
        400,
        'Parent job status is "created", must be "completed" to execute button',
    )


def test_seed_requires_completed_image_parent_and_executes_once(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    stuck = create(client, "imagine", prompt="neverending story")
    wait_for(client, stuck["jobid"], ("progress",))
    response = client.post(f"{JOBS}/seed", json={"jobId": stuck["jobid"], "stream": False})
    assert (response.status_code, response.json()) == (
        400,
        {"error": 'Parent job status is "progress", must be "completed" to get seed'},
    )
    parent = completed(client, prompt="cat in the hat")
    seed = create(client, "seed", jobId=parent["jobid"])
    assert "jobType" not in seed and JOBID_RE.match(seed["jobid"]).group(1) == ""  # type: ignore[union-attr]
    assert seed["request"] == {"stream": False, "jobId": parent["jobid"]}
    again = client.post(f"{JOBS}/seed", json={"jobId": parent["jobid"], "stream": False})
    assert (again.status_code, again.json()["jobid"]) == (200, seed["jobid"])
    result = wait_for(client, seed["jobid"])["response"]
    uid = parent["response"]["imageUx"][0]["url"].split("/")[-2]
    assert re.fullmatch(
        rf"\*\*cat in the hat --v 7\.0 --s 250\*\*\n\*\*Job ID\*\*: {uid}\n\*\*seed\*\* \d+", result["content"]
    )
    assert len(result["attachments"]) == 4


def test_blend_multipart_blobs_and_urls(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    files = {"imageBlob_1": ("a.png", b"a" * 100, "image/png"), "imageBlob_2": ("b.png", b"b" * 250, "image/png")}
    response = client.post(f"{JOBS}/blend", data={"blendDimensions": "Portrait", "stream": "false"}, files=files)
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["request"] == {"stream": False, "blendUrls": ["blob_0", "blob_1"], "blendDimensions": "Portrait"}
    assert job["jobType"] == "image"
    recorded = emu.requests_to("POST", f"{JOBS}/blend")[-1]
    assert recorded.form_fields == {
        "blendDimensions": "Portrait",
        "stream": "false",
        "imageBlob_1": 100,
        "imageBlob_2": 250,
    }
    assert recorded.json is None
    done = wait_for(client, job["jobid"])["response"]
    assert done["content"].startswith("** --ar 2:3 --v 7.0 --s 250** - ")

    mixed = client.post(
        f"{JOBS}/blend",
        data={"imageUrl_1": "https://e.com/1.png", "stream": "false"},
        files={"imageBlob_2": ("b.png", b"b", "image/png")},
    )
    assert mixed.json()["request"]["blendUrls"] == ["https://e.com/1.png", "blob_1"]
    both = client.post(
        f"{JOBS}/blend",
        data={"imageUrl_1": "https://e.com/1.png", "imageUrl_2": "https://e/2"},
        files={"imageBlob_1": ("a.png", b"a", "image/png")},
    )
    assert (both.status_code, error(both)) == (400, "Specify either imageUrl_1 or imageBlob_1, not both")
    big = client.post(
        f"{JOBS}/blend", files={"imageBlob_1": ("a.png", b"a"), "imageBlob_2": ("b.png", b"0" * (10 * 2**20 + 1))}
    )
    assert (big.status_code, error(big)) == (400, "Parameter imageBlob_2 exceeds the maximum file size of 10 MB")


def test_describe_with_blob_or_url(client: httpx.Client) -> None:
    response = client.post(f"{JOBS}/describe", data={"stream": "false"}, files={"imageBlob": ("i.png", b"x" * 10)})
    assert response.status_code == 201
    job = response.json()
    assert job["request"] == {"stream": False, "describeUrl": "blob"} and "jobType" not in job
    assert JOBID_RE.match(job["jobid"]).group(1) == ""  # type: ignore[union-attr]
    result = wait_for(client, job["jobid"])["response"]
    prompts = result["embeds"][0]["description"].split("\n\n")
    assert [p[:3] for p in prompts] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣"] and result["content"].startswith("1️⃣")
    by_url = create(client, "describe", imageUrl="https://example.com/cat.jpg")
    assert by_url["request"]["describeUrl"] == "https://example.com/cat.jpg"
    both = client.post(f"{JOBS}/describe", data={"imageUrl": "https://e/1"}, files={"imageBlob": ("i.png", b"x")})
    assert both.status_code == 400


# -- settings family ----------------------------------------------------------------------------------------------
def test_settings_family_keeps_per_channel_state(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    emu.timings = JobTimings(start_after=0.0, progress_after=0.005, complete_after=0.02)
    settings = completed(client, "settings")
    assert "jobType" not in settings
    assert set(settings["response"]["settings"]) == {
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
    }
    assert settings["response"]["settings"]["fast"] is True
    relax = completed(client, "relax")["response"]
    assert relax["settings"] == {"relax": True, "fast": False, "turbo": False}
    info = completed(client, "info")["response"]
    assert info["settings"] == {"relax": True, "fast": False, "turbo": False}
    assert "**Job Mode**: Relaxed" in info["embeds"][0]["description"]
    assert completed(client)["response"]["content"].endswith("(relaxed)")
    assert completed(client, "turbo")["response"]["settings"] == {"relax": False, "fast": False, "turbo": True}
    assert completed(client, "fast")["response"]["settings"]["fast"] is True
    assert [completed(client, "remix")["response"]["settings"] for _ in range(2)] == [{"remix": True}, {"remix": False}]
    assert completed(client, "variability")["response"]["settings"] == {"variability": True}
    assert completed(client, "settings")["response"]["settings"]["variability"] is True


def test_multiple_channels_routing_settings_and_all_locked() -> None:
    channels = ["1111111111111111111", "2222222222222222222", "3333333333333333333"]
    with (
        MidjourneyEmulator(token=None, channels=channels, timings=TIMINGS) as emulator,
        _client(emulator, None) as http,
    ):
        response = http.post(f"{JOBS}/settings", json={"stream": False})
        assert (response.status_code, error(response)) == (
            400,
            "channel parameter is required when multiple channels (3) are configured",
        )
        assert http.post(f"{JOBS}/settings", json={"stream": False, "channel": channels[1]}).status_code == 201
        imagine = http.post(f"{JOBS}/imagine", json={"prompt": "x", "stream": False, "channel": channels[2]})
        assert JOBID_RE.match(imagine.json()["jobid"]).group(2) == channels[2]  # type: ignore[union-attr]
        for channel in channels[:2]:
            emulator.lock_channel(channel)
        routed = http.post(f"{JOBS}/imagine", json={"prompt": "x", "stream": False})
        assert JOBID_RE.match(routed.json()["jobid"]).group(2) == channels[2]  # type: ignore[union-attr]
        emulator.lock_channel(channels[2], "CAPTCHA detected")
        response = http.post(f"{JOBS}/imagine", json={"prompt": "x", "stream": False})
        assert (response.status_code, error(response)) == (596, ALL_LOCKED.format(n=3))
        assert http.get(ACCOUNTS).json()[channels[2]]["error"] == "CAPTCHA detected"


# -- capacity, running jobs, cancel, lock -------------------------------------------------------------------------
def test_capacity_429_running_summary_and_cancel(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    emu.never_finish = True
    jobs = [create(client, "imagine", prompt=f"cat {n}")["jobid"] for n in range(3)]
    response = client.post(f"{JOBS}/imagine", json={"prompt": "one too many", "stream": False})
    channel = JOBID_RE.match(jobs[0]).group(2)  # type: ignore[union-attr]
    assert (response.status_code, error(response)) == (429, f"Channel {channel} is busy executing 3 image jobs")
    summary = client.get(JOBS).json()
    assert (summary["total"], summary["images"], summary["videos"]) == (3, 3, 0)
    entry = summary["channels"][channel]
    assert (entry["maxJobs"], entry["maxImageJobs"], entry["maxVideoJobs"]) == (3, 3, 3)
    assert [j["jobId"] for j in entry["jobs"]] == jobs and re.fullmatch(r"\d\d:\d\d", entry["jobs"][0]["elapsed"])
    assert client.delete(f"{JOBS}/{jobs[0]}").status_code == 204
    cancelled = client.get(f"{JOBS}/{jobs[0]}").json()
    assert (cancelled["status"], cancelled["error"]) == ("failed", "Job cancelled by user")
    again = client.delete(f"{JOBS}/{jobs[0]}")
    assert again.status_code == 400 and "not running" in error(again)
    assert client.get(JOBS).json()["total"] == 2
    assert client.post(f"{JOBS}/imagine", json={"prompt": "fits now", "stream": False}).status_code == 201


def test_type_and_total_limits_and_video_jobs() -> None:
    with MidjourneyEmulator(token=None, max_jobs=2, max_image_jobs=1, max_video_jobs=2, timings=TIMINGS) as emulator:
        emulator.never_finish = True
        with _client(emulator, None) as http:
            assert http.post(f"{JOBS}/imagine", json={"prompt": "still", "stream": False}).status_code == 201
            busy = http.post(f"{JOBS}/imagine", json={"prompt": "still", "stream": False})
            assert (busy.status_code, error(busy)) == (
                429,
                "Channel 1000000000000000001 is busy executing 1 image jobs",
            )
            video = http.post(f"{JOBS}/imagine", json={"prompt": "waves --video", "stream": False}).json()
            assert video["jobType"] == "video" and JOBID_RE.match(video["jobid"])
            busy = http.post(f"{JOBS}/imagine", json={"prompt": "more --video", "stream": False})
            assert error(busy) == "Channel 1000000000000000001 is busy executing 2 jobs"
            emulator.complete_job(video["jobid"])
            done = http.get(f"{JOBS}/{video['jobid']}").json()["response"]
            assert len(done["videoUx"]) == 4 and "imageUx" not in done
            media = http.get(done["videoUx"][0]["url"], headers=BROWSER)
            assert media.headers["content-type"] == "video/mp4" and media.content[4:8] == b"ftyp"


def test_lock_channel_596_and_reset(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    channel = emu.channels[0]
    emu.lock_channel(channel)
    assert client.get(f"{ACCOUNTS}/{channel}").json()["error"] == "Pending mod message"
    response = client.post(f"{JOBS}/imagine", json={"prompt": "x", "stream": False})
    assert (response.status_code, error(response)) == (596, ALL_LOCKED.format(n=1))
    explicit = client.post(f"{JOBS}/imagine", json={"prompt": "x", "stream": False, "channel": channel})
    assert explicit.status_code == 596
    reset = client.post(f"{ACCOUNTS}/reset/{channel}")
    assert (reset.status_code, reset.content) == (204, b"")
    assert "error" not in client.get(f"{ACCOUNTS}/{channel}").json()
    assert client.post(f"{JOBS}/imagine", json={"prompt": "x", "stream": False}).status_code == 201
    assert client.post(f"{ACCOUNTS}/reset/1234567890123456789").status_code == 404


# -- accounts -----------------------------------------------------------------------------------------------------
def test_accounts_crud_validation_and_redaction(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    discord = "MTIzNDU2Nzg5.secret-discord-token.xyz"
    created = client.post(ACCOUNTS, json={"discord": discord, "maxJobs": 5, "replyUrl": "https://h/cb"})
    assert created.status_code == 201
    account = created.json()
    assert account["discord"] == "MTI...xyz" and re.fullmatch(r"[1-9]\d{18}", account["channel"])
    assert (account["maxJobs"], account["maxImageJobs"], account["maxVideoJobs"]) == (5, 3, 3)
    updated = client.post(ACCOUNTS, json={"discord": discord, "maxJobs": 4, "maxImageJobs": 4})
    assert (updated.status_code, updated.json()["channel"], updated.json()["maxImageJobs"]) == (
        200,
        account["channel"],
        4,
    )
    assert set(client.get(ACCOUNTS).json()) == {emu.channels[0], account["channel"]}
    assert client.get(f"{ACCOUNTS}/{account['channel']}").json()["maxJobs"] == 4
    for payload, message in [
        ({}, "Required parameter discord is missing or empty"),
        ({"discord": "t", "maxJobs": 16}, "Parameter maxJobs must be between 1 and 15"),
        ({"discord": "t", "maxVideoJobs": 13}, "Parameter maxVideoJobs must be between 1 and 12"),
        (
            {"discord": "t", "maxJobs": 2, "maxImageJobs": 3},
            "Parameter maxImageJobs must be less than or equal to maxJobs",
        ),
        ({"discord": "t", "replyUrl": "https://h/" + "a" * 2048}, f"Parameter replyUrl {TOO_LONG} 2048 {CHARS}"),
    ]:
        response = client.post(ACCOUNTS, json=payload)
        assert (response.status_code, response.json()) == (400, {"error": message})
    legacy = client.post(ACCOUNTS, json={"discord": "v2-legacy-token"})
    assert legacy.status_code == 409 and error(legacy).startswith(
        "Legacy v2 Midjourney configuration detected for channel "
    )
    assert discord not in repr(emu.requests) and "secret-discord" not in repr(emu.state.accounts)
    assert emu.requests_to("POST", ACCOUNTS)[0].json == {
        "discord": "MTI...xyz",
        "maxJobs": 5,
        "replyUrl": "https://h/cb",
    }

    for channel in (account["channel"], emu.channels[0]):
        deleted = client.delete(f"{ACCOUNTS}/{channel}")
        assert (deleted.status_code, deleted.content) == (204, b"")
    for path in (ACCOUNTS, f"{ACCOUNTS}/{account['channel']}"):
        missing = client.get(path)
        assert (missing.status_code, missing.content) == (404, b"")
    assert client.delete(f"{ACCOUNTS}/{account['channel']}").status_code == 404
    assert client.post(f"{JOBS}/imagine", json={"prompt": "x", "stream": False}).status_code == 400


# -- outcomes -----------------------------------------------------------------------------------------------------
def test_moderated_failed_never_finishing_and_complete_job(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    moderated = wait_for(client, create(client, "imagine", prompt="something FORBIDDEN")["jobid"])
    assert moderated["status"] == "moderated" and moderated["code"] and moderated["errorDetails"]
    assert moderated["error"] and moderated["response"]["embeds"][0]["description"]
    failed = wait_for(client, create(client, "imagine", prompt="explode please")["jobid"])
    assert failed["status"] == "failed" and failed["error"] and failed["errorDetails"] and failed["code"] == 500
    emu.failure_words.add("kaboom")
    assert wait_for(client, create(client, "imagine", prompt="kaboom")["jobid"])["status"] == "failed"
    never = create(client, "imagine", prompt="neverending story")["jobid"]
    time.sleep(TIMINGS.complete_after + 0.1)  # type: ignore[operator]
    assert client.get(f"{JOBS}/{never}").json()["status"] == "progress"
    emu.complete_job(never)
    assert client.get(f"{JOBS}/{never}").json()["status"] == "completed"
    with client.stream("POST", f"{JOBS}/imagine", json={"prompt": "forbidden cat"}) as response:
        assert read_sse(response)[-1]["event"] == "midjourney_moderated"


def test_complete_after_range_spreads_finishing_times() -> None:
    timings = JobTimings(start_after=0.0, progress_after=0.01, complete_after=(0.05, 0.4))
    emulator = MidjourneyEmulator(token=None, max_jobs=15, max_image_jobs=12, timings=timings, seed=7)
    with emulator, _client(emulator, None) as http:
        ids = [
            http.post(f"{JOBS}/imagine", json={"prompt": f"p{n}", "stream": False}).json()["jobid"] for n in range(8)
        ]
        for _ in range(200):  # each finishes 0.05-0.4 s after its submission; bounded, for a busy machine
            jobs = [http.get(f"{JOBS}/{i}").json() for i in ids]
            if {j["status"] for j in jobs} == {"completed"}:
                break
            time.sleep(0.05)
    assert {j["status"] for j in jobs} == {"completed"}
    # Each job drew its own duration (0.05-0.4 s): finishing times spread over a tenth of a second or
    # more, where one fixed duration would finish all 8 within the ~20 ms their submissions took.
    # (Not "all distinct": two of them may land on the same millisecond.)
    finished = sorted(datetime.fromisoformat(j["updated"].replace("Z", "+00:00")).timestamp() for j in jobs)
    assert finished[-1] - finished[0] >= 0.1


def test_sse_client_leaving_early_leaves_job_stuck_when_enabled(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    emu.stuck_on_disconnect = True
    emu.timings = JobTimings(start_after=0.01, progress_after=0.02, complete_after=0.3, stuck_timeout=0.8)
    with client.stream("POST", f"{JOBS}/imagine", json={"prompt": "leaver"}) as response:
        for line in response.iter_lines():
            if '"midjourney_progress"' in line:
                jobid = json.loads(line[6:])["job"]["jobid"]
                break
    time.sleep(0.45)
    assert client.get(f"{JOBS}/{jobid}").json()["status"] == "progress"
    assert wait_for(client, jobid, ("failed",))["error"] == "Job timed out"


# -- CDN and proxy ------------------------------------------------------------------------------------------------
def test_cdn_needs_browser_user_agent_and_serves_distinct_pngs(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    job = completed(client)
    urls = [ux["url"] for ux in job["response"]["imageUx"]]
    blocked = httpx.get(urls[0], headers={"User-Agent": "python-httpx"}, timeout=5)
    assert blocked.status_code == 403
    bodies = []
    for url in urls:
        response = httpx.get(url, headers=BROWSER, timeout=5)
        assert (response.status_code, response.headers["content-type"]) == (200, "image/png")
        assert response.content.startswith(PNG_SIGNATURE)
        bodies.append(response.content)
    assert len(set(bodies)) == 4
    grid = job["response"]["attachments"][0]
    grid_bytes = httpx.get(grid["url"], headers=BROWSER, timeout=5).content
    assert len(grid_bytes) == grid["size"] and grid_bytes[16:24] == (128).to_bytes(4, "big") * 2
    emu.cdn_forbid_next(1)
    assert [httpx.get(urls[0], headers=BROWSER).status_code for _ in range(2)] == [403, 200]
    assert httpx.get(f"{emu.cdn_base_url}/nope/0_0.png", headers=BROWSER).status_code == 404
    other = completed(client)["response"]["imageUx"][0]["url"]
    assert httpx.get(other, headers=BROWSER).content not in bodies


def test_cdn_proxy_route(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    url = completed(client)["response"]["imageUx"][1]["url"]
    with _client(emu, None) as anonymous:
        response = anonymous.get("/v1/proxy/cdn-midjourney/", params={"cdnUrl": url})
        assert (response.status_code, response.json()) == (401, {"error": "Unauthorized", "code": 401})
    bad = client.get("/v1/proxy/cdn-midjourney/", params={"cdnUrl": "https://example.com/a.png"})
    assert bad.status_code == 400 and bad.json()["code"] == 400 and bad.json()["error"]
    for path in ("/v1/proxy/cdn-midjourney/", "/v1/proxy/cdn-midjourney"):
        proxied = client.get(path, params={"cdnUrl": url})
        assert (proxied.status_code, proxied.headers["content-type"]) == (200, "image/png")
        assert proxied.content == httpx.get(url, headers=BROWSER).content
    real = client.get("/v1/proxy/cdn-midjourney/", params={"cdnUrl": "https://cdn.midjourney.com/abc/0_0.jpeg"})
    assert real.status_code == 200 and real.content.startswith(PNG_SIGNATURE)


# -- fault injection and recording ------------------------------------------------------------------------------
def test_drop_next_before_and_after_handling(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    emu.drop_next(1, f"{JOBS}/imagine")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(f"{JOBS}/imagine", json={"prompt": "lost", "stream": False})
    assert emu.created_jobs() == [] and emu.requests[-1].dropped
    emu.drop_next(1, f"{JOBS}/imagine", method="POST", after_handling=True)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(f"{JOBS}/imagine", json={"prompt": "created but lost", "stream": False})
    assert [j["request"]["prompt"] for j in emu.created_jobs()] == ["created but lost"]
    assert (emu.requests[-1].status, emu.requests[-1].dropped) == (201, True)
    emu.drop_next(1, f"{JOBS}/imagine", after_handling=True)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(f"{JOBS}/imagine", json={"prompt": "streamed but lost"})
    assert len(emu.created_jobs()) == 2
    assert client.get(JOBS).status_code == 200  # the next request is answered normally


def test_fail_next_failure_rate_and_latency(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    emu.fail_next(2, 503, JOBS, method="GET")
    assert [client.get(JOBS).status_code for _ in range(3)] == [503, 503, 200]
    emu.fail_next(1, path_prefix=f"{JOBS}/imagine")
    failed = client.post(f"{JOBS}/imagine", json={"prompt": "x", "stream": False})
    assert (failed.status_code, failed.json()) == (500, {"error": "Internal Server Error"})
    assert emu.created_jobs() == []
    emu.failure_rate = 1.0
    assert client.get(JOBS).status_code == 500
    emu.failure_rate = 0.0
    url = completed(client)["response"]["imageUx"][0]["url"]
    emu.latency = 5.0  # large, so "the CDN route does not wait for it" holds even on a loaded machine
    started = time.monotonic()
    assert client.get(JOBS, timeout=30).status_code == 200
    assert time.monotonic() - started >= 5.0
    started = time.monotonic()
    assert httpx.get(url, headers=BROWSER, timeout=30).status_code == 200
    assert time.monotonic() - started < 5.0


def test_recorded_requests_and_reset(emu: MidjourneyEmulator, client: httpx.Client) -> None:
    client.get(JOBS, params={"page": "2"})
    create(client, "imagine", prompt="recorded")
    first = emu.requests[0]
    assert (first.method, first.path, first.query, first.status, first.json) == ("GET", JOBS, {"page": "2"}, 200, None)
    assert first.authorized and first.user_agent and first.user_agent.startswith("python-httpx")
    assert [r.json for r in emu.requests_to("post", f"{JOBS}/")] == [{"stream": False, "prompt": "recorded"}]
    assert TOKEN not in repr(emu.requests)
    emu.latency, emu.never_finish = 1.0, True
    emu.fail_next(5)
    emu.reset()
    assert (emu.requests, emu.jobs, emu.latency, emu.never_finish) == ([], {}, 0.0, False)
    assert client.get(JOBS).status_code == 200


# -- standalone server and pytest plugin ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_module_runs_standalone() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "airflow_provider_midjourney.testing", "--port", str(port), "--token", "t0k"]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        first_line: list[str] = []
        reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(30)
        assert first_line and first_line[0].strip() == f"http://127.0.0.1:{port}"
        response = httpx.get(f"http://127.0.0.1:{port}{ACCOUNTS}", headers={"Authorization": "Bearer t0k"}, timeout=5)
        assert response.status_code == 200 and list(response.json()) == ["1000000000000000001"]
    finally:
        process.terminate()
        try:
            assert process.wait(10) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)


def test_pytest_plugin_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "from airflow_provider_midjourney.testing.pytest_plugin import midjourney_emulator, pytest_configure\n"
    )
    pytester.makepyfile(
        """
        import httpx, pytest

        @pytest.mark.midjourney_emulator(token=None, channels=2)
        def test_it(midjourney_emulator):
            response = httpx.get(midjourney_emulator.base_url + "/v3/midjourney/accounts")
            assert response.status_code == 200 and len(response.json()) == 2

        def test_default(midjourney_emulator):
            assert httpx.get(midjourney_emulator.base_url + "/v3/midjourney/jobs").status_code == 401
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio", "--strict-markers")
    result.assert_outcomes(passed=2)


def test_a_fault_rule_set_while_a_request_is_held_by_latency_takes_the_next_request(
    emu: MidjourneyEmulator, client: httpx.Client
) -> None:
    """Rules are matched when a request arrives: a fault planned for "the next request" must not
    hit one that was already in flight (the benchmarks and fault tests plan faults mid-traffic)."""
    emu.latency = 1.0
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = pool.submit(client.get, JOBS)
        for _ in range(200):  # bounded: until the emulator has seen it arrive
            if emu.requests or in_flight.done():
                break
            time.sleep(0.01)
        emu.fail_next(1, 503, JOBS, method="GET")
        assert in_flight.result(timeout=30).status_code == 200
    emu.latency = 0.0
    assert client.get(JOBS).status_code == 503
