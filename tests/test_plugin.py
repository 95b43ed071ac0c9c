"""The "Midjourney" gallery plugin: registered through its entry point, mounted by Airflow's own
api-server app (in-process), reading a real run of the example DAG on the emulator, behind
Airflow's access control."""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pytest

from airflow_provider_midjourney.links import (
    MidjourneyFilesLink,
    MidjourneyImageLink,
    gallery_ui_url,
    run_gallery_ui_url,
)
from airflow_provider_midjourney.plugins import pages
from airflow_provider_midjourney.plugins.media import sniff
from airflow_provider_midjourney.plugins.plugin import gallery_supported
from airflow_provider_midjourney.plugins.results import Picture, job_pictures, read_task
from airflow_provider_midjourney.testing import MidjourneyEmulator
from tests.airflow_api import airflow_api, auth  # noqa: F401 - the fixture
from tests.conftest import connection_json, example_dag
from tests.dag_runs import xcom

PNG = b"\x89PNG\r\n\x1a\n"
DAG_ID = "midjourney_imagine_upscale"


# -- pure parts -----------------------------------------------------------------------------------


SUPPORTED = gallery_supported()
needs_gallery = pytest.mark.skipif(not SUPPORTED, reason="the gallery needs Airflow >= 3.1")


def test_the_plugin_is_registered_through_its_entry_point() -> None:
    found = [ep for ep in entry_points(group="airflow.plugins") if ep.name == "midjourney"]
    assert len(found) == 1
    plugin = found[0].load()
    if not SUPPORTED:  # Airflow 3.0: loads, registers nothing
        assert plugin.name == "midjourney" and plugin.fastapi_apps == [] and plugin.external_views == []
        return
    assert plugin.name == "midjourney" and [a["url_prefix"] for a in plugin.fastapi_apps] == ["/midjourney"]
    views = {v["destination"]: v for v in plugin.external_views}
    assert set(views) == {"task_instance", "dag_run"}
    # Relative hrefs: the UI resolves them against its base_url, so a path prefix works.
    assert all(not v["href"].startswith(("/", "http")) for v in views.values())
    assert "{MAP_INDEX}" in views["task_instance"]["href"] and "{TASK_ID}" in views["task_instance"]["href"]
    assert gallery_supported("3.1.0") and gallery_supported("3.3.2") and not gallery_supported("3.0.6")


def test_job_pictures_grid_then_images_and_grid_only_backends() -> None:
    result = {"job_id": "j", "status": "completed", "grid_url": "https://c/g.png", "image_urls": ["a", "b", "c", "d"]}
    assert [p.label for p in job_pictures(result)] == ["grid", "U1", "U2", "U3", "U4"]
    only_grid = {"job_id": "j", "status": "completed", "grid_url": "https://c/g.png", "image_urls": []}
    assert job_pictures(only_grid) == [Picture("grid", "grid", "https://c/g.png")]
    upscale = {"job_id": "j", "status": "completed", "grid_url": "https://c/a.png", "image_urls": ["https://c/u.png"]}
    assert job_pictures(upscale) == [Picture("image", "image", "https://c/u.png")]  # not twice
    video = {"job_id": "j", "status": "completed", "video_urls": ["https://c/v.mp4"]}
    assert job_pictures(video)[0].is_video


def test_read_task_kinds() -> None:
    assert read_task(None).kind == "none"
    assert read_task({"some": "thing"}).kind == "none"
    assert read_task(None, job_id="j1").kind == "waiting"
    stored = [{"uri": "file:///x/a.png", "size": 3, "content_type": "image/png", "url": "https://c/a.png"}]
    files = read_task(stored, event_extra={"job_ids": ["j1"], "prompts": ["a fox"]})
    assert files.kind == "download" and files.job_ids == ["j1"] and files.prompts == ["a fox"]
    assert files.pictures[0].label == "a.png" and files.pictures[0].fallback_url == "https://c/a.png"
    job = {"job_id": "j", "status": "completed", "prompt": "p", "image_urls": ["a", "b"]}
    pick = read_task(["U2"], pick=job)
    assert pick.kind == "pick" and pick.chosen == ["U2"] and pick.prompts == ["p"]


