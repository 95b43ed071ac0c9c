"""MidjourneyDownloadOperator against the emulator's CDN route, its proxy and its fault knobs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
import httpx
import pytest

from airflow_provider_midjourney.exceptions import (
    MidjourneyContentTypeError,
    MidjourneyDownloadError,
    MidjourneyInvalidRequestError,
)
from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook
from airflow_provider_midjourney.hooks.useapi_v3_models import Job
from airflow_provider_midjourney.lineage import dataset_name
from airflow_provider_midjourney.operators import MidjourneyDownloadOperator
from airflow_provider_midjourney.operators.download import (
    Destination,
    Downloader,
    DownloadItem,
    contact_sheet_html,
    destination_asset,
    extension_for,
    safe_name,
)
from airflow_provider_midjourney.retry import HttpRetry
from airflow_provider_midjourney.testing import MidjourneyEmulator
from airflow_provider_midjourney.testing.images import PNG_SIGNATURE
from tests.conftest import FAST_RETRY, TOKEN, example_dag
from tests.dag_runs import run_dag, task_states, xcom
from tests.task_context import task_context

ONE_TRY = HttpRetry(max_attempts=1)


def completed_job(hook: UseapiV3Hook, emulator: MidjourneyEmulator, prompt: str = "a red fox --ar 3:2") -> Job:
    job = hook.imagine(prompt)
    emulator.complete_job(job.jobid)
    return hook.get_job(job.jobid)


def items_of(job: Job) -> list[DownloadItem]:
    return [DownloadItem(url, f"{safe_name(job.jobid)}_{n}", job.jobid) for n, url in enumerate(job.image_urls, 1)]


def downloader(hook: UseapiV3Hook, where: str | Path, **options: Any) -> Downloader:
    options.setdefault("retry", FAST_RETRY)
    return Downloader(hook, Destination.resolve(str(where)), **options)


def cdn_requests(emulator: MidjourneyEmulator) -> list[Any]:
    return [r for r in emulator.requests if r.path.startswith("/cdn/")]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- transport: direct, proxy, refusals and retries ---------------------------------------------------


def test_direct_download_streams_real_pngs_with_browser_headers_and_no_token(hook, emulator, tmp_path) -> None:
    job = completed_job(hook, emulator)
    stored = downloader(hook, tmp_path).download_all(items_of(job))
    stem = safe_name(job.jobid)
    assert [f.name for f in stored] == [f"{stem}_{n}.png" for n in range(1, 5)] and ":" not in stem
    for f in stored:
        data = (tmp_path / f.name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) == f.size and not f.skipped
        assert f.uri == f"file://{tmp_path}/{f.name}" and f.content_type == "image/png"
    assert data == httpx.get(job.image_urls[3], headers={"User-Agent": "Mozilla/5.0"}).content
    requests = cdn_requests(emulator)
    assert len(requests) == 5 and all("Mozilla/" in (r.user_agent or "") and not r.authorized for r in requests)
    assert emulator.requests_to("GET", "/v1/proxy") == []


def test_cdn_refuses_a_client_without_browser_user_agent(hook, emulator) -> None:
    job = completed_job(hook, emulator)
    assert httpx.get(job.image_urls[0]).status_code == 403
    assert httpx.get(job.image_urls[0], headers={"User-Agent": "python-httpx"}).status_code == 403


def test_proxy_download_sends_the_token_to_the_api_only(hook, emulator, tmp_path) -> None:
    job = completed_job(hook, emulator)
    stored = downloader(hook, tmp_path, use_proxy=True).download_all(items_of(job))
    assert all((tmp_path / f.name).read_bytes().startswith(PNG_SIGNATURE) for f in stored)
    proxied = emulator.requests_to("GET", "/v1/proxy/cdn-midjourney")
    assert sorted(r.query["cdnUrl"] for r in proxied) == job.image_urls and all(r.authorized for r in proxied)
    assert cdn_requests(emulator) == []


def test_403_then_success_is_retried(hook, emulator, tmp_path) -> None:
    job = completed_job(hook, emulator)
    emulator.cdn_forbid_next(2)
    [stored] = downloader(hook, tmp_path).download_all(items_of(job)[:1])
    assert (tmp_path / stored.name).read_bytes().startswith(PNG_SIGNATURE)
    assert [r.status for r in cdn_requests(emulator)] == [403, 403, 200]


def test_5xx_then_success_through_the_proxy(hook, emulator, tmp_path) -> None:
    job = completed_job(hook, emulator)
    emulator.fail_next(1, status=502, path_prefix="/v1/proxy/")
    [stored] = downloader(hook, tmp_path, use_proxy=True).download_all(items_of(job)[:1])
    assert stored.size > 0
    assert [r.status for r in emulator.requests_to("GET", "/v1/proxy/")] == [502, 200]


def test_a_cdn_that_keeps_refusing_fails_after_bounded_tries(hook, emulator, tmp_path) -> None:
    job = completed_job(hook, emulator)
    emulator.cdn_forbid_next(100)
    with pytest.raises(MidjourneyDownloadError, match=r"2 of 2 downloads failed.*403") as raised:
        downloader(hook, tmp_path).download_all(items_of(job)[:2])
    assert len(cdn_requests(emulator)) == 2 * FAST_RETRY.max_attempts
    assert files_in(tmp_path) == [] and TOKEN not in str(raised.value)


def test_a_missing_file_is_not_retried(hook, emulator, tmp_path) -> None:
    job = completed_job(hook, emulator)
    missing = job.image_urls[0].replace("/0_0.png", "/0_9.png")
    with pytest.raises(MidjourneyDownloadError, match="404"):
        downloader(hook, tmp_path).download_all([DownloadItem(missing, "missing")])
    assert len(cdn_requests(emulator)) == 1


# -- atomic writes, idempotent reruns -------------------------------------------------------------------


def test_connection_cut_mid_body_leaves_no_partial_file(hook, emulator, tmp_path) -> None:
    job = completed_job(hook, emulator)
    emulator.cdn_truncate_next(1)
    with pytest.raises(MidjourneyDownloadError, match="broke off in the body") as raised:
        downloader(hook, tmp_path, retry=ONE_TRY).download_all(items_of(job)[:1])
    assert "received 6250 bytes, expected 12500" in str(raised.value)  # the body had started
    assert files_in(tmp_path) == []  # neither the final name nor the temporary one


def test_connection_cut_mid_body_or_before_the_answer_is_retried(hook, emulator, tmp_path) -> None:
    job = completed_job(hook, emulator)
    emulator.cdn_truncate_next(1)
    emulator.drop_next(1, path_prefix="/cdn/")
    stored = downloader(hook, tmp_path, max_concurrency=1).download_all(items_of(job)[:2])
    for f, url in zip(stored, job.image_urls, strict=False):
        assert (tmp_path / f.name).read_bytes() == httpx.get(url, headers={"User-Agent": "Mozilla/5.0"}).content
    assert files_in(tmp_path) == sorted(f.name for f in stored)
    assert sum(r.dropped for r in cdn_requests(emulator)) == 2


def test_rerun_skips_files_already_stored_and_replaces_a_wrong_size(hook, emulator, tmp_path) -> None:
    job = completed_job(hook, emulator)
    first = downloader(hook, tmp_path).download_all(items_of(job))
    (tmp_path / first[1].name).write_bytes(b"truncated by something else")
    stamps = {f.name: (tmp_path / f.name).stat().st_mtime_ns for f in first}
    second = downloader(hook, tmp_path).download_all(items_of(job))
    assert [f.skipped for f in second] == [True, False, True, True]
    assert [f.size for f in second] == [f.size for f in first]
    assert (tmp_path / first[1].name).read_bytes().startswith(PNG_SIGNATURE)
    assert all((tmp_path / n).stat().st_mtime_ns == t for n, t in stamps.items() if n != first[1].name)
    assert files_in(tmp_path) == sorted(f.name for f in first)


def test_a_non_image_answer_is_rejected_without_retry(hook, emulator, tmp_path) -> None:
    job = completed_job(hook, emulator)
    emulator.fail_next(1, status=200, path_prefix="/cdn/", error="<html>Just a moment...</html>")
    refused = r"not a PNG.* by its first bytes \(the server called it 'application/json'\)"
    with pytest.raises(MidjourneyDownloadError, match=refused) as raised:
        downloader(hook, tmp_path).download_all(items_of(job)[:1])
    assert isinstance(raised.value.__cause__, MidjourneyContentTypeError)
    assert len(cdn_requests(emulator)) == 1 and files_in(tmp_path) == []


def test_downloads_run_in_parallel_up_to_the_limit(hook, emulator, tmp_path) -> None:
    job = completed_job(hook, emulator)
    emulator.cdn_latency = 0.4
    downloader(hook, tmp_path / "parallel", max_concurrency=4).download_all(items_of(job))
    arrivals = sorted(r.time for r in cdn_requests(emulator))
    assert arrivals[-1] - arrivals[0] < 0.3  # all four asked before the first could be answered
    downloader(hook, tmp_path / "serial", max_concurrency=1).download_all(items_of(job)[:2])
    first, second = sorted(r.time for r in cdn_requests(emulator))[4:]
    assert second - first >= 0.39


def test_downloads_out_of_time_are_cancelled_and_leave_nothing(hook, emulator, tmp_path, monkeypatch) -> None:
    job = completed_job(hook, emulator)
    emulator.cdn_latency = 0.5
    slow = downloader(hook, tmp_path)
    monkeypatch.setattr(slow, "_time_budget", lambda count, workers: 0.1)
    with pytest.raises(MidjourneyDownloadError, match="did not finish within 0 s"):
        slow.download_all(items_of(job))
    assert slow.cancel.is_set()
    deadline = time.monotonic() + 5
    while len(cdn_requests(emulator)) < 4 or any(r.status == 0 for r in cdn_requests(emulator)):
        assert time.monotonic() < deadline, "the CDN requests never completed"
        time.sleep(0.05)
    time.sleep(0.2)  # the threads see the cancellation at their first chunk and clean up
    assert files_in(tmp_path) == []


# -- destinations -------------------------------------------------------------------------------------


def test_memory_and_plain_path_destinations(hook, emulator, tmp_path, monkeypatch) -> None:
    job = completed_job(hook, emulator)
    stored = downloader(hook, "memory://mj-tests/memory-dest/").download_all(items_of(job)[:1])
    memory = fsspec.filesystem("memory")
    assert stored[0].uri == f"memory://mj-tests/memory-dest/{stored[0].name}"
    with fsspec.open(stored[0].uri, "rb") as handle:
        assert handle.read().startswith(PNG_SIGNATURE)
    assert memory.ls("/mj-tests/memory-dest", detail=False) == [f"/mj-tests/memory-dest/{stored[0].name}"]
    monkeypatch.chdir(tmp_path)
    [local] = downloader(hook, "relative/dir").download_all(items_of(job)[:1])
    assert local.uri == f"file://{tmp_path}/relative/dir/{local.name}"
    assert (tmp_path / "relative" / "dir" / local.name).is_file()


def test_object_storage_path_destination(hook, emulator, tmp_path) -> None:
    from airflow.sdk import ObjectStoragePath

    # (Airflow 3.0 needs universal-pathlib < 0.3 for this: see .ci/constraints-airflow-3.0.6.txt)
    path = ObjectStoragePath(f"file://{tmp_path}/osp")
    job = completed_job(hook, emulator)
    [stored] = Downloader(hook, Destination.resolve(path), retry=FAST_RETRY).download_all(items_of(job)[:1])
    assert stored.uri == f"file://{tmp_path}/osp/{stored.name}" and (tmp_path / "osp" / stored.name).is_file()


def test_destination_asset_uses_the_static_part_of_the_uri() -> None:
    assert destination_asset("file:///data/midjourney/{{ ds }}/").uri == "file:///data/midjourney"
    assert destination_asset("s3://aws_conn@bucket/mj/").uri == "s3://bucket/mj"
    assert destination_asset("/data/mj/{{ ds }}").uri == "file:///data/mj"
    assert destination_asset("memory://bucket/x").uri == "memory://bucket/x"
    assert destination_asset("{{ params.destination }}") is None
    assert destination_asset("relative/dir") is None
    assert destination_asset("file:///{{ ds }}") is None


def test_content_types_and_names() -> None:
    assert [extension_for(t) for t in ("image/png", "image/jpeg; q=1", "image/webp", "video/mp4")] == [
        "png",
        "jpg",
        "webp",
        "mp4",
    ]
    for refused in ("text/html; charset=utf-8", "application/octet-stream", "", None, "image/svg+xml", "image/x-icon"):
        with pytest.raises(MidjourneyContentTypeError, match="not a PNG/JPEG/WEBP/GIF picture or an MP4/WEBM"):
            extension_for(refused, "https://cdn.example/x.png?ex=secret")
    with pytest.raises(MidjourneyContentTypeError) as raised:
        extension_for("text/html", "https://cdn.example/x.png?ex=secret")
    assert "secret" not in str(raised.value)
    assert safe_name("j1i-u2-c3-bot:midjourney").startswith("j1i-u2-c3-bot-midjourney~")


def test_contact_sheet_escapes_and_links_relatively() -> None:
    from airflow_provider_midjourney.operators.download import StoredFile

    page = contact_sheet_html(
        [StoredFile("a_1.png", "file:///x/a_1.png", 2048, "image/png", "u", False, "job:1", "<b>fox</b> & co")]
    )
    assert '<img src="./a_1.png"' in page and "&lt;b&gt;fox&lt;/b&gt; &amp; co" in page and "job:1" in page


# -- the operator -------------------------------------------------------------------------------------


def test_operator_validates_before_any_request(midjourney_conn, emulator, tmp_path) -> None:
    cases = [
        ({"job_id": "nope"}, "job_id"),
        ({}, "job_id: required unless urls"),
        ({"job_id": None, "urls": ["ftp://x/y.png"]}, "urls"),
        ({"job_id": None, "urls": ["http://x/y.png"], "kind": "gifs"}, "kind"),
    ]
    for args, message in cases:
        op = MidjourneyDownloadOperator(task_id="d", destination=str(tmp_path), **args)
        with pytest.raises(MidjourneyInvalidRequestError, match=message):
            op.execute({})  # type: ignore[arg-type]
    assert emulator.requests == []


def test_operator_kinds_grid_and_videos(hook, emulator, tmp_path) -> None:
    job = completed_job(hook, emulator)
    grid = MidjourneyDownloadOperator(task_id="g", job_id=job.jobid, destination=str(tmp_path), kind="grid")
    [stored] = grid.execute({})  # type: ignore[arg-type]
    assert stored["uri"].endswith(f"{safe_name(job.jobid)}_grid.png") and stored["size"] > 12500
    with pytest.raises(MidjourneyDownloadError, match="has no videos to download"):
        MidjourneyDownloadOperator(task_id="v", job_id=job.jobid, destination=str(tmp_path), kind="videos").execute({})  # type: ignore[arg-type]
    video = completed_job(hook, emulator, "waves --video")
    op = MidjourneyDownloadOperator(task_id="v", job_id=video.jobid, destination=str(tmp_path), kind="videos")
    stored_videos = op.execute({})  # type: ignore[arg-type]
    assert [Path(f["uri"]).suffix for f in stored_videos] == [".mp4"] * 4
    assert {f["content_type"] for f in stored_videos} == {"video/mp4"}


def test_operator_refuses_a_job_that_is_not_completed(hook, emulator, tmp_path) -> None:
    emulator.never_finish = True
    job = hook.imagine("slow one")
    op = MidjourneyDownloadOperator(task_id="d", job_id=job.jobid, destination=str(tmp_path))
    with pytest.raises(MidjourneyDownloadError, match="only a completed job"):
        op.execute({})  # type: ignore[arg-type]


@pytest.mark.usefixtures("airflow_db", "midjourney_conn")
def test_operator_in_a_dag_memory_destination_urls_proxy_and_asset(emulator, hook, caplog, capfd) -> None:
    job = completed_job(hook, emulator)
    dr = run_dag(
        "download_memory",
        f"""
        from airflow_provider_midjourney.retry import HttpRetry
        MidjourneyDownloadOperator(
            task_id="download", job_id="{{{{ params.job }}}}", urls={job.image_urls[:2]!r}, use_proxy=True,
            destination="memory://mj-dag/{{{{ params.folder }}}}/", contact_sheet=True,
            retry=HttpRetry(max_attempts=3, backoff_initial=0.01, backoff_max=0.02),
        )
        dag.params = {{"job": {job.jobid!r}, "folder": "run-1"}}
    """,
    )
    assert task_states(dr) == {"download": "success"}
    result = xcom(dr, "download")
    stem = safe_name(job.jobid)
    assert [f["uri"] for f in result] == [f"memory://mj-dag/run-1/{stem}_{n}.png" for n in (1, 2)]
    sheet = xcom(dr, "download", key="contact_sheet")
    assert sheet == "memory://mj-dag/run-1/index.html"
    with fsspec.open(sheet, "rt") as handle:
        page = handle.read()
    assert f"./{stem}_1.png" in page and "a red fox --ar 3:2" in page and job.jobid in page
    asset = destination_asset("memory://mj-dag/{{ params.folder }}/")
    assert asset is not None and asset_event_extra(asset.uri)["files"] == [f["uri"] for f in result]
    logged = capfd.readouterr().out + caplog.text
    assert f"Stored memory://mj-dag/run-1/{stem}_1.png" in logged  # the task's log was captured
    # Airflow 3.0's supervisor debug-logs the masking request itself (the hook masks the token).
    logged = "\n".join(line for line in logged.splitlines() if "MaskSecret" not in line)
    assert TOKEN not in json.dumps(result) + logged + page


def asset_event_extra(uri: str) -> dict[str, Any]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        event = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == uri)
            .order_by(AssetEvent.id.desc())
            .first()
        )
        assert event is not None, f"no asset event for {uri}"
        return dict(event.extra)


@pytest.mark.usefixtures("airflow_db", "midjourney_conn")
def test_example_dag_ends_with_pngs_and_a_contact_sheet(emulator, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MIDJOURNEY_DESTINATION", f"file://{tmp_path}/out")
    dr = example_dag("midjourney_imagine_upscale").test()
    assert set(task_states(dr).values()) == {"success"} and len(task_states(dr)) == 7
    stored = xcom(dr, "download")
    imagine = xcom(dr, "imagine")
    [day] = os.listdir(tmp_path / "out")
    folder = tmp_path / "out" / day
    names = [f"{safe_name(imagine['job_id'])}_{n}.png" for n in range(1, 5)]
    assert files_in(folder) == sorted([*names, "index.html"])
    assert [f["uri"] for f in stored] == [f"file://{folder}/{n}" for n in names]
    assert all((folder / n).read_bytes().startswith(PNG_SIGNATURE) for n in names)
    assert xcom(dr, "download", key="contact_sheet") == f"file://{folder}/index.html"
    page = (folder / "index.html").read_text()
    assert all(f'src="./{n}"' in page for n in names) and imagine["prompt"] in page
    assert asset_event_extra(f"file://{tmp_path}/out")["count"] == 4


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": "4"}, "max_concurrency"),
        ({"file_timeout": float("nan")}, "file_timeout"),
        ({"file_timeout": 1e15}, "file_timeout"),
    ],
)
def test_a_downloader_made_directly_checks_its_numbers_too(hook, emulator, tmp_path, options, field) -> None:
    """The operator checks them at construction; other callers of Downloader get the same errors."""
    with pytest.raises(MidjourneyInvalidRequestError, match=f"^{field}:"):
        downloader(hook, tmp_path, **options)
    assert emulator.requests == []


def test_stored_files_are_openlineage_outputs(hook, emulator, tmp_path) -> None:
    pytest.importorskip("airflow.providers.openlineage", reason="the test extra installs the OpenLineage provider")
    job = completed_job(hook, emulator)
    op = MidjourneyDownloadOperator(task_id="d", job_id=job.jobid, destination=str(tmp_path), contact_sheet=True)
    assert op.get_openlineage_facets_on_complete(None).outputs == []  # nothing stored yet
    stored = op.execute(task_context())  # type: ignore[arg-type]
    lineage = op.get_openlineage_facets_on_complete(None)
    assert lineage.inputs == []
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        *(("file", urlsplit(f["uri"]).path) for f in stored),
        ("file", str(tmp_path / "index.html")),
    ]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///data/mj/a_1.png", ("file", "/data/mj/a_1.png")),
        ("/data/mj/a_1.png", ("file", "/data/mj/a_1.png")),
        ("s3://bucket/mj/2026/a_1.png", ("s3://bucket", "mj/2026/a_1.png")),
        ("gs://b/x.png", ("gs://b", "x.png")),
    ],
)
def test_openlineage_names_follow_its_naming_convention(uri: str, expected: tuple[str, str]) -> None:
    assert dataset_name(uri) == expected
