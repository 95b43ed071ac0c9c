"""Video operators: refusals before any HTTP call, the useapi v3 translation, and dag.test() runs with
stored .mp4 files on useapi v3, ImaginePro, midjourney-proxy, TTAPI and Legnext/Youchuan (Apiframe's
sits with its backend tests)."""

from __future__ import annotations

import json
import re
import struct
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_midjourney.exceptions import (
    AirflowSkipException,
    MidjourneyInvalidRequestError,
    MidjourneyUnsupportedError,
)
from airflow_provider_midjourney.operators import MidjourneyVideoExtendOperator, MidjourneyVideoOperator
from airflow_provider_midjourney.testing import MidjourneyEmulator
from airflow_provider_midjourney.testing.images import mp4_bytes
from tests.airflow_api import airflow_api  # noqa: F401 - the fixture
from tests.conftest import TOKEN
from tests.task_context import task_context
from tests.test_operators import run_dag, task_states, xcom
from tests.test_pick import needs_dag_test_hitl

PARENT = "j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney"


def mp4_boxes(data: bytes) -> list[bytes]:
    """The top-level ISO-BMFF box types of ``data`` (each box's length must add up exactly)."""
    kinds, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        assert size >= 8, f"box {kind!r} at {offset} has size {size}"
        kinds.append(kind)
        offset += size
    assert offset == len(data)
    return kinds


def assert_stored_mp4s(files: list[dict[str, Any]], count: int) -> None:
    assert len(files) == count
    for stored in files:
        assert stored["content_type"] == "video/mp4" and stored["uri"].endswith(".mp4")
        data = Path(stored["uri"].removeprefix("file://")).read_bytes()
        assert mp4_boxes(data) == [b"ftyp", b"free", b"moov", b"mdat"]


def test_emulator_mp4_is_a_whole_iso_bmff_file() -> None:
    data = mp4_bytes("some/clip")
    assert mp4_boxes(data) == [b"ftyp", b"free", b"moov", b"mdat"] and data != mp4_bytes("other/clip")
    # the one chunk offset points at the sample inside mdat
    stco = data.index(b"stco")
    (offset,) = struct.unpack(">I", data[stco + 12 : stco + 16])
    assert data[offset - 4 : offset] == b"mdat"


# -- refused before any HTTP call ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "start frame either"),
        ({"job_id": PARENT}, "index"),
        ({"job_id": PARENT, "index": 5}, "index"),
        ({"image": "ftp://x/a.png"}, "image"),
        ({"image": "https://x/a.png", "motion": "fast"}, "motion"),
        ({"image": "https://x/a.png", "resolution": "4k"}, "resolution"),
        ({"image": "https://x/a.png", "batch_size": 3}, "batch_size"),
        ({"image": "https://x/a.png", "loop": True, "end_image": "https://x/b.png"}, "exclusive"),
    ],
)
def test_video_operator_refuses_bad_input_naming_the_field(
    midjourney_conn: str, emulator: MidjourneyEmulator, kwargs: dict[str, Any], field: str
) -> None:
    op = MidjourneyVideoOperator(task_id="t", **kwargs)
    with pytest.raises(MidjourneyInvalidRequestError, match=field):
        op.execute(task_context())  # type: ignore[arg-type]
    assert emulator.requests == []


def test_extend_operator_refuses_bad_index(midjourney_conn: str, emulator: MidjourneyEmulator) -> None:
    op = MidjourneyVideoExtendOperator(task_id="t", job_id=PARENT, index=0)
    with pytest.raises(MidjourneyInvalidRequestError, match="index"):
        op.execute(task_context())  # type: ignore[arg-type]
    assert emulator.requests == []