@pytest.mark.parametrize(
    ("head", "media_type"),
    [
        (PNG + b"\0" * 8, "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 12, "image/jpeg"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
        (b"\0\0\0\x18ftypmp42\0\0\0\0", "video/mp4"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'>", None),
        (b"<!doctype html><html>", None),
        (b"root:x:0:0:root:/root:/bin/bash", None),
    ],
)
def test_only_pictures_and_videos_are_relayed(head: bytes, media_type: str | None) -> None:
    assert sniff(head) == media_type


def test_links_lead_to_the_gallery_while_a_job_runs() -> None:
    class Key:
        dag_id, run_id, task_id, map_index = "d", "manual__2026-01-01T00:00:00+00:00", "t", 2

    class Running:
        midjourney_result = None

    link = MidjourneyImageLink().get_link(Running(), ti_key=Key())
    assert link == gallery_ui_url("d", Key.run_id, "t", 2)
    assert link.endswith("/dags/d/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00/tasks/t/mapped/2/plugin/midjourney")
    assert MidjourneyImageLink().get_link(Running(), ti_key=None) == ""

    class Finished:
        midjourney_result: ClassVar[dict[str, str]] = {"job_id": "j", "grid_url": "https://cdn/g.png"}

    assert MidjourneyImageLink().get_link(Finished(), ti_key=Key()) == "https://cdn/g.png"

    class Sheet:
        contact_sheet_uri = "https://bucket.example/x/index.html"

    assert MidjourneyFilesLink().get_link(Sheet(), ti_key=Key()) == Sheet.contact_sheet_uri
    Sheet.contact_sheet_uri = "file:///data/x/index.html"  # a browser cannot open it: the gallery can
    assert MidjourneyFilesLink().get_link(Sheet(), ti_key=Key()) == gallery_ui_url("d", Key.run_id, "t", 2)
    assert (
        run_gallery_ui_url("d", "r", base="http://h/airflow/") == "http://h/airflow/dags/d/runs/r/plugin/midjourney-run"
    )


# -- through Airflow's api-server app -------------------------------------------------------------


@pytest.fixture(scope="module")
def run(_emulator_session: MidjourneyEmulator, airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One run of the example DAG (imagine → 4 upscales, seed, download) on the emulator."""
    saved = {k: os.environ.get(k) for k in ("AIRFLOW_CONN_MIDJOURNEY_DEFAULT", "MIDJOURNEY_DESTINATION")}
    os.environ["AIRFLOW_CONN_MIDJOURNEY_DEFAULT"] = connection_json(_emulator_session.base_url)
    os.environ["MIDJOURNEY_DESTINATION"] = f"file://{tmp_path_factory.mktemp('gallery-files')}"
    try:
        dag_run = example_dag(DAG_ID).test()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert dag_run.state == "success"
    return dag_run


def base(dag_run: Any) -> str:
    return f"/midjourney/dags/{DAG_ID}/runs/{quote(dag_run.run_id, safe='')}"


def allow_relay(monkeypatch: pytest.MonkeyPatch, *ports: int) -> None:
    """The relay fetches loopback only from hosts the allow-list names (here: the emulator's CDN)."""
    hosts = ", ".join(f"127.0.0.1:{port}" for port in ports)
    monkeypatch.setenv("AIRFLOW__MIDJOURNEY__RELAY_ALLOWED_HOSTS", hosts)


@pytest.fixture
def client(
    airflow_api: Any,  # noqa: F811 - the fixture from tests.airflow_api
    _emulator_session: MidjourneyEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    allow_relay(monkeypatch, _emulator_session.port)
    yield airflow_api


@needs_gallery
def test_unauthenticated_and_unauthorised_users_see_nothing(client: Any, run: Any) -> None:
    urls = [base(run), f"{base(run)}/tasks/imagine", f"{base(run)}/tasks/imagine/pictures/0"]
    for url in urls:
        assert client.get(url).status_code == 401
        assert client.get(url, headers={"Authorization": "Bearer not-a-jwt"}).status_code in (401, 403)
        refused = client.get(url, headers=auth("noxcom"))  # may read the DAG, not its XCom
        assert refused.status_code == 403 and "image" not in refused.headers.get("content-type", "")
        assert run.run_id not in refused.text and "lighthouse" not in refused.text


@needs_gallery
def test_task_instance_view_shows_prompt_job_and_pictures(client: Any, run: Any) -> None:
    imagine = xcom(run, "imagine")
    page = client.get(f"{base(run)}/tasks/imagine?map_index=%7BMAP_INDEX%7D", headers=auth("viewer"))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # One script only, the fixed theme follower, allowed by its hash: nothing from a result can run.
    csp_scripts = re.search(r"script-src ([^;]+)", page.headers["content-security-policy"]).group(1)
    [script] = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    assert script == pages.THEME_SCRIPT and page.text.count("<script") == 1
    assert csp_scripts == f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
    text = page.text
    assert imagine["prompt"] in text and imagine["job_id"] in text and "U1" in text and "completed" in text
    sources = re.findall(r'<img src="([^"]+)"', text)
    assert len(sources) == 5  # the grid and U1-U4
    assert all(s.startswith(f"{base(run)}/tasks/imagine/pictures/") for s in sources)
    # Every picture is served by the app (the CDN needs a browser's headers) as a real PNG.
    for number, source in enumerate(sources):
        picture = client.get(source.replace("&amp;", "&"), headers=auth("viewer"))
        assert picture.status_code == 200, (number, picture.text)
        assert picture.headers["content-type"] == "image/png" and picture.content.startswith(PNG)
        assert picture.headers["x-content-type-options"] == "nosniff"
    assert client.get(f"{base(run)}/tasks/imagine/pictures/5", headers=auth("viewer")).status_code == 404


@needs_gallery
def test_session_cookie_is_accepted_like_the_ui_sends_it(client: Any, run: Any) -> None:
    from tests.airflow_api import token

    client.cookies.set("_token", token("viewer"))
    try:
        assert client.get(f"{base(run)}/tasks/seed").status_code == 200
    finally:
        client.cookies.clear()


@needs_gallery
def test_seed_and_mapped_views(client: Any, run: Any) -> None:
    seed = client.get(f"{base(run)}/tasks/seed?map_index=-1", headers=auth("viewer")).text
    assert str(xcom(run, "seed")["seed"]) in seed
    mapped = client.get(f"{base(run)}/tasks/upscale", headers=auth("viewer")).text  # no map index: all four
    assert mapped.count('class="card"') == 4
    one = client.get(f"{base(run)}/tasks/upscale?map_index=2", headers=auth("viewer")).text
    assert one.count('class="card"') == 1 and xcom(run, "upscale", map_index=2)["job_id"] in one


@needs_gallery
def test_run_view_lists_every_midjourney_task_of_the_run(client: Any, run: Any) -> None:
    page = client.get(base(run), headers=auth("viewer"))
    assert page.status_code == 200
    cards = re.findall(r'data-task="([^"]+)" data-map-index="(-?\d+)"', page.text)
    assert sorted(cards) == sorted(
        [("imagine", "-1"), ("seed", "-1"), ("download", "-1")] + [("upscale", str(i)) for i in range(4)]
    )
    # imagine: grid + U1-U4; each upscale: its image; seed: the grid it read; download: 4 files;
    # the overview shows the same pictures as thumbnails, one line per task instance.
    overview, _, cards_html = page.text.partition("</ol></section>")
    assert len(re.findall(r"<img ", cards_html)) == len(re.findall(r"<img ", overview)) == 5 + 4 * 1 + 1 + 4
    assert overview.count("<li>") == len(cards)
    # Task titles open the task instance's own tab in the UI (mapped ones at /mapped/<n>).
    assert f"/dags/{DAG_ID}/runs/{quote(run.run_id, safe='')}/tasks/upscale/mapped/3/plugin/midjourney" in page.text


@needs_gallery
def test_download_view_serves_the_stored_files_with_job_and_prompt(client: Any, run: Any) -> None:
    stored = xcom(run, "download")
    page = client.get(f"{base(run)}/tasks/download", headers=auth("viewer")).text
    imagine = xcom(run, "imagine")
    assert imagine["job_id"] in page and imagine["prompt"] in page  # from the asset event's extra
    for number, item in enumerate(stored):
        assert Path(item["uri"].removeprefix("file://")).name in page
        served = client.get(f"{base(run)}/tasks/download/pictures/{number}", headers=auth("viewer"))
        assert served.content == Path(item["uri"].removeprefix("file://")).read_bytes()


@needs_gallery
def test_download_asset_event_and_link(run: Any) -> None:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        event = session.query(AssetEvent).filter_by(source_dag_id=DAG_ID, source_run_id=run.run_id).one()
        extra = dict(event.extra)
    imagine = xcom(run, "imagine")
    assert extra["job_ids"] == [imagine["job_id"]] and extra["prompts"] == [imagine["prompt"]]
    link = xcom(run, "download", key="_link_MidjourneyFilesLink")
    assert link == gallery_ui_url(DAG_ID, run.run_id, "download", -1)  # a file:// sheet: the gallery


@needs_gallery
def test_only_what_the_result_names_is_served(client: Any, run: Any, tmp_path: Path) -> None:
    """A forged download result naming a text file gets the one refusal, never the file's bytes."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=DAG_ID, run_id=run.run_id, task_id="download", key="return_value", map_index=-1)
            .one()
        )
        original = row.value
        row.value = [{"uri": f"file://{secret}", "size": 10, "content_type": "image/png", "url": None}]
    try:
        answer = client.get(f"{base(run)}/tasks/download/pictures/0", headers=auth("viewer"))
        assert answer.status_code == 404 and answer.text == "picture unavailable"
        hacked = client.get(
            f"{base(run)}/tasks/download/pictures/0?uri=file:///etc/passwd&url=http://127.0.0.1/",
            headers=auth("viewer"),
        )
        assert hacked.status_code == 404 and hacked.text == answer.text  # query parameters never choose
    finally:
        with create_session() as session:
            session.query(XComModel).filter_by(
                dag_id=DAG_ID, run_id=run.run_id, task_id="download", key="return_value", map_index=-1
            ).update({"value": original})


@needs_gallery
def test_links_follow_a_base_url_prefix(airflow_api: Any, run: Any) -> None:  # noqa: F811
    from fastapi.testclient import TestClient

    prefixed = TestClient(airflow_api.app, root_path="/airflow")
    page = prefixed.get(f"/airflow{base(run)}/tasks/imagine", headers=auth("viewer"))
    assert page.status_code == 200
    assert re.findall(r'<img src="([^"]+)"', page.text)[0].startswith(f"/airflow{base(run)}/tasks/imagine/")
    run_page = prefixed.get(f"/airflow{base(run)}", headers=auth("viewer")).text
    assert f'href="/airflow/dags/{DAG_ID}/runs/' in run_page


@needs_gallery
def test_unknown_runs_and_tasks(client: Any, run: Any) -> None:
    assert client.get(f"/midjourney/dags/{DAG_ID}/runs/nope", headers=auth("viewer")).status_code == 404
    page = client.get(f"{base(run)}/tasks/nope", headers=auth("viewer"))
    assert page.status_code == 200 and "No such task instance" in page.text
    assert client.get(f"{base(run)}/tasks/imagine?map_index=-7", headers=auth("viewer")).status_code == 400


@needs_gallery
def test_run_view_names_each_button_and_its_parent_and_shows_the_prompt_once(client: Any, run: Any) -> None:
    text = client.get(base(run), headers=auth("viewer")).text
    imagine = xcom(run, "imagine")
    assert text.count(f'<p class="prompt">{html.escape(imagine["prompt"])}</p>') == 1
    for n in range(4):
        card = re.search(rf'<section class="card" id="t-upscale-{n}".*?</section>', text, re.S)
        assert card is not None, f"no card for upscale[{n}]"
        assert f"button U{n + 1}" in card.group(0) and imagine["job_id"] in card.group(0)
    assert text.index('id="t-imagine--1"') < text.index('id="t-upscale-0"')


@needs_gallery
def test_run_view_lists_tasks_in_dag_order_not_start_order(client: Any, run: Any) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:  # the download "started" first, the imagine last
        instances = session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run.run_id).all()
        saved = {(ti.task_id, ti.map_index): ti.start_date for ti in instances}
        for ti in instances:
            ti.start_date = saved[("download", -1)] if ti.task_id == "imagine" else saved[("imagine", -1)]
        for ti in instances:
            if ti.task_id == "download":
                ti.start_date = saved[("imagine", -1)].replace(year=2000)
    try:
        text = client.get(base(run), headers=auth("viewer")).text
    finally:
        with create_session() as session:
            for ti in session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run.run_id):
                ti.start_date = saved[(ti.task_id, ti.map_index)]
    places = [text.index(f'id="t-{task}') for task in ("imagine--1", "upscale-0", "upscale-3", "download--1")]
    assert places == sorted(places)


def test_topological_order_puts_upstream_first_and_keeps_declared_order_among_peers() -> None:
    from airflow_provider_midjourney.plugins.store import topological_order

    dag = {"download": [], "seed": [], "imagine": ["upscale", "seed"], "upscale": ["download"]}
    assert topological_order(dag) == ["imagine", "seed", "upscale", "download"]
    assert topological_order({"a": ["b"], "b": ["a"], "c": []}) == ["c", "a", "b"]  # a cycle goes last
