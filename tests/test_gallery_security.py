"""The gallery under attack, on Airflow's own api-server app (in-process): a user role forges a
task's result through Airflow's REST route and points the relay at internal services, redirects,
other schemes, other tasks' files and slow or endless sources; hostile servers run on loopback.

Every refusal must be the same answer, the internal service must never be contacted, and the
relay must stay within its deadline, size cap and slots. (The api-server staying up under a
slow source is proven on a real api-server process: tests/e2e/test_gallery_attacks.py.)
"""

# ruff: noqa: F811 - the run fixture is imported from tests.test_plugin
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from airflow import __version__ as airflow_version
from packaging.version import Version

from airflow_provider_midjourney.plugins import media
from airflow_provider_midjourney.plugins.addresses import AllowList, is_public
from airflow_provider_midjourney.testing import MidjourneyEmulator
from airflow_provider_midjourney.testing.images import PNG_SIGNATURE, png_bytes
from tests.airflow_api import airflow_api, auth  # noqa: F401 - the fixture
from tests.dag_runs import xcom
from tests.hostile_http import SECRET, HostileServer, cdn, internal  # noqa: F401 - the fixtures
from tests.test_plugin import DAG_ID, allow_relay, base, needs_gallery, run  # noqa: F401 - the fixture

pytestmark = needs_gallery