@pytest.mark.parametrize("api_version", ["v2", "v1"])
def test_useapi_v2_refuses_video_before_http_or_skips(
    emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch, api_version: str
) -> None:
    extra = {"api_version": api_version, "server": "1234567890123456789", "channel": "1234567890123456789"}
    conn = {"conn_type": "midjourney_useapi_v2", "host": emulator.base_url, "password": TOKEN, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_V2", json.dumps(conn))
    for op in (
        MidjourneyVideoOperator(task_id="t", image="https://x/a.png", midjourney_conn_id="v2"),
        MidjourneyVideoExtendOperator(task_id="t", job_id=PARENT, index=1, midjourney_conn_id="v2"),
    ):
        with pytest.raises(MidjourneyUnsupportedError, match="video"):
            op.execute(task_context())  # type: ignore[arg-type]
    skipping = MidjourneyVideoOperator(
        task_id="t", image="https://x/a.png", midjourney_conn_id="v2", if_unsupported="skip"
    )
    with pytest.raises(AirflowSkipException, match="if_unsupported='skip'"):
        skipping.execute(task_context())  # type: ignore[arg-type]
    assert emulator.requests == []


def test_video_fields_are_templated() -> None:
    assert {"job_id", "index", "image", "prompt", "motion", "end_image", "resolution"} <= set(
        MidjourneyVideoOperator.template_fields
    )
    assert {"job_id", "index", "prompt", "motion"} <= set(MidjourneyVideoExtendOperator.template_fields)


def test_useapi_v3_refuses_resolution_and_extend_prompt_before_http(
    midjourney_conn: str, emulator: MidjourneyEmulator
) -> None:
    video = MidjourneyVideoOperator(task_id="t", image="https://x/a.png", resolution="hd")
    with pytest.raises(MidjourneyInvalidRequestError, match="resolution"):
        video.execute(task_context())  # type: ignore[arg-type]
    extend = MidjourneyVideoExtendOperator(task_id="t", job_id=PARENT, index=1, prompt="more")
    with pytest.raises(MidjourneyInvalidRequestError, match="prompt"):
        extend.execute(task_context())  # type: ignore[arg-type]
    assert emulator.requests == []


# -- useapi v3: the translation -----------------------------------------------------------------


def test_useapi_v3_image_url_becomes_a_video_prompt(hook, emulator: MidjourneyEmulator) -> None:
    from airflow_provider_midjourney.video_requests import VideoRequest

    request = VideoRequest.build(
        image="https://e.x/start.png", prompt="waves", motion="high", end_image="https://e.x/end.png", batch_size=2
    )
    job = hook.submit_job(request)
    [post] = emulator.requests_to("POST", "/v3/midjourney/jobs/imagine")
    assert post.json is not None
    assert post.json["prompt"] == "https://e.x/start.png waves --video --motion high --end https://e.x/end.png --bs 2"
    assert job.verb == "imagine"


# -- dag.test() ---------------------------------------------------------------------------------

dag_test = pytest.mark.usefixtures("airflow_db", "midjourney_conn")


@dag_test
def test_dag_useapi_v3_animate_extend_and_download(emulator: MidjourneyEmulator, tmp_path: Path) -> None:
    dr = run_dag(
        "v3_video",
        f"""
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt="a red fox", poll_interval=0.05)
        animate = MidjourneyVideoOperator(task_id="animate", job_id=imagine.output["job_id"], index=2,
                                          prompt="runs through snow", motion="high", poll_interval=0.05)
        clip = MidjourneyButtonOperator(task_id="clip", job_id=animate.output["job_id"], button="U3",
                                        poll_interval=0.05)
        extend = MidjourneyVideoExtendOperator(task_id="extend", job_id=clip.output["job_id"], index=1,
                                               motion="low", poll_interval=0.05)
        download = MidjourneyDownloadOperator(task_id="download", job_id=animate.output["job_id"], kind="videos",
                                              destination={str(tmp_path / "v")!r}, contact_sheet=True)
        imagine >> animate >> [clip, download]
        clip >> extend
    """,
    )
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    animate = xcom(dr, "animate")
    assert animate["backend"] == "useapi_v3" and len(animate["video_urls"]) == 4 and animate["image_urls"] == []
    start = xcom(dr, "imagine")["image_urls"][1]
    [post] = [r for r in emulator.requests_to("POST", "/v3/midjourney/jobs/imagine") if "--video" in r.json["prompt"]]
    assert post.json["prompt"] == f"{start} runs through snow --video --motion high"
    [extend_post] = [r for r in emulator.requests_to("POST", "/v3/midjourney/jobs/button") if "Extend" in str(r.json)]
    assert extend_post.json["button"] == "Extend (Low motion)"
    assert len(xcom(dr, "extend")["video_urls"]) == 4
    files = xcom(dr, "download")
    assert_stored_mp4s(files, 4)
    sheet = (tmp_path / "v" / "index.html").read_text()
    assert sheet.count("<video ") == 4


# -- ImaginePro ---------------------------------------------------------------------------------


@pytest.fixture
def imaginepro_conn(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    conn = {"conn_type": "imaginepro", "host": emulator.base_url, "password": TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_IMAGINEPRO_DEFAULT", json.dumps(conn))
    return "imaginepro_default"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"image": "https://e.x/a.png", "prompt": "p"}, "end_image"),
        ({"image": "https://e.x/a.png", "loop": True}, "prompt"),
        ({"image": "https://e.x/a.png", "prompt": "p", "loop": True, "motion": "high"}, "motion"),
        ({"image": "https://e.x/a.png", "prompt": "p", "loop": True, "resolution": "hd"}, "resolution"),
    ],
)
def test_imaginepro_refuses_what_its_video_lacks(
    imaginepro_conn: str, emulator: MidjourneyEmulator, kwargs: dict[str, Any], field: str
) -> None:
    op = MidjourneyVideoOperator(task_id="t", midjourney_conn_id=imaginepro_conn, **kwargs)
    with pytest.raises(MidjourneyInvalidRequestError, match=field):
        op.execute(task_context())  # type: ignore[arg-type]
    extend = MidjourneyVideoExtendOperator(task_id="t", job_id="d15c1541-229a", index=1, midjourney_conn_id="x")
    assert extend.job_id  # an image job's id is refused as a video parent:
    extend.midjourney_conn_id = imaginepro_conn
    with pytest.raises(MidjourneyInvalidRequestError, match="not a video job"):
        extend.execute(task_context())  # type: ignore[arg-type]
    assert emulator.requests == []


