"""Keep the pictures: stream a job's result files to any object storage the task can write to.

Midjourney and Discord CDN links expire or get refused, so a pipeline should end with files it
owns. :class:`MidjourneyDownloadOperator` fetches a job's images, videos or grid (or an explicit
list of URLs) and writes them under a destination URI (``file://``, ``s3://``, ``gs://``,
``memory://`` ... anything Airflow's object storage or an installed fsspec filesystem knows).

The transport (browser headers directly, or the token through the API's CDN proxy) is the hook's;
Naming, retries and the bounded pool live in :mod:`~airflow_provider_midjourney.downloader`, the
atomic writes in :mod:`~airflow_provider_midjourney.destinations`, the page in
:mod:`~airflow_provider_midjourney.contact_sheet`; this module is the task: what to fetch, the
XCom, the contact sheet and the asset event.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseOperator

from airflow_provider_midjourney.contact_sheet import CONTACT_SHEET_NAME, contact_sheet_html
from airflow_provider_midjourney.destinations import Destination, destination_asset
from airflow_provider_midjourney.downloader import (
    DEFAULT_FILE_TIMEOUT,
    DOWNLOAD_RETRY,
    Downloader,
    DownloadItem,
    StoredFile,
    check_download_numbers,
    extension_for,
    safe_name,
    url_stem,
)
from airflow_provider_midjourney.exceptions import (
    MidjourneyDownloadError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
)
from airflow_provider_midjourney.links import MidjourneyFilesLink
from airflow_provider_midjourney.retry import HttpRetry

# Hooks, models and tenacity are imported where the task uses them, not on every DAG parse.
if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook
    from airflow_provider_midjourney.job import MidjourneyJob

__all__ = [
    "CONTACT_SHEET_NAME",
    "DOWNLOAD_RETRY",
    "Destination",
    "DownloadItem",
    "Downloader",
    "MidjourneyDownloadOperator",
    "StoredFile",
    "contact_sheet_html",
    "destination_asset",
    "extension_for",
    "safe_name",
]

DownloadKind = Literal["images", "videos", "grid"]
KINDS: tuple[str, ...] = ("images", "videos", "grid")
MAX_LISTED_FILES = 1000  # stored URIs named in the asset event


def _prompt_of(job: MidjourneyJob) -> str | None:
    return job.prompt


class MidjourneyDownloadOperator(BaseOperator):
    """Download a job's results (or explicit URLs) to any object storage, atomically and in parallel.

    Files are named ``<job id>_<id>.<ext>`` (``id``: the ``imageUx``/``videoUx`` id, ``grid`` for
    the grid; ``ext`` from the answer's content type; characters unsafe in file names, such as the
    job id's ``:``, become ``-``). Explicit ``urls`` are numbered 1, 2... after the job id, or
    named after their last two path segments without a job id.

    Returns one ``{"uri", "size", "content_type", "url", "skipped"}`` per file, in order; with
    ``contact_sheet`` the ``index.html`` URI is also pushed under the XCom key ``contact_sheet``.
    Declares the destination as an ``Asset`` outlet (see :func:`destination_asset`) unless
    ``outlets`` is given; the asset event's ``extra`` lists the stored URIs.

    :param job_id: a completed job (``imagine.output["job_id"]``), or the task's whole result
        (``imagine.output``: fetched on the connection that ran it). Optional with ``urls``.
    :param destination: a directory: an ``ObjectStoragePath`` or a URI (``file:///data/mj/{{ ds }}/``,
        ``s3://bucket/prefix/``, ``memory://x/``, a plain local path). Templated.
    :param kind: ``images`` (the job's separate pictures; where the API gives only the grid, as
        ImaginePro does, its four quadrants cut losslessly into ``<job id>_1.png``..``_4.png``, which
        needs Pillow: ``airflow-provider-midjourney[images]``), ``videos`` or ``grid`` (one file).
    :param urls: fetch these URLs instead of the job's.
    :param use_proxy: fetch through ``GET /v1/proxy/cdn-midjourney`` (sends the API token to the API,
        never to the CDN) instead of directly with browser headers.
    :param contact_sheet: also write ``index.html`` showing every file with its prompt and job id.
        One per destination directory: give each download task its own directory.
    :param max_concurrency: files fetched at the same time (threads sharing one HTTP client).
    :param retry: per-file retry policy; default :data:`DOWNLOAD_RETRY`.
    :param file_timeout: seconds one try of one file may take, body included.
    """

    template_fields: Sequence[str] = ("job_id", "destination", "kind", "urls")
    ui_color = "#d9f2e6"
    operator_extra_links = (MidjourneyFilesLink(),)

    def __init__(
        self,
        *,
        destination: str | os.PathLike[str],
        job_id: str | None = None,
        kind: DownloadKind = "images",
        urls: Sequence[str] | None = None,
        use_proxy: bool = False,
        contact_sheet: bool = False,
        midjourney_conn_id: str = "midjourney_default",
        max_concurrency: int = 4,
        retry: HttpRetry | None = None,
        file_timeout: float = DEFAULT_FILE_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        max_concurrency, file_timeout = check_download_numbers(max_concurrency, file_timeout)
        asset = None if "outlets" in kwargs else destination_asset(destination)
        if asset is not None:
            kwargs["outlets"] = [asset]
        super().__init__(**kwargs)
        self.job_id = job_id
        self.destination = destination
        self.kind = kind
        self.urls = urls
        self.use_proxy = use_proxy
        self.contact_sheet = contact_sheet
        self.midjourney_conn_id = midjourney_conn_id
        self.max_concurrency = max_concurrency
        self.retry = retry
        self.file_timeout = file_timeout
        self.destination_asset = asset
        self._cancel: threading.Event | None = None  # made in execute: operators get deep-copied

    @cached_property
    def hook(self) -> MidjourneyBackendHook:
        """The hook of the connection's backend (chosen by its connection type)."""
        from airflow_provider_midjourney.hooks.base import hook_for_connection

        return hook_for_connection(self.midjourney_conn_id)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow_provider_midjourney.failover import follow_job

        follow_job(self)  # job_id=imagine.output: fetch from the connection that ran the job
        if self.kind not in KINDS:
            raise MidjourneyInvalidRequestError(f"kind: must be one of {', '.join(KINDS)}, got {self.kind!r}")
        urls = self._checked_urls()
        job_id = self.hook.check_job_id(self.job_id, "job_id") if self.job_id else None
        if urls is None and job_id is None:
            raise MidjourneyInvalidRequestError("job_id: required unless urls is given")
        destination = Destination.resolve(self.destination)  # validated before any HTTP call
        self._cancel = threading.Event()
        try:
            items = self._items(job_id, urls)
            downloader = Downloader(
                self.hook,
                destination,
                use_proxy=self.use_proxy,
                retry=self.retry or DOWNLOAD_RETRY,
                max_concurrency=self.max_concurrency,
                file_timeout=self.file_timeout,
                log=self.log,
                cancel=self._cancel,
            )
            started = time.monotonic()
            stored = downloader.download_all(items)
            elapsed = time.monotonic() - started
        finally:
            self.hook.close()
        fresh = sum(not f.skipped for f in stored)
        self.log.info(
            "%d file(s) in %s (%d new, %d already there) in %.2f s",
            len(stored),
            destination.uri,
            fresh,
            len(stored) - fresh,
            elapsed,
        )
        sheet = self._write_contact_sheet(destination, stored) if self.contact_sheet else None
        self.contact_sheet_uri = sheet  # for MidjourneyFilesLink, evaluated when the task ends
        if sheet is not None:
            context["ti"].xcom_push(key="contact_sheet", value=sheet)
        self._annotate_asset_event(context, stored, sheet)
        self.stored_uris = [f.uri for f in stored] + ([sheet] if sheet else [])
        return [f.to_xcom() for f in stored]

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The stored files (and contact sheet) as OpenLineage outputs (see ``lineage.py``)."""
        from airflow_provider_midjourney.lineage import operator_lineage

        return operator_lineage(getattr(self, "stored_uris", []))

    def on_kill(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _checked_urls(self) -> list[str] | None:
        if self.urls is None:
            return None
        urls = [self.urls] if isinstance(self.urls, str) else list(self.urls)
        if not urls:
            raise MidjourneyInvalidRequestError("urls: give at least one URL (or leave it out to use the job's)")
        for url in urls:
            if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
                raise MidjourneyInvalidRequestError(f"urls: every entry must be an http(s) URL, got {str(url)[:80]!r}")
        return urls

    def _items(self, job_id: str | None, urls: list[str] | None) -> list[DownloadItem]:
        if urls is not None:
            prompt = self._prompt_for_sheet(job_id)
            if job_id is None:
                return [DownloadItem(url, url_stem(url)) for url in urls]
            return [
                DownloadItem(url, f"{safe_name(job_id)}_{n}", job_id, prompt) for n, url in enumerate(urls, start=1)
            ]
        from airflow_provider_midjourney.vocabulary import JobStatus

        assert job_id is not None
        job = self.hook.fetch_job(job_id)
        if job.status != JobStatus.COMPLETED:
            raise MidjourneyDownloadError(f"Job {job_id} is {job.status}: only a completed job has files to download")
        if job.expired:
            raise MidjourneyDownloadError(
                f"Job {job_id}'s files have expired: the {job.backend} backend purged them from its CDN (Apiframe"
                " keeps them 24 hours); run the job again to get new files"
            )
        return self._job_items(job)

    def _prompt_for_sheet(self, job_id: str | None) -> str | None:
        if not (self.contact_sheet and job_id):
            return None
        try:
            return _prompt_of(self.hook.fetch_job(job_id))
        except MidjourneyError as exc:  # only decoration: the files matter
            self.log.warning("Could not read job %s for its prompt: %s", job_id, exc)
            return None

    def _job_items(self, job: MidjourneyJob) -> list[DownloadItem]:
        stem, prompt = safe_name(job.job_id), _prompt_of(job)
        if self.kind == "grid":
            pairs = [("grid", job.grid_url)] if job.grid_url else []
        elif self.kind == "images" and not job.image_urls and not job.video_urls and job.grid_url:
            from airflow_provider_midjourney.grid import require_pillow

            require_pillow()  # the API gives only the grid: cut it into its four pictures
            return [DownloadItem(job.grid_url, stem, job.job_id, prompt, quadrants=True)]
        else:
            urls = job.image_urls if self.kind == "images" else job.video_urls
            pairs = [(str(n), url) for n, url in enumerate(urls, start=1)]
        if not pairs:
            grid = "a grid" if job.grid_url else "no grid"
            has = f"{len(job.image_urls)} image(s), {len(job.video_urls)} video(s), {grid}"
            raise MidjourneyDownloadError(f"Job {job.job_id} has no {self.kind} to download (it has {has})")
        return [DownloadItem(url, f"{stem}_{suffix}", job.job_id, prompt) for suffix, url in pairs]

    def _write_contact_sheet(self, destination: Destination, stored: list[StoredFile]) -> str:
        jobs = sorted({f.job_id for f in stored if f.job_id})
        title = f"Midjourney {jobs[0]}" if len(jobs) == 1 else "Midjourney contact sheet"
        page = contact_sheet_html(stored, title).encode()
        destination.write_atomically(CONTACT_SHEET_NAME, [page], len(page))
        uri = destination.uri_of(CONTACT_SHEET_NAME)
        self.log.info("Contact sheet: %s", uri)
        return uri

    def _annotate_asset_event(self, context: Context, stored: list[StoredFile], sheet: str | None) -> None:
        """Put the stored URIs in the destination asset's event, for DAGs scheduled on it."""
        events = context.get("outlet_events")
        if self.destination_asset is None or events is None:
            return
        # "files" is also what the gallery may read back from storage (an XCom alone proves nothing).
        extra: dict[str, Any] = {"files": [f.uri for f in stored][:MAX_LISTED_FILES], "count": len(stored)}
        # Job ids and prompts, for DAGs scheduled on the asset and for the gallery's download view.
        extra["job_ids"] = list(dict.fromkeys(f.job_id for f in stored if f.job_id))[:100]
        extra["prompts"] = list(dict.fromkeys(f.prompt for f in stored if f.prompt))[:100]
        if sheet is not None:
            extra["contact_sheet"] = sheet
        try:
            events[self.destination_asset].extra.update(extra)
        except Exception as exc:  # only decoration: the asset event happens anyway
            self.log.warning("Could not annotate the asset event: %s", exc)