@pytest.fixture
def client(
    airflow_api: Any,
    _emulator_session: MidjourneyEmulator,
    cdn: HostileServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    allow_relay(monkeypatch, _emulator_session.port, cdn.port)
    return airflow_api


def xcom_route(dag_run: Any, task_id: str) -> str:
    run_id = quote(dag_run.run_id, safe="")
    return f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"


# Airflow 3.1's PATCH of an XCom entry stores the value serialized twice (a string, which the gallery
# refuses); from 3.2 it stores the value itself. There the forgery goes through the database instead.
PATCH_STORES_A_STRING = Version(airflow_version).release < (3, 2)


def _row(session: Any, dag_run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel

    return (
        session.query(XComModel)
        .filter_by(dag_id=DAG_ID, run_id=dag_run.run_id, task_id=task_id, key="return_value", map_index=-1)
        .one()
    )


@contextmanager
def forged(client: Any, dag_run: Any, task_id: str, value: Any) -> Iterator[None]:
    """``value`` as the task's result, written by a user role through Airflow's own REST route."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        original = _row(session, dag_run, task_id).value
    if PATCH_STORES_A_STRING:
        with create_session() as session:
            _row(session, dag_run, task_id).value = XComModel.serialize_value(value)
    else:
        answer = client.patch(
            xcom_route(dag_run, task_id), json={"value": value, "map_index": -1}, headers=auth("editor")
        )
        assert answer.status_code == 200, answer.text
    try:
        yield
    finally:
        with create_session() as session:
            _row(session, dag_run, task_id).value = original


def job_naming(url: str) -> dict[str, Any]:
    return {"job_id": "forged", "status": "completed", "image_urls": [url]}


def picture(client: Any, dag_run: Any, task_id: str = "imagine", number: int = 0) -> Any:
    return client.get(f"{base(dag_run)}/tasks/{task_id}/pictures/{number}", headers=auth("viewer"))


def test_relay_refuses_internal_targets_and_answers_every_refusal_alike(
    client: Any, run: Any, cdn: HostileServer, internal: HostileServer, tmp_path: Path
) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_bytes(SECRET)
    targets = {
        "internal service": f"{internal.base_url}/png",
        "internal secret": f"{internal.base_url}/secret",
        "internal via IPv6 loopback": f"http://[::1]:{internal.port}/png",
        "internal via a redirect": f"{cdn.base_url}/redirect?to={quote(internal.base_url + '/secret', safe='')}",
        "cloud metadata": "http://169.254.169.254/latest/meta-data/",
        "private network": "http://10.11.12.13/x.png",
        "ftp login": f"ftp://127.0.0.1:{internal.port}/x.png",
        "local file": f"file://{text_file}",
        "credentials in the URL": f"http://user:pw@127.0.0.1:{cdn.port}/png",
        "html called an image": f"{cdn.base_url}/html",
        "svg with script": f"{cdn.base_url}/svg",
        "text called a png": f"{cdn.base_url}/secret",
        "missing file": f"{cdn.base_url}/nothing-here",
        "unresolvable": "http://no-such-host.invalid/x.png",
    }
    answers = {}
    for what, url in targets.items():
        with forged(client, run, "imagine", job_naming(url)):
            answer = picture(client, run)
        answers[what] = (answer.status_code, answer.text, answer.headers["content-type"])
    answers["no such picture"] = (lambda a: (a.status_code, a.text, a.headers["content-type"]))(
        picture(client, run, number=99)
    )
    assert set(answers.values()) == {(404, "picture unavailable", "text/plain; charset=utf-8")}, answers
    assert internal.hits == {}  # never contacted, not even through the redirect
    with forged(client, run, "imagine", job_naming(f"{cdn.base_url}/png")):
        assert picture(client, run).content == png_bytes("hostile")  # an allowed source still works
    to_png = f"{cdn.base_url}/redirect?to={quote(cdn.base_url + '/png', safe='')}"
    with forged(client, run, "imagine", job_naming(to_png)):
        assert picture(client, run).content == png_bytes("hostile")  # and an allowed redirect


def test_stored_files_are_served_only_when_the_task_itself_stored_them(client: Any, run: Any, tmp_path: Path) -> None:
    """A forged result naming another task's stored picture (or any picture file) is refused."""
    stored = xcom(run, "download")
    other_png = tmp_path / "elsewhere.png"
    other_png.write_bytes(png_bytes("elsewhere"))
    for uri in (stored[0]["uri"], f"file://{other_png}"):
        value = [{"uri": uri, "size": 10, "content_type": "image/png", "url": None}]
        with forged(client, run, "seed", value):
            answer = picture(client, run, "seed")
        assert (answer.status_code, answer.text) == (404, "picture unavailable"), uri
    with forged(client, run, "download", [{**stored[0], "uri": f"file://{other_png}", "url": None}]):
        assert picture(client, run, "download").text == "picture unavailable"  # not listed by its event
    assert picture(client, run, "download").content.startswith(PNG_SIGNATURE)  # its own files: served


def test_a_dripping_source_is_cut_at_the_picture_deadline(
    client: Any, run: Any, cdn: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(media, "DEADLINE", 1.0)
    with forged(client, run, "imagine", job_naming(f"{cdn.base_url}/drip?every=0.2&bytes=200")):
        answer = picture(client, run)
    # Read timeouts alone (15 s) never fire on a byte every 0.2 s: only the total deadline cuts it.
    assert answer.content.startswith(PNG_SIGNATURE) and len(answer.content) < 16 + 200


def test_an_endless_source_is_cut_at_the_size_cap(
    client: Any, run: Any, cdn: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(media, "MAX_BYTES", 1024 * 1024)
    with forged(client, run, "imagine", job_naming(f"{cdn.base_url}/big?mb=20")):
        answer = picture(client, run)
    assert answer.content.startswith(PNG_SIGNATURE) and len(answer.content) <= 1024 * 1024


def test_one_viewer_cannot_take_every_relay_slot(
    client: Any, run: Any, cdn: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(media, "MAX_RELAYS_PER_VIEWER", 2)
    monkeypatch.setattr(media, "SLOT_WAIT", 0.3)
    monkeypatch.setattr(media, "DEADLINE", 4.0)
    drip = job_naming(f"{cdn.base_url}/drip?every=0.5&bytes=20")
    with forged(client, run, "imagine", drip):
        slow = [threading.Thread(target=picture, args=(client, run)) for _ in range(2)]
        for thread in slow:
            thread.start()
        try:
            time.sleep(1.0)  # both slow pictures are in flight
            third = picture(client, run)
            other_viewer = client.get(f"{base(run)}/tasks/seed/pictures/0", headers=auth("admin"))
        finally:
            for thread in slow:
                thread.join(timeout=30)
    assert third.status_code == 503 and third.headers["retry-after"] == "5"
    assert other_viewer.status_code == 200  # someone else's pictures still come


def test_map_index_out_of_range_is_a_clean_400(client: Any, run: Any) -> None:
    for value in ("99999999999999999999", "2147483648", "--5", "1e3", "-2"):
        for path in (f"{base(run)}/tasks/imagine", f"{base(run)}/tasks/imagine/pictures/0"):
            answer = client.get(f"{path}?map_index={value}", headers=auth("viewer"))
            assert answer.status_code == 400 and "map_index" in answer.text, (path, value, answer.text)
            assert "Traceback" not in answer.text


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("100.64.0.1", False),  # shared address space
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("fd00::1", False),
        ("224.0.0.1", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    import ipaddress

    assert is_public(ipaddress.ip_address(address)) is public


def test_allow_list_setting() -> None:
    import ipaddress

    allow = AllowList.parse("cdn.corp, *.media.corp 10.20.0.0/16,127.0.0.1:9090,[::1]:9091")
    loopback, v6, private = (ipaddress.ip_address(a) for a in ("127.0.0.1", "::1", "10.20.3.4"))
    assert allow.allows("cdn.corp", 443, [private]) and allow.allows("a.media.corp", 80, [private])
    assert allow.allows("anything", 80, [private]) and not allow.allows("anything", 80, [private, loopback])
    assert allow.allows("127.0.0.1", 9090, [loopback]) and not allow.allows("127.0.0.1", 9091, [loopback])
    elsewhere = ipaddress.ip_address("10.99.0.1")
    assert allow.allows("::1", 9091, [v6]) and not allow.allows("media.corp", 80, [elsewhere])
    for broken in ("http://cdn", "host:99999", "a b/c"):
        with pytest.raises(ValueError, match="relay_allowed_hosts"):
            AllowList.parse(broken)