@pytest.mark.usefixtures("airflow_db", "imaginepro_conn")
def test_dag_imaginepro_animate_extend_and_download(emulator: MidjourneyEmulator, tmp_path: Path) -> None:
    opts = 'midjourney_conn_id="imaginepro_default", poll_interval=0.05'
    dr = run_dag(
        "ip_video",
        f"""
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt="a red fox", {opts})
        up = MidjourneyButtonOperator(task_id="u2", job_id=imagine.output["job_id"], button="U2", {opts})
        animate = MidjourneyVideoOperator(task_id="animate", job_id=up.output["job_id"], index=1,
                                          prompt="runs through snow", loop=True, {opts})
        extend = MidjourneyVideoExtendOperator(task_id="extend", job_id=animate.output["job_id"], index=3, {opts})
        download = MidjourneyDownloadOperator(task_id="download", job_id=extend.output["job_id"], kind="videos",
                                              destination={str(tmp_path / "v")!r},
                                              midjourney_conn_id="imaginepro_default")
        imagine >> up >> animate >> extend >> download
    """,
    )
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    animate = xcom(dr, "animate")
    assert animate["job_id"].startswith("mjvideo-") and len(animate["video_urls"]) == 4
    [generate] = emulator.requests_to("POST", "/api/v1/video/mj/generate")
    upscaled = xcom(dr, "u2")["image_urls"][0]
    assert generate.json is not None and generate.json.pop("ref").startswith("airflow:ip_video/")
    assert generate.json == {"prompt": "runs through snow", "startFrameUrl": upscaled, "endFrameUrl": upscaled}
    [extend] = emulator.requests_to("POST", "/api/v1/video/mj/extend")
    assert extend.json is not None and extend.json.pop("ref")
    assert extend.json == {"messageId": animate["job_id"].removeprefix("mjvideo-"), "index": 2}  # 0-based
    assert emulator.requests_to("GET", "/api/v1/video/mj/fetch/")
    assert_stored_mp4s(xcom(dr, "download"), 4)


