"""The hook: the API token, the HTTP transport and one method per useapi.net Midjourney v3 endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, Retrying

from airflow_provider_midjourney.exceptions import (
    MidjourneyChannelLockedError,
    MidjourneyConnectError,
    MidjourneyError,
    MidjourneyNotFoundError,
    MidjourneySubmitUncertainError,
    MidjourneyTransportError,
    error_for_status,
)
from airflow_provider_midjourney.models import (
    CDN_PREFIX,
    Account,
    AccountRequest,
    BlendDimensions,
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    HttpBody,
    ImageSource,
    ImagineRequest,
    Job,
    JobOptions,
    ReplyLevel,
    RunningJobs,
    SeedRequest,
    SettingsCommand,
    SettingsRequest,
    check_channel,
    check_job_id,
)
from airflow_provider_midjourney.retry import RetryPolicy

try:
    from airflow.sdk import BaseHook
except ImportError:  # pragma: no cover - Airflow < 3.0 is not supported, but keep the import tidy
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

DEFAULT_BASE_URL = "https://api.useapi.net"
DEFAULT_TIMEOUT = 30.0
# The CDN behind imageUx/videoUx is fronted by Cloudflare, which refuses clients without a browser
# User-Agent. These are the headers the vendor's docs show.
BROWSER_HEADERS = {
    "User-Agent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/139.0.0.0 Safari/537.36"
    ),
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate, br",
    "Connection": "keep-alive",
}
PROXY_PATH = "/v1/proxy/cdn-midjourney/"
# Connections of the AsyncClient that hooks created with ``shared_async_client=True`` (the trigger's)
# share per event loop, base URL and timeout; requests beyond this many wait their turn. Throughput
# is about SHARED_POOL_SIZE / latency requests per second (8 / 0.2 s = 40/s: 200 jobs polled every
# 5 s); a larger pool costs more CPU per request in httpcore (docs/benchmarks.md).
SHARED_POOL_SIZE = 8


class _BearerToken(httpx.Auth):
    """Adds the token per API request (never to CDN requests) and hides it from reprs."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "_BearerToken(***)"


@dataclass(frozen=True)
class ConnectionSettings:
    """What the hook takes from the Airflow connection."""

    base_url: str
    token: str = field(repr=False)
    channel: str | None = None
    timeout: float = DEFAULT_TIMEOUT


def base_url_from_host(host: str | None, port: int | None = None) -> str:
    """``http://127.0.0.1:8765`` stays as is; a bare host gets https; empty means api.useapi.net."""
    host = (host or "").strip().rstrip("/")
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        host = f"https://{host}"
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MidjourneyError(f"Connection host {host!r} is not an http(s) base URL")
    if port and parts.port is None:
        host = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
    return host


