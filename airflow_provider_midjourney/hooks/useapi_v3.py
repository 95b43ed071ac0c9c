"""useapi.net Midjourney API v3: the hook ``UseapiV3Hook`` (connection type ``midjourney``), a method per endpoint."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel

from airflow_provider_midjourney.exceptions import (
    MidjourneyAPIError,
    MidjourneyChannelLockedError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyNotFoundError,
)
from airflow_provider_midjourney.hooks.base import (
    Capability,
    ConnectionSettings,
    MidjourneyBackendHook,
)
from airflow_provider_midjourney.hooks.connection_values import base_url_from_host
from airflow_provider_midjourney.hooks.transport import BROWSER_HEADERS, SHARED_POOL_SIZE
from airflow_provider_midjourney.hooks.transport import SharedAsyncClient as _SharedAsyncClient
from airflow_provider_midjourney.hooks.useapi_v3_models import (
    CDN_PREFIX,
    Account,
    AccountRequest,
    Job,
    RunningJobs,
    check_job_id,
    job_body,
    job_path,
)
from airflow_provider_midjourney.image_intake import ImageSource
from airflow_provider_midjourney.input_checks import check_channel, check_http_url
from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.job_requests import (
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    ImagineRequest,
    JobOptions,
    SeedRequest,
    SettingsRequest,
)
from airflow_provider_midjourney.video_requests import (
    VideoExtendRequest,
    VideoRequest,
    finished_parent,
    start_frame_url,
    video_prompt_flags,
)
from airflow_provider_midjourney.vocabulary import BlendDimensions, ReplyLevel, SettingsCommand

__all__ = [
    "BROWSER_HEADERS",
    "SHARED_POOL_SIZE",
    "ConnectionSettings",
    "UseapiV3Hook",
    "_SharedAsyncClient",
    "base_url_from_host",
]

M = TypeVar("M", bound=BaseModel)
DEFAULT_BASE_URL = "https://api.useapi.net"
PROXY_PATH = "/v1/proxy/cdn-midjourney/"


class UseapiV3Hook(MidjourneyBackendHook):
    """Talks to the useapi.net Midjourney API v3.

    The connection's password is the useapi.net API token; its host the base URL (empty: the real
    API); extras ``channel`` (default Discord channel) and ``timeout`` (seconds per request).

    One ``httpx.Client`` (and one ``httpx.AsyncClient`` for the async methods) serves every call
    of a hook instance; close them with :meth:`close`/:meth:`aclose` or use the hook as a
    (async) context manager. Besides the normalised interface of
    :class:`~airflow_provider_midjourney.hooks.base.MidjourneyBackendHook`, it has one method per
    v3 endpoint (they return the v3 wire :class:`~airflow_provider_midjourney.hooks.useapi_v3_models.Job`).

    :param midjourney_conn_id: the Airflow connection id.
    :param retry: when and how long to retry; see :class:`~airflow_provider_midjourney.retry.HttpRetry`.
    :param timeout: seconds per HTTP request, overriding the connection's ``timeout`` extra.
    :param shared_async_client: see :class:`~airflow_provider_midjourney.hooks.base.MidjourneyBackendHook`.
    """

    conn_name_attr = "midjourney_conn_id"
    default_conn_name = "midjourney_default"
    conn_type = "midjourney"
    hook_name = "Midjourney (useapi.net v3)"

    backend = "useapi_v3"
    api_name = "useapi.net Midjourney API v3"
    default_base_url = DEFAULT_BASE_URL
    capabilities = frozenset(Capability)

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: one ``GET /v3/midjourney/jobs`` (no retries, at most 8 s).

        That endpoint answers 200 (a JSON summary) or 401 for any base URL that is the v3 API, never
        404, so a wrong path, a web page or another API fails instead of reading as "Connected".
        """
        from airflow_provider_midjourney.hooks.connection_test import probe

        try:
            settings = self.connection_settings
        except MidjourneyError as exc:
            return False, str(exc)
        api = "the useapi.net Midjourney API v3"

        def describe(data: dict[str, Any]) -> str:
            channels = data.get("channels")
            count = len(channels) if isinstance(channels, dict) else 0
            return f"Connected to {api} at {settings.base_url}: {count} channel(s), {data['total']} job(s) running."

        return probe(
            settings.base_url,
            "/v3/midjourney/jobs",
            {"Authorization": f"Bearer {settings.token}"},
            looks_right=lambda data: isinstance(data, dict) and isinstance(data.get("total"), int),
            api_name=api,
            timeout=min(settings.timeout, 8.0),
            describe=describe,
        )

    # -- jobs ---------------------------------------------------------------------------------

    def _with_default_channel(self, request: JobOptions) -> JobOptions:
        if (
            request.channel is None
            and self.connection_settings.channel
            and not isinstance(request, ButtonRequest | SeedRequest)
        ):
            # Button and seed jobs always run in the parent's channel, so no default is sent.
            return request.model_copy(update={"channel": self.connection_settings.channel})
        return request

    def submit(self, request: JobOptions) -> Job:
        """POST any job request (validated already) with ``stream: false``; return the new job.

        A 429 or a connection refused before sending is retried; a read timeout, a dropped answer
        or a 5xx is not (the job may exist): it raises
        :class:`~airflow_provider_midjourney.exceptions.MidjourneySubmitUncertainError` or
        :class:`~airflow_provider_midjourney.exceptions.MidjourneyServerError`.
        """
        request = self._with_default_channel(request)
        path = job_path(request)
        try:
            response = self._request(
                "POST", path, body=job_body(request), creates_job=True, reply_ref=request.reply_ref
            )
        except MidjourneyChannelLockedError as exc:
            error = f"{exc.error} [{self._locked_channels_note()}]"
            raise MidjourneyChannelLockedError(exc.status_code, error, method=exc.method, path=exc.path) from None
        data = self.parse_json(response, "POST", path, creates_job=True)
        job = self.parse_answer(Job, data, "POST", path, creates_job=True, reply_ref=request.reply_ref)
        if response.status_code == 200:
            self.log.info("%s was already executed: reusing its existing job %s", path, job.jobid)
        else:
            self.log.info("Created Midjourney %s job %s", job.verb, job.jobid)
        return job

    def _locked_channels_note(self) -> str:
        """Which channels are locked and why (best effort: the 596 answer does not always say)."""
        try:
            locked = {c: a.error for c, a in self.list_accounts().items() if a.error}
        except MidjourneyError as exc:
            return f"Could not list the channels to name the locked one: {exc}"
        if not locked:
            return "GET /v3/midjourney/accounts shows no channel error any more: the lock may have cleared."
        named = "; ".join(f"channel {channel}: {error}" for channel, error in locked.items())
        return f"Locked: {named}. After resolving it in Discord: UseapiV3Hook().reset_account('<channel>')."

    def imagine(
        self,
        prompt: str,
        *,
        channel: str | None = None,
        reply_url: str | None = None,
        reply_ref: str | None = None,
        reply_level: ReplyLevel | None = None,
    ) -> Job:
        """``POST /jobs/imagine``: generate a grid of four images (or a video with ``--video``)."""
        return self.submit(
            ImagineRequest.build(
                prompt=prompt, channel=channel, reply_url=reply_url, reply_ref=reply_ref, reply_level=reply_level
            )
        )

    def button(
        self,
        job_id: str,
        button: str,
        *,
        mask: str | None = None,
        prompt: str | None = None,
        allow_unknown_button: bool = False,
        reply_url: str | None = None,
        reply_ref: str | None = None,
        reply_level: ReplyLevel | None = None,
    ) -> Job:
        """``POST /jobs/button``: upscale, vary, zoom, pan, reroll... a completed job.

        U1-U4 run once per parent: pressing one again returns the existing child job (HTTP 200).
        """
        return self.submit(
            ButtonRequest.build(
                job_id=job_id,
                button=button,
                mask=mask,
                prompt=prompt,
                allow_unknown_button=allow_unknown_button,
                reply_url=reply_url,
                reply_ref=reply_ref,
                reply_level=reply_level,
            )
        )

    def blend(
        self,
        images: Sequence[ImageSource],
        *,
        dimensions: BlendDimensions | None = None,
        channel: str | None = None,
        reply_url: str | None = None,
        reply_ref: str | None = None,
        reply_level: ReplyLevel | None = None,
    ) -> Job:
        """``POST /jobs/blend``: 2-5 images, each a URL, a local path or bytes (uploaded as multipart)."""
        return self.submit(
            BlendRequest.from_images(
                images,
                blend_dimensions=dimensions,
                channel=channel,
                reply_url=reply_url,
                reply_ref=reply_ref,
                reply_level=reply_level,
            )
        )

    def describe(
        self,
        image: ImageSource,
        *,
        channel: str | None = None,
        reply_url: str | None = None,
        reply_ref: str | None = None,
        reply_level: ReplyLevel | None = None,
    ) -> Job:
        """``POST /jobs/describe``: four prompt suggestions for an image (URL, local path or bytes)."""
        return self.submit(
            DescribeRequest.from_image(
                image, channel=channel, reply_url=reply_url, reply_ref=reply_ref, reply_level=reply_level
            )
        )

    def seed(
        self,
        job_id: str,
        *,
        reply_url: str | None = None,
        reply_ref: str | None = None,
        reply_level: ReplyLevel | None = None,
    ) -> Job:
        """``POST /jobs/seed``: the seed (and four upscaled images) of a completed image job."""
        return self.submit(
            SeedRequest.build(job_id=job_id, reply_url=reply_url, reply_ref=reply_ref, reply_level=reply_level)
        )

    def settings_command(
        self,
        command: SettingsCommand,
        *,
        channel: str | None = None,
        reply_url: str | None = None,
        reply_ref: str | None = None,
        reply_level: ReplyLevel | None = None,
    ) -> Job:
        """Run one of the settings family; the completed job's ``settings`` holds the result."""
        return self.submit(
            SettingsRequest.build(
                command=command, channel=channel, reply_url=reply_url, reply_ref=reply_ref, reply_level=reply_level
            )
        )

    def settings(self, **options: Any) -> Job:
        """``POST /jobs/settings``: every current setting (version, stylize, modes, suffix)."""
        return self.settings_command("settings", **options)

    def info(self, **options: Any) -> Job:
        """``POST /jobs/info``: account info and speed mode."""
        return self.settings_command("info", **options)

    def fast(self, **options: Any) -> Job:
        """``POST /jobs/fast``: switch to fast mode."""
        return self.settings_command("fast", **options)

    def relax(self, **options: Any) -> Job:
        """``POST /jobs/relax``: switch to relax mode."""
        return self.settings_command("relax", **options)

    def turbo(self, **options: Any) -> Job:
        """``POST /jobs/turbo``: switch to turbo mode."""
        return self.settings_command("turbo", **options)

    def remix(self, **options: Any) -> Job:
        """``POST /jobs/remix``: toggle Remix mode."""
        return self.settings_command("remix", **options)

    def variability(self, **options: Any) -> Job:
        """``POST /jobs/variability``: toggle strong/subtle variation mode."""
        return self.settings_command("variability", **options)

    def get_job(self, job_id: str) -> Job:
        """``GET /jobs/<jobid>``: the job's current state (a malformed answer raises
        :class:`~airflow_provider_midjourney.exceptions.MidjourneyMalformedAnswerError`)."""
        return self._get(Job, _job_path(job_id), self._request("GET", _job_path(job_id)))

    def list_jobs(self) -> RunningJobs:
        """``GET /jobs``: jobs still created, started or in progress, per channel."""
        path = "/v3/midjourney/jobs"
        return self._get(RunningJobs, path, self._request("GET", path))

    def _get(self, model: type[M], path: str, response: httpx.Response) -> M:
        return self.parse_answer(model, self.parse_json(response, "GET", path), "GET", path)

    def cancel_job(self, job_id: str) -> None:
        """``DELETE /jobs/<jobid>``: cancel a running job, freeing its channel slot."""
        self._request("DELETE", _job_path(job_id))

    async def aget_job(self, job_id: str) -> Job:
        path = _job_path(job_id)
        return self._get(Job, path, await self._arequest("GET", path))

    async def alist_jobs(self) -> RunningJobs:
        path = "/v3/midjourney/jobs"
        return self._get(RunningJobs, path, await self._arequest("GET", path))

    async def acancel_job(self, job_id: str) -> None:
        await self._arequest("DELETE", _job_path(job_id))

    # -- accounts -----------------------------------------------------------------------------

    def list_accounts(self) -> dict[str, Account]:
        """``GET /accounts``: configured channels by id (empty when none is configured)."""
        path = "/v3/midjourney/accounts"
        try:
            data = self.parse_json(self._request("GET", path), "GET", path)
        except MidjourneyNotFoundError:
            return {}
        if not isinstance(data, dict):
            raise self._malformed(f"GET {path} answered {type(data).__name__}, not an object of channels", path, False)
        return {channel: self.parse_answer(Account, value, "GET", path) for channel, value in data.items()}

    def get_account(self, channel: str) -> Account:
        path = _account_path(channel)
        return self._get(Account, path, self._request("GET", path))

    def create_or_update_account(
        self,
        discord: str,
        *,
        max_jobs: int | None = None,
        max_image_jobs: int | None = None,
        max_video_jobs: int | None = None,
        reply_url: str | None = None,
    ) -> Account:
        """``POST /accounts``: add a channel from a Discord token, or update its limits.

        Keep ``max_jobs`` at or below the Midjourney plan's concurrent-job limit (3 on
        Basic/Standard, 12-15 on Pro/Mega); a higher value makes the API misbehave.
        """
        request = AccountRequest.build(
            discord=discord,
            max_jobs=max_jobs,
            max_image_jobs=max_image_jobs,
            max_video_jobs=max_video_jobs,
            reply_url=reply_url,
        )
        path = "/v3/midjourney/accounts"
        response = self._request("POST", path, body=request.http_body())
        return self.parse_answer(Account, self.parse_json(response, "POST", path), "POST", path)

    def delete_account(self, channel: str) -> None:
        self._request("DELETE", _account_path(channel))

    def reset_account(self, channel: str) -> None:
        """``POST /accounts/reset/<channel>``: clear a 596 lock after resolving it in Discord."""
        self._request("POST", f"/v3/midjourney/accounts/reset/{check_channel(channel)}")

    # -- the normalised interface ---------------------------------------------------------------

    def check_request(self, request: JobOptions) -> JobOptions:
        request = super().check_request(request)
        if isinstance(request, ButtonRequest | SeedRequest | VideoExtendRequest):
            check_job_id(request.job_id, "jobId (job_id)")
        if isinstance(request, VideoRequest):
            if request.job_id is not None:
                check_job_id(request.job_id, "jobId (job_id)")
            if request.resolution is not None:
                raise MidjourneyInvalidRequestError(
                    f"resolution: the {self.api_name} takes SD or HD video from the Midjourney account's"
                    " /settings, not per job; leave resolution empty"
                )
        if isinstance(request, VideoExtendRequest) and request.prompt:
            raise MidjourneyInvalidRequestError(
                f"prompt: the {self.api_name} extends with the Extend (Low/High motion) buttons, which take no"
                " prompt; leave prompt empty"
            )
        return request

    def video_job_request(self, request: VideoRequest | VideoExtendRequest) -> JobOptions:
        """The v3 request that makes a video: ``--video`` in /imagine, or an Animate/Extend button.

        A start frame given by job and index is read from the finished parent (one GET, before any
        job is created): an upscale offering Animate gets the button when nothing but motion is
        asked; otherwise the picture's URL starts a ``--video`` prompt. Extend needs one clip (a
        U1-U4 job of a video grid), whose Extend button takes no index.
        """
        motion = "High" if request.motion == "high" else "Low"
        options = {"reply_url": request.reply_url, "reply_ref": request.reply_ref, "reply_level": request.reply_level}
        if isinstance(request, VideoExtendRequest):
            parent = finished_parent(self.fetch_job(request.job_id))
            button = f"Extend ({motion} motion)"
            if button not in parent.buttons:
                raise MidjourneyInvalidRequestError(
                    f"job_id: job {parent.job_id} offers no {button!r} button; on the {self.api_name} a video grid"
                    f" is extended one clip at a time: press U{request.index} on it (MidjourneyButtonOperator)"
                    " and extend that job with index=1"
                )
            if request.index != 1:
                raise MidjourneyInvalidRequestError(f"index: job {parent.job_id} is one clip, so index must be 1")
            return ButtonRequest.build(job_id=parent.job_id, button=button, **options)
        start = request.image
        if request.job_id is not None:
            assert request.index is not None
            parent = finished_parent(self.fetch_job(request.job_id))
            animate = f"Animate ({motion} motion)"
            plain = not (request.prompt or request.end_image or request.loop or request.batch_size)
            if animate in parent.buttons and request.index == 1 and plain:
                return ButtonRequest.build(job_id=parent.job_id, button=animate, **options)
            start = start_frame_url(parent, request.index)
        assert start is not None
        return ImagineRequest.build(prompt=video_prompt_flags(request, start), channel=request.channel, **options)

    def check_job_id(self, job_id: Any, field: str = "job_id") -> str:
        return check_job_id(job_id, field)

    def submit_job(self, request: JobOptions) -> MidjourneyJob:
        request = self.check_request(request)
        if isinstance(request, VideoRequest | VideoExtendRequest):
            request = self.video_job_request(request)
        return self.submit(request).normalised(self.backend)

    def fetch_job(self, job_id: str) -> MidjourneyJob:
        return self.get_job(job_id).normalised(self.backend)

    async def afetch_job(self, job_id: str) -> MidjourneyJob:
        return (await self.aget_job(job_id)).normalised(self.backend)

    def cancel(self, job_id: str) -> None:
        self.cancel_job(job_id)

    async def acancel(self, job_id: str) -> None:
        await self.acancel_job(job_id)

    def find_job_by_reply_ref(self, reply_ref: str) -> MidjourneyJob | None:
        """``GET /jobs`` lists only running jobs and not their replyRef: fetch each to compare."""
        for job_id in self.list_jobs().job_ids:
            try:
                job = self.get_job(job_id)
            except MidjourneyNotFoundError:
                continue
            except MidjourneyAPIError as exc:
                if exc.status_code == 410:
                    continue
                raise
            if job.request.replyRef == reply_ref:
                return job.normalised(self.backend)
        return None

    async def alist_running_job_ids(self) -> set[str] | None:
        return set((await self.alist_jobs()).job_ids)

    # -- CDN assets ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def stream_asset(self, url: str, *, use_proxy: bool = False) -> Iterator[httpx.Response]:
        """Open an ``imageUx``/``videoUx``/attachment URL for streaming (no whole-file buffering).

        Direct requests carry browser headers (the CDN refuses other clients) and never the API
        token; ``use_proxy`` goes through ``GET /v1/proxy/cdn-midjourney`` with the token instead.
        """
        client, settings = self.get_conn(), self.connection_settings
        check_http_url(url, "url")
        if use_proxy:
            # The proxy fetches cdn.midjourney.com only (a self-hosted or emulated API: its own host);
            # any other URL would have the API token sent along for nothing.
            own = urlsplit(settings.base_url)
            target = urlsplit(url)
            if not url.startswith(CDN_PREFIX) and (target.scheme, target.netloc) != (own.scheme, own.netloc):
                raise MidjourneyInvalidRequestError(
                    f"url: the CDN proxy only fetches {CDN_PREFIX} URLs, got {url[:80]!r};"
                    " download it without use_proxy"
                )
            request = client.build_request("GET", PROXY_PATH, params={"cdnUrl": url})
            auth: httpx.Auth | None = self._auth(settings)
        else:
            if not url.lower().startswith(("http://", "https://")):
                raise MidjourneyError(f"url: expected an http(s) CDN URL, got {url[:80]!r}")
            request = client.build_request("GET", url, headers=BROWSER_HEADERS)
            auth = None
        with self._send_stream(client, request, auth) as response:
            yield response

    stream_cdn_asset = stream_asset

    def fetch_cdn_asset(self, url: str, *, use_proxy: bool = False) -> bytes:
        """Download a CDN asset into memory (small assets; use :meth:`stream_asset` for large)."""
        with self.stream_asset(url, use_proxy=use_proxy) as response:
            return response.read()

    @staticmethod
    def is_midjourney_cdn_url(url: str) -> bool:
        return url.startswith(CDN_PREFIX)

    open_cdn_download = MidjourneyBackendHook.open_download


def _job_path(job_id: str) -> str:
    return f"/v3/midjourney/jobs/{check_job_id(job_id)}"


def _account_path(channel: str) -> str:
    return f"/v3/midjourney/accounts/{check_channel(channel)}"