# -- midjourney-proxy ---------------------------------------------------------------------------


@pytest.fixture
def proxy_flavour(emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Any:
    from airflow_provider_midjourney.hooks.midjourney_proxy import MidjourneyProxyHook
    from airflow_provider_midjourney.testing.midjourney_proxy import proxy_routes

    routes = proxy_routes(emulator)
    routes.reset()
    routes.superset = request.param == "superset"
    MidjourneyProxyHook.forget_probes()
    conn = {"conn_type": "midjourney_proxy", "host": emulator.base_url, "password": TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_PROXY", json.dumps(conn))
    yield routes
    routes.reset()
    MidjourneyProxyHook.forget_probes()


@pytest.mark.parametrize("proxy_flavour", ["original"], indirect=True)
def test_proxy_original_refuses_video_before_it_creates_anything(proxy_flavour: Any, emulator) -> None:
    for op in (
        MidjourneyVideoOperator(task_id="t", image="https://e.x/a.png", prompt="p", midjourney_conn_id="proxy"),
        MidjourneyVideoExtendOperator(task_id="t", job_id="1234567890", prompt="p", midjourney_conn_id="proxy"),
    ):
        with pytest.raises(MidjourneyUnsupportedError, match="video"):
            op.execute(task_context())  # type: ignore[arg-type]
    # only the capability probes were sent (no submit)
    assert not emulator.requests_to("POST", "/mj/submit/")


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("proxy_flavour", ["superset"], indirect=True)
def test_dag_proxy_superset_animate_extend_and_download(proxy_flavour: Any, emulator, tmp_path: Path) -> None:
    opts = 'midjourney_conn_id="proxy", poll_interval=0.05'
    dr = run_dag(
        "proxy_video",
        f"""
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt="a red fox", {opts})
        animate = MidjourneyVideoOperator(task_id="animate", job_id=imagine.output["job_id"], index=4,
                                          prompt="runs", motion="high", batch_size=2, {opts})
        extend = MidjourneyVideoExtendOperator(task_id="extend", job_id=animate.output["job_id"], index=2,
                                               prompt="and jumps", {opts})
        download = MidjourneyDownloadOperator(task_id="download", job_id=animate.output["job_id"], kind="videos",
                                              destination={str(tmp_path / "v")!r}, midjourney_conn_id="proxy")
        imagine >> animate >> [extend, download]
    """,
    )
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    animate = xcom(dr, "animate")
    assert animate["backend"] == "midjourney_proxy" and animate["image_urls"] == [] and len(animate["video_urls"]) == 4
    first, second = emulator.requests_to("POST", "/mj/submit/video")
    assert first.json is not None and second.json is not None and first.json.pop("state") and second.json.pop("state")
    start = xcom(dr, "imagine")["image_urls"][3]
    assert first.json == {"prompt": "runs", "motion": "high", "image": start, "batchSize": 2}
    assert second.json == {"prompt": "and jumps", "action": "extend", "taskId": animate["job_id"], "index": 2}
    assert_stored_mp4s(xcom(dr, "download"), 4)


# -- the example DAG and the gallery -----------------------------------------------------------


@needs_dag_test_hitl
@pytest.mark.usefixtures("airflow_db", "midjourney_conn")
def test_example_dag_animates_the_chosen_picture_and_the_gallery_plays_it(
    emulator: MidjourneyEmulator,
    airflow_api: Any,  # noqa: F811 - the fixture from tests.airflow_api
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.airflow_api import auth
    from tests.test_plugin import allow_relay

    allow_relay(monkeypatch, emulator.port)  # the gallery relays loopback only from allowed hosts
    from tests.conftest import example_dag
    from tests.test_pick import Answerer

    monkeypatch.setenv("MIDJOURNEY_DESTINATION", f"file://{tmp_path}")
    dag = example_dag("midjourney_video")
    dag.get_task("pick").response_timeout = timedelta(seconds=150)
    with Answerer(airflow_api, "midjourney_video", ["U3"]) as answerer:
        dag_run = dag.test()
    assert answerer.answer is not None and answerer.answer.status_code == 200, answerer.errors
    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    chosen = xcom(dag_run, "imagine")["image_urls"][2]
    [post] = [r for r in emulator.requests_to("POST", "/v3/midjourney/jobs/imagine") if "--video" in r.json["prompt"]]
    assert post.json["prompt"].startswith(f"{chosen} the boat drifts") and "--motion low" in post.json["prompt"]
    files = xcom(dag_run, "download")
    assert_stored_mp4s(files, 4)
    page = airflow_api.get(
        f"/midjourney/dags/midjourney_video/runs/{dag_run.run_id}/tasks/animate", headers=auth("viewer")
    )
    assert page.status_code == 200 and page.text.count("<video ") == 4
    source = re.findall(r'<video src="([^"]+)"', page.text)[0].replace("&amp;", "&")
    clip = airflow_api.get(source, headers=auth("viewer"))
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"
    assert mp4_boxes(clip.content) == [b"ftyp", b"free", b"moov", b"mdat"]
    sheet = Path(xcom(dag_run, "download", key="contact_sheet").removeprefix("file://")).read_text()
    assert sheet.count("<video ") == 4


# -- TTAPI and Legnext / Youchuan: the same DAG through their wings -----------------------------------


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize(
    "backend, extra",
    [("ttapi", {}), ("legnext", {"api": "legnext"}), ("legnext", {"api": "youchuan"})],
    ids=["ttapi", "legnext", "youchuan"],
)
def test_dag_animate_extend_and_download_on_ttapi_and_legnext(
    backend: str, extra: dict[str, str], emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn: dict[str, Any] = {"conn_type": backend, "host": emulator.base_url, "password": TOKEN, "extra": extra}
    if extra.get("api") == "youchuan":
        conn["login"] = "emulator-app"
    monkeypatch.setenv("AIRFLOW_CONN_MIDJOURNEY_DEFAULT", json.dumps(conn))
    dr = run_dag(
        f"{backend}_{extra.get('api', '')}_video",
        f"""
        imagine = MidjourneyImagineOperator(task_id="imagine", prompt="a red fox", poll_interval=0.05)
        animate = MidjourneyVideoOperator(task_id="animate", job_id=imagine.output["job_id"], index=2,
                                          prompt="runs through snow", motion="high", poll_interval=0.05)
        extend = MidjourneyVideoExtendOperator(task_id="extend", job_id=animate.output["job_id"], index=1,
                                               motion="low", poll_interval=0.05)
        download = MidjourneyDownloadOperator(task_id="download", job_id=animate.output["job_id"], kind="videos",
                                              destination={str(tmp_path / "v")!r}, contact_sheet=True)
        imagine >> animate >> [extend, download]
    """,
    )
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    animate = xcom(dr, "animate")
    assert animate["backend"] == backend and animate["video_urls"] and animate["verb"]
    assert xcom(dr, "extend")["video_urls"]
    files = xcom(dr, "download")
    assert_stored_mp4s(files, len(animate["video_urls"]))
    assert (tmp_path / "v" / "index.html").read_text().count("<video ") == len(files)