class MidjourneyHook(BaseHook):
    """Talks to the useapi.net Midjourney API v3.

    The connection's password is the useapi.net API token; its host the base URL (empty: the real
    API); extras ``channel`` (default Discord channel) and ``timeout`` (seconds per request).

    One ``httpx.Client`` (and one ``httpx.AsyncClient`` for the async methods) serves every call
    of a hook instance; close them with :meth:`close`/:meth:`aclose` or use the hook as a
    (async) context manager.

    :param midjourney_conn_id: the Airflow connection id.
    :param retry: when and how long to retry; see :class:`~airflow_provider_midjourney.retry.RetryPolicy`.
    :param timeout: seconds per HTTP request, overriding the connection's ``timeout`` extra.
    :param shared_async_client: the async methods send through one ``httpx.AsyncClient`` shared by
        every such hook of the same event loop, base URL and timeout (at most
        :data:`SHARED_POOL_SIZE` connections), instead of a client of their own. The trigger uses it:
        a triggerer then runs thousands of them without an SSL context (~0.7 MB, ~20 ms of CPU)
        and a socket each. The token is still sent per request. :meth:`aclose` releases it.
    """

    conn_name_attr = "midjourney_conn_id"
    default_conn_name = "midjourney_default"
    conn_type = "midjourney"
    hook_name = "Midjourney"

    def __init__(
        self,
        midjourney_conn_id: str = default_conn_name,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        logger_name: str | None = None,
        shared_async_client: bool = False,
    ) -> None:
        super().__init__(logger_name=logger_name)
        self.midjourney_conn_id = midjourney_conn_id
        self.retry = retry or RetryPolicy()
        self._timeout_override = timeout
        self._settings: ConnectionSettings | None = None
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self.shared_async_client = shared_async_client
        self._shared: _SharedAsyncClient | None = None

    # -- connection ---------------------------------------------------------------------------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow 3.0/3.1 UI; 3.2+ reads the same from the provider info."""
        from airflow_provider_midjourney.get_provider_info import UI_FIELD_BEHAVIOUR

        return {
            "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
            "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
            "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields for Airflow 3.0/3.1 (3.2+ uses the provider info's ``conn-fields``)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField

        return {
            "channel": StringField(lazy_gettext("Default channel"), widget=BS3TextFieldWidget()),
            "timeout": StringField(lazy_gettext("Request timeout (s)"), widget=BS3TextFieldWidget()),
        }

    def _settings_from(self, conn: Any) -> ConnectionSettings:
        if not conn.password:
            raise MidjourneyError(
                f"Connection {self.midjourney_conn_id!r} has no API token: put the useapi.net token in its password"
            )
        extra = conn.extra_dejson or {}
        timeout = self._timeout_override or extra.get("timeout") or DEFAULT_TIMEOUT
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            raise MidjourneyError(
                f"Connection {self.midjourney_conn_id!r}: extra 'timeout' must be a number of seconds, got {timeout!r}"
            ) from None
        channel = extra.get("channel") or None
        return ConnectionSettings(
            base_url=base_url_from_host(conn.host, conn.port),
            token=conn.password,
            channel=str(channel) if channel else None,
            timeout=timeout,
        )

    @property
    def connection_settings(self) -> ConnectionSettings:
        if self._settings is None:
            self._settings = self._settings_from(self.get_connection(self.midjourney_conn_id))
        return self._settings

    async def aconnection_settings(self) -> ConnectionSettings:
        """The connection, fetched without blocking the event loop."""
        if self._settings is None:
            aget = getattr(type(self), "aget_connection", None)
            if aget is not None:
                conn = await aget(self.midjourney_conn_id)
            else:  # Airflow 3.0: no async getter yet
                from asgiref.sync import sync_to_async

                conn = await sync_to_async(self.get_connection)(self.midjourney_conn_id)
            self._settings = self._settings_from(conn)
        return self._settings

    def _client_kwargs(self, settings: ConnectionSettings) -> dict[str, Any]:
        return {
            "base_url": settings.base_url,
            "timeout": httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout)),
            "headers": {"Accept": "application/json", "User-Agent": "airflow-provider-midjourney"},
            "follow_redirects": True,
        }

    def get_conn(self) -> httpx.Client:
        """The hook's one sync HTTP client (created on first use)."""
        if self._client is None:
            self._client = httpx.Client(**self._client_kwargs(self.connection_settings))
        return self._client

    async def aget_conn(self) -> httpx.AsyncClient:
        """The hook's one async HTTP client (created on first use)."""
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(**self._client_kwargs(await self.aconnection_settings()))
        return self._aclient

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.release()

    def __enter__(self) -> MidjourneyHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MidjourneyHook:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

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

    # -- transport ----------------------------------------------------------------------------

    def _auth(self, settings: ConnectionSettings) -> httpx.Auth:
        return _BearerToken(settings.token)

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: HttpBody | None = None,
        params: dict[str, str] | None = None,
        creates_job: bool = False,
        reply_ref: str | None = None,
    ) -> httpx.Response:
        """Send one API request with the retry policy; return the successful response."""
        client, settings = self.get_conn(), self.connection_settings
        for attempt in Retrying(
            **self.retry.tenacity_kwargs(creates_job=creates_job, log=self.log, what=f"{method} {path}")
        ):
            with attempt:
                try:
                    response = client.request(
                        method, path, params=params, auth=self._auth(settings), **_body_kwargs(body)
                    )
                except httpx.TransportError as exc:
                    raise _transport_error(exc, method, path, creates_job, reply_ref) from None
                _raise_for_status(response, method, path, settings.token)
        return response

    async def _arequest(
        self, method: str, path: str, *, body: HttpBody | None = None, creates_job: bool = False
    ) -> httpx.Response:
        settings = await self.aconnection_settings()
        gate: contextlib.AbstractAsyncContextManager[Any]
        if self.shared_async_client:
            if self._shared is None:
                self._shared = _SharedAsyncClient.acquire(self._client_kwargs(settings))
            client, gate = self._shared.client, self._shared.gate
        else:
            client, gate = await self.aget_conn(), contextlib.nullcontext()

        async def send() -> httpx.Response:
            try:
                async with gate:
                    response = await client.request(method, path, auth=self._auth(settings), **_body_kwargs(body))
            except httpx.TransportError as exc:
                raise _transport_error(exc, method, path, creates_job, None) from None
            _raise_for_status(response, method, path, settings.token)
            return response

        if self.retry.max_attempts == 1:  # e.g. each poll of a trigger: no retry machinery to set up
            return await send()
        async for attempt in AsyncRetrying(
            **self.retry.tenacity_kwargs(creates_job=creates_job, log=self.log, what=f"{method} {path}")
        ):
            with attempt:
                response = await send()
        return response

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
        try:
            response = self._request(
                "POST", request.path, body=request.http_body(), creates_job=True, reply_ref=request.reply_ref
            )
        except MidjourneyChannelLockedError as exc:
            error = f"{exc.error} [{self._locked_channels_note()}]"
            raise MidjourneyChannelLockedError(exc.status_code, error, method=exc.method, path=exc.path) from None
        job = Job.model_validate(response.json())
        if response.status_code == 200:
            self.log.info("%s was already executed: reusing its existing job %s", request.path, job.jobid)
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
        return f"Locked: {named}. After resolving it in Discord: MidjourneyHook().reset_account('<channel>')."

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
        """``GET /jobs/<jobid>``: the job's current state."""
        return Job.model_validate(self._request("GET", _job_path(job_id)).json())

    def list_jobs(self) -> RunningJobs:
        """``GET /jobs``: jobs still created, started or in progress, per channel."""
        return RunningJobs.model_validate(self._request("GET", "/v3/midjourney/jobs").json())

    def cancel_job(self, job_id: str) -> None:
        """``DELETE /jobs/<jobid>``: cancel a running job, freeing its channel slot."""
        self._request("DELETE", _job_path(job_id))

    async def aget_job(self, job_id: str) -> Job:
        return Job.model_validate((await self._arequest("GET", _job_path(job_id))).json())

    async def alist_jobs(self) -> RunningJobs:
        return RunningJobs.model_validate((await self._arequest("GET", "/v3/midjourney/jobs")).json())

    async def acancel_job(self, job_id: str) -> None:
        await self._arequest("DELETE", _job_path(job_id))

    # -- accounts -----------------------------------------------------------------------------

    def list_accounts(self) -> dict[str, Account]:
        """``GET /accounts``: configured channels by id (empty when none is configured)."""
        try:
            data = self._request("GET", "/v3/midjourney/accounts").json()
        except MidjourneyNotFoundError:
            return {}
        return {channel: Account.model_validate(value) for channel, value in data.items()}

    def get_account(self, channel: str) -> Account:
        return Account.model_validate(self._request("GET", _account_path(channel)).json())

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
        response = self._request("POST", "/v3/midjourney/accounts", body=request.http_body())
        return Account.model_validate(response.json())

    def delete_account(self, channel: str) -> None:
        self._request("DELETE", _account_path(channel))

    def reset_account(self, channel: str) -> None:
        """``POST /accounts/reset/<channel>``: clear a 596 lock after resolving it in Discord."""
        self._request("POST", f"/v3/midjourney/accounts/reset/{check_channel(channel)}")

    # -- CDN assets ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def stream_cdn_asset(self, url: str, *, use_proxy: bool = False) -> Iterator[httpx.Response]:
        """Open an ``imageUx``/``videoUx``/attachment URL for streaming (no whole-file buffering).

        Direct requests carry browser headers (the CDN refuses other clients) and never the API
        token; ``use_proxy`` goes through ``GET /v1/proxy/cdn-midjourney`` with the token instead.
        """
        client, settings = self.get_conn(), self.connection_settings
        if use_proxy:
            request = client.build_request("GET", PROXY_PATH, params={"cdnUrl": url})
            auth: httpx.Auth | None = self._auth(settings)
        else:
            if not url.lower().startswith(("http://", "https://")):
                raise MidjourneyError(f"url: expected an http(s) CDN URL, got {url[:80]!r}")
            request = client.build_request("GET", url, headers=BROWSER_HEADERS)
            auth = None
        try:
            response = client.send(request, auth=auth, stream=True)
        except httpx.TransportError as exc:
            raise _transport_error(exc, "GET", request.url.path, False, None) from None
        try:
            if response.status_code >= 400:
                response.read()
                _raise_for_status(response, "GET", request.url.path, settings.token)
            yield response
        finally:
            response.close()

    def fetch_cdn_asset(self, url: str, *, use_proxy: bool = False) -> bytes:
        """Download a CDN asset into memory (small assets; use :meth:`stream_cdn_asset` for large)."""
        with self.stream_cdn_asset(url, use_proxy=use_proxy) as response:
            return response.read()

    @staticmethod
    def is_midjourney_cdn_url(url: str) -> bool:
        return url.startswith(CDN_PREFIX)

    # -- streamed downloads (MidjourneyDownloadOperator) ---------------------------------------

    @contextlib.contextmanager
    def open_cdn_download(
        self, url: str, *, use_proxy: bool = False, chunk_size: int = 256 * 1024
    ) -> Iterator[tuple[httpx.Headers, Iterator[bytes]]]:
        """Open a CDN asset for a streamed download: its response headers and its body in chunks.

        The request is :meth:`stream_cdn_asset`'s (directly: browser headers and never the API
        token; ``use_proxy``: through ``GET /v1/proxy/cdn-midjourney`` with the token; error
        statuses raise the usual exceptions). A connection lost while the body arrives raises
        :class:`~airflow_provider_midjourney.exceptions.MidjourneyTransportError`, so callers
        never see an httpx exception. Call :meth:`get_conn` first when threads share the hook.
        """
        with self.stream_cdn_asset(url, use_proxy=use_proxy) as response:
            yield response.headers, _body_chunks(response, chunk_size)


class _SharedAsyncClient:
    """One pooled ``httpx.AsyncClient`` per (event loop, base URL, timeout), counted by its hooks.

    Requests pass a semaphore of :data:`SHARED_POOL_SIZE` first: httpcore's pool rescans its whole
    queue on every request and release, so thousands of requests queued in it at once cost
    quadratic CPU; queued on the semaphore they cost nothing. Closed when its last hook releases it.
    """

    _registry: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Any]]] = (
        weakref.WeakKeyDictionary()
    )
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, key: tuple[Any, ...], client_kwargs: dict[str, Any]) -> None:
        self.key = key
        limits = httpx.Limits(max_connections=SHARED_POOL_SIZE, max_keepalive_connections=SHARED_POOL_SIZE)
        self.client = httpx.AsyncClient(limits=limits, **client_kwargs)
        self.gate = asyncio.Semaphore(SHARED_POOL_SIZE)
        self.users = 0

    @classmethod
    def acquire(cls, client_kwargs: dict[str, Any]) -> _SharedAsyncClient:
        loop = asyncio.get_running_loop()
        timeout: httpx.Timeout = client_kwargs["timeout"]
        key = (client_kwargs["base_url"], timeout.read, timeout.connect)
        with cls._lock:
            clients = cls._registry.setdefault(loop, {})
            shared: _SharedAsyncClient | None = clients.get(key)
            if shared is None:
                shared = clients[key] = cls(key, client_kwargs)
            shared.users += 1
        return shared

    async def release(self) -> None:
        with self._lock:
            self.users -= 1
            if self.users > 0:
                return
            loop = asyncio.get_running_loop()
            clients = self._registry.get(loop, {})
            if clients.get(self.key) is self:
                del clients[self.key]
        await self.client.aclose()


def _body_kwargs(body: HttpBody | None) -> dict[str, Any]:
    if body is None:
        return {}
    if body.files is not None:
        return {"data": body.data or {}, "files": body.files}
    return {"json": body.json_body}


def _job_path(job_id: str) -> str:
    return f"/v3/midjourney/jobs/{check_job_id(job_id)}"


def _account_path(channel: str) -> str:
    return f"/v3/midjourney/accounts/{check_channel(channel)}"


def _raise_for_status(response: httpx.Response, method: str, path: str, token: str) -> None:
    if response.status_code < 400:
        return
    try:
        payload = response.json()
        error = str(payload.get("error") or payload) if isinstance(payload, dict) else str(payload)
    except ValueError:
        error = response.text.strip()[:500] or response.reason_phrase or "no details"
    raise error_for_status(response.status_code, _redact(error, token), method=method, path=path)


def _redact(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def _transport_error(
    exc: httpx.TransportError, method: str, path: str, creates_job: bool, reply_ref: str | None
) -> MidjourneyTransportError:
    """Classify a transport failure: was the request possibly received by the API?"""
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return MidjourneyConnectError(f"{method} {path} was not sent: {reason}")
    if creates_job:
        return MidjourneySubmitUncertainError(
            f"{method} {path} got no answer ({reason}). The job may have been created, so the request"
            " is not sent again; look it up (GET /v3/midjourney/jobs, or by replyRef) before resubmitting.",
            path=path,
            reply_ref=reply_ref,
        )
    return MidjourneyTransportError(f"{method} {path} failed: {reason}")


def _body_chunks(response: httpx.Response, chunk_size: int) -> Iterator[bytes]:
    """The decoded body of a streamed response; transport failures become MidjourneyTransportError."""
    try:
        yield from response.iter_bytes(chunk_size)
    except httpx.RequestError as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise MidjourneyTransportError(f"GET {response.request.url.path} broke off in the body: {reason}") from None
