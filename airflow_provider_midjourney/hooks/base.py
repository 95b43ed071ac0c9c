"""The backend seam: what every Midjourney API's hook offers (its HTTP plumbing is :mod:`.transport`).

Each vendor is one hook class (its own connection type, wire models and path layout) that
subclasses :class:`MidjourneyBackendHook`. Operators, the trigger, the sensor and the download
operator never name a vendor: they call :func:`hook_for_connection` (or its async twin), which picks
the hook class from the connection's type, and then use only the methods below, which speak the
normalised :class:`~airflow_provider_midjourney.job.MidjourneyJob`.

Adding a backend: its wing (a subclass here that sets the class attributes and implements the
abstract methods, its wire models, its emulator dialect) and one entry in
:data:`airflow_provider_midjourney.backends.BACKENDS` (docs/adding-a-backend.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import httpx
from pydantic import BaseModel
from tenacity import AsyncRetrying, Retrying

from airflow_provider_midjourney.admission import note_retry_after
from airflow_provider_midjourney.backends import hook_class_for
from airflow_provider_midjourney.checks import check_seconds
from airflow_provider_midjourney.exceptions import (
    MidjourneyConfigurationError,
    MidjourneyMalformedAnswerError,
    MidjourneySubmitUncertainError,
    MidjourneyTransportError,
    MidjourneyUnsupportedError,
    error_for_status,
)
from airflow_provider_midjourney.hooks import answer_limits, transport
from airflow_provider_midjourney.hooks.connection_values import base_url_from_host, check_token
from airflow_provider_midjourney.hooks.same_job import checked_afetch, checked_fetch
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
from airflow_provider_midjourney.redaction import redact
from airflow_provider_midjourney.retry import HttpRetry
from airflow_provider_midjourney.video_requests import VideoExtendRequest, VideoRequest
from airflow_provider_midjourney.wire import HttpBody

try:
    from airflow.sdk import BaseHook
except ImportError:  # pragma: no cover
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

DEFAULT_TIMEOUT = 30.0
#: Sane bounds of a per-request timeout (connection ``timeout`` extra, hook ``timeout=``).
MIN_REQUEST_TIMEOUT, MAX_REQUEST_TIMEOUT = 0.1, 600.0


class Capability(str, Enum):
    """What a backend can do; a request needing a missing one fails before any HTTP call."""

    IMAGINE = "imagine"
    BUTTON = "button"
    BLEND = "blend"
    DESCRIBE = "describe"
    SEED = "seed"
    SETTINGS = "settings"
    CANCEL = "cancel"
    LIST_RUNNING = "list_running"
    SEPARATE_IMAGES = "separate_images"
    VIDEO = "video"  # animate a picture (MidjourneyVideoOperator; useapi v3 also takes --video in imagine)
    VIDEO_EXTEND = "video_extend"
    UPLOAD_FILES = "upload_files"

    def __str__(self) -> str:
        return self.value


_NEEDS: dict[type[JobOptions], Capability] = {
    ImagineRequest: Capability.IMAGINE,
    ButtonRequest: Capability.BUTTON,
    BlendRequest: Capability.BLEND,
    DescribeRequest: Capability.DESCRIBE,
    SeedRequest: Capability.SEED,
    SettingsRequest: Capability.SETTINGS,
    VideoRequest: Capability.VIDEO,
    VideoExtendRequest: Capability.VIDEO_EXTEND,
}


@dataclass(frozen=True)
class ConnectionSettings:
    """What a hook takes from its Airflow connection."""

    base_url: str
    token: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    extra: Mapping[str, Any] = field(default_factory=dict)
    channel: str | None = None  # useapi.net's default channel (v3, v2)


H = TypeVar("H", bound="MidjourneyBackendHook")
M = TypeVar("M", bound="BaseModel")


class MidjourneyBackendHook(BaseHook):
    """Base of every backend's hook: connection, transport, and the normalised job interface.

    :param midjourney_conn_id: the Airflow connection id (default: the backend's default id).
    :param retry: when and how long to retry; see :class:`~airflow_provider_midjourney.retry.HttpRetry`.
    :param timeout: seconds per HTTP request, overriding the connection's ``timeout`` extra.
    :param shared_async_client: the async methods send through one ``httpx.AsyncClient`` shared by
        every such hook of the same event loop, base URL and timeout (at most
        :data:`~.transport.SHARED_POOL_SIZE` connections). The trigger uses it: a triggerer then runs thousands
        of them without an SSL context and a socket each. The secret is still sent per request.
    """

    conn_name_attr = "midjourney_conn_id"
    default_conn_name = "midjourney_default"
    conn_type = "midjourney"
    hook_name = "Midjourney"

    #: The name in results (``backend`` key) and messages.
    backend: ClassVar[str] = ""
    #: A human name for messages ("useapi.net Midjourney API v3").
    api_name: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: False where an API may run without a secret (a self-hosted midjourney-proxy).
    token_required: ClassVar[bool] = True
    #: Where a request the backend cannot serve should go instead, by capability.
    alternatives: ClassVar[Mapping[Capability, str]] = {}
    #: True where every job-creating request carries an idempotency key the vendor honours (a
    #: re-send with the same key returns the first job): a creation whose answer was lost (timeout,
    #: 5xx after sending) may then simply be sent again, by the hook's retries and by the operator.
    idempotent_submit: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each backend's ``fetch_job``/``afetch_job`` refuses an answer about another job, and each
        backend gets its own copy of the form methods: Airflow < 3.2 reads a hook's form only from the
        concrete class's own ``__dict__`` (inherited methods are skipped)."""
        super().__init_subclass__(**kwargs)
        for name in ("get_ui_field_behaviour", "get_connection_form_widgets"):
            if name not in cls.__dict__:
                setattr(cls, name, MidjourneyBackendHook.__dict__[name])
        if "fetch_job" in cls.__dict__:
            cls.fetch_job = checked_fetch(cls.__dict__["fetch_job"])  # type: ignore[method-assign]
        if "afetch_job" in cls.__dict__:
            cls.afetch_job = checked_afetch(cls.__dict__["afetch_job"])  # type: ignore[method-assign]

    def __init__(
        self,
        midjourney_conn_id: str | None = None,
        *,
        retry: HttpRetry | None = None,
        timeout: float | None = None,
        logger_name: str | None = None,
        shared_async_client: bool = False,
        connection: Any = None,
    ) -> None:
        super().__init__(logger_name=logger_name)
        self.midjourney_conn_id = midjourney_conn_id or self.default_conn_name
        self.retry = retry or HttpRetry()
        if timeout is not None:
            timeout = check_seconds(timeout, "timeout", minimum=MIN_REQUEST_TIMEOUT, maximum=MAX_REQUEST_TIMEOUT)
        self._timeout_override = timeout
        self._connection = connection
        self._settings: ConnectionSettings | None = None
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None
        self.shared_async_client = shared_async_client
        self._shared: transport.SharedAsyncClient | None = None
        #: A failed job that the next submission replaces (an idempotent backend then derives a
        #: fresh key, which would otherwise answer with the failed job).
        self.supersedes: str | None = None

    # -- the normalised interface (what operators, trigger, sensor and downloads use) ----------

    def check_request(self, request: JobOptions) -> JobOptions:
        """Refuse, before any HTTP call, what this backend cannot do; return the request to send.

        Backends extend it with their own rules (id formats, fields the API does not take).
        """
        needed = _NEEDS.get(type(request))
        if needed is not None:
            self.require(needed, f"{type(request).__name__.removesuffix('Request')} jobs")
        return request

    def require(self, capability: Capability, what: str) -> None:
        """Raise :class:`MidjourneyUnsupportedError` naming the backend when it lacks ``capability``."""
        if capability in self.supported_capabilities():
            return
        instead = self.alternatives.get(capability)
        hint = f" {instead}" if instead else ""
        raise MidjourneyUnsupportedError(
            f"{what} need the {capability.value!r} capability, which the {self.api_name} backend"
            f" (connection {self.midjourney_conn_id!r}, type {self.conn_type!r}) does not offer.{hint}"
        )

    def supported_capabilities(self) -> frozenset[Capability]:
        """The capabilities of this connection (a backend may probe its server and narrow them)."""
        return self.capabilities

    def submit_job(self, request: JobOptions) -> MidjourneyJob:
        """Create the job (the request was validated and checked); return it normalised."""
        raise NotImplementedError

    def fetch_job(self, job_id: str) -> MidjourneyJob:
        raise NotImplementedError

    async def afetch_job(self, job_id: str) -> MidjourneyJob:
        raise NotImplementedError

    def cancel(self, job_id: str) -> None:
        """Cancel a running job (only called where :attr:`Capability.CANCEL` is offered)."""
        raise NotImplementedError

    async def acancel(self, job_id: str) -> None:
        raise NotImplementedError

    def find_job_by_reply_ref(self, reply_ref: str) -> MidjourneyJob | None:
        """A still-running job that carries ``reply_ref``, where the API can list jobs; else None."""
        return None

    def fetch_balance(self) -> Mapping[str, float | int] | None:
        """What the account has left, where the vendor reports it; None (no HTTP call) by default.

        Called once after a completed job, with a short timeout and no retries; its errors are
        logged and ignored. Build the answer with :func:`~airflow_provider_midjourney.cost.cost_entry`
        (e.g. ``cost_entry("credits", left=…)``). What a single job cost belongs on
        :attr:`MidjourneyJob.cost <airflow_provider_midjourney.job.MidjourneyJob.cost>` instead.
        """
        return None

    async def alist_running_job_ids(self) -> set[str] | None:
        """Ids of every job still running on this connection in one call, or None if the API cannot."""
        return None

    def check_job_id(self, job_id: Any, field: str = "job_id") -> str:
        """A job id that is safe to put in a URL path (backends narrow the format)."""
        from airflow_provider_midjourney.input_checks import check_safe_id

        return check_safe_id(job_id, field)

    # -- connection ---------------------------------------------------------------------------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow 3.0/3.1 connection form; 3.2+ reads the same from the provider info."""
        from airflow_provider_midjourney.backends import ui_field_behaviour

        return ui_field_behaviour(cls.conn_type)

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields for Airflow 3.0/3.1 (3.2+ uses the provider info's ``conn-fields``)."""
        from airflow_provider_midjourney.backends import connection_form_widgets

        return connection_form_widgets(cls.conn_type)

    def _settings_from(self, conn: Any) -> ConnectionSettings:
        token = check_token(conn.password, self.midjourney_conn_id, self.api_name, required=self.token_required)
        try:
            extra = dict(conn.extra_dejson or {})
        except (TypeError, ValueError):
            raise MidjourneyConfigurationError(
                f"Connection {self.midjourney_conn_id!r}: extra must be a JSON object"
            ) from None
        timeout = self._timeout_override
        if timeout is None:
            raw = extra.get("timeout")
            if raw is None or raw == "":
                timeout = DEFAULT_TIMEOUT
            else:
                # The UI form stores numbers as text: accept "30" there, nothing else textual.
                if isinstance(raw, str):
                    with contextlib.suppress(ValueError):
                        raw = float(raw.strip())
                timeout = check_seconds(
                    raw,
                    f"Connection {self.midjourney_conn_id!r} extra 'timeout' (seconds per request)",
                    minimum=MIN_REQUEST_TIMEOUT,
                    maximum=MAX_REQUEST_TIMEOUT,
                )
        channel = extra.get("channel") or None
        if channel is not None:
            from airflow_provider_midjourney.input_checks import check_channel

            channel = check_channel(
                str(channel).strip() if isinstance(channel, int | str) and not isinstance(channel, bool) else channel,
                f"Connection {self.midjourney_conn_id!r} extra 'channel'",
            )
        return ConnectionSettings(
            base_url=base_url_from_host(conn.host, conn.port, self.default_base_url),
            token=token,
            timeout=timeout,
            extra=extra,
            channel=str(channel) if channel else None,
        )

    @property
    def connection_settings(self) -> ConnectionSettings:
        if self._settings is None:
            self._connection = self._connection or self.get_connection(self.midjourney_conn_id)
            self._settings = self._settings_from(self._connection)
        return self._settings

    async def aconnection_settings(self) -> ConnectionSettings:
        """The connection, fetched without blocking the event loop."""
        if self._settings is None:
            self._connection = self._connection or await aget_connection(self.midjourney_conn_id)
            self._settings = self._settings_from(self._connection)
        return self._settings

    def sibling(self, *, retry: HttpRetry | None = None, timeout: float | None = None) -> MidjourneyBackendHook:
        """A hook of the same connection with another retry policy or timeout, and its own clients.

        The connection is not read again once this hook has read it."""
        return type(self)(self.midjourney_conn_id, retry=retry, timeout=timeout, connection=self._connection)

    def _client_kwargs(self, settings: ConnectionSettings) -> dict[str, Any]:
        return {
            "base_url": settings.base_url,
            "timeout": httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout)),
            "headers": {
                "Accept": "application/json",
                "Accept-Encoding": answer_limits.ACCEPT_ENCODING,
                "User-Agent": "airflow-provider-midjourney",
            },
            "follow_redirects": True,
        }

    def get_conn(self) -> httpx.Client:
        """The hook's one sync HTTP client (created on first use)."""
        if self._client is None:
            self._client = httpx.Client(**self._client_kwargs(self.connection_settings))
        return self._client

    def parse_json(
        self,
        response: httpx.Response,
        method: str,
        path: str,
        *,
        creates_job: bool = False,
        reply_ref: str | None = None,
    ) -> Any:
        """The JSON of a 2xx answer; anything else is a malformed answer (never a raw crash).

        After a job-creating request the job probably exists, so that case is "uncertain" (look it
        up by replyRef) rather than retryable.
        """
        try:
            return answer_limits.load_json(response.content)
        except ValueError as exc:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            why = f", {exc}" if "nested" in str(exc) else ""
            what = f"{method} {path} answered {response.status_code} with a body that is not JSON ({kind}{why})"
            raise self._malformed(what, path, creates_job, reply_ref) from None

    def parse_answer(
        self,
        model: type[M],
        data: Any,
        method: str,
        path: str,
        *,
        creates_job: bool = False,
        reply_ref: str | None = None,
    ) -> M:
        """Validate an answer's JSON into ``model``; a wrong shape is a malformed answer."""
        from pydantic import ValidationError

        try:
            return model.model_validate(data)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) or "(body)" for e in exc.errors()[:5])
            what = f"{method} {path} answered a {model.__name__} of the wrong shape (bad or missing: {fields})"
            raise self._malformed(what, path, creates_job, reply_ref) from None

    def _malformed(
        self, what: str, path: str, creates_job: bool, reply_ref: str | None = None
    ) -> MidjourneyTransportError:
        if creates_job:
            return MidjourneySubmitUncertainError(
                f"{what}. The job may have been created, so the request is not sent again.",
                path=path,
                reply_ref=reply_ref,
            )
        return MidjourneyMalformedAnswerError(what)

    async def aget_conn(self) -> httpx.AsyncClient:
        """The hook's async HTTP client for the running event loop (created on first use there)."""
        loop = asyncio.get_running_loop()
        if self._aclient is not None and self._aclient_loop is not loop:
            self._aclient = None  # made under an earlier loop (asyncio.run twice): unusable here
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(**self._client_kwargs(await self.aconnection_settings()))
            self._aclient_loop = loop
        return self._aclient

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._aclient is not None:
            if self._aclient_loop is asyncio.get_running_loop():
                with contextlib.suppress(RuntimeError):
                    await self._aclient.aclose()
            self._aclient = None  # one of an earlier loop is only dropped: closing it here would fail
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.release()

    def __enter__(self: H) -> H:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self: H) -> H:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- transport ----------------------------------------------------------------------------

    def _auth(self, settings: ConnectionSettings) -> httpx.Auth | None:
        """Bearer token by default; a backend with another header overrides this."""
        return transport.HeaderAuth("Authorization", f"Bearer {settings.token}") if settings.token else None

    def _raise_for_response(self, response: httpx.Response, method: str, path: str) -> None:
        """Turn an error status into the matching exception (a backend may map its own codes)."""
        if response.status_code < 400:
            return
        try:
            payload = answer_limits.load_json(response.content)
            if isinstance(payload, dict):
                error = str(payload.get("error") or payload.get("message") or payload.get("description") or payload)
            else:
                error = str(payload)
        except ValueError:
            error = response.text.strip()[:500] or response.reason_phrase or "no details"
        raise note_retry_after(
            error_for_status(response.status_code, self.redact(error), method=method, path=path), response.headers
        )

    def redact(self, text: str) -> str:
        """``text`` without any secret this process has read (tokens, and echoes of 8+ of their characters)."""
        token = self._settings.token if self._settings else ""
        text = text.replace(token, "***") if token else text
        return redact(text)

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: HttpBody | None = None,
        params: dict[str, str] | None = None,
        creates_job: bool = False,
        reply_ref: str | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Send one API request with the retry policy; return the successful response.

        With ``idempotency_key`` (sent as ``Idempotency-Key``; only where the vendor honours it) a
        job-creating request is retried like a read: a re-send cannot create a second job.
        """
        client, settings = self.get_conn(), self.connection_settings
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        creates_job = creates_job and not idempotency_key
        for attempt in Retrying(
            **self.retry.tenacity_kwargs(creates_job=creates_job, log=self.log, what=f"{method} {path}")
        ):
            with attempt:
                response = transport.send(
                    client,
                    method,
                    path,
                    auth=self._auth(settings),
                    body=body,
                    params=params,
                    creates_job=creates_job,
                    reply_ref=reply_ref,
                    headers=headers,
                    timeout=settings.timeout,
                )
                self._raise_for_response(response, method, path)
        return response

    async def _arequest(
        self,
        method: str,
        path: str,
        *,
        body: HttpBody | None = None,
        params: dict[str, str] | None = None,
        creates_job: bool = False,
    ) -> httpx.Response:
        settings = await self.aconnection_settings()
        client: httpx.AsyncClient | transport.SharedAsyncClient
        if self.shared_async_client:
            if self._shared is not None and self._shared.loop is not asyncio.get_running_loop():
                self._shared.forget()  # taken under an earlier event loop: unusable in this one
                self._shared = None
            if self._shared is None:
                self._shared = transport.SharedAsyncClient.acquire(self._client_kwargs(settings))
            client = self._shared
        else:
            client = await self.aget_conn()
        auth = self._auth(settings)

        async def send() -> httpx.Response:
            response = await transport.asend(
                client,
                method,
                path,
                auth=auth,
                body=body,
                params=params,
                creates_job=creates_job,
                timeout=settings.timeout,
            )
            self._raise_for_response(response, method, path)
            return response

        if self.retry.max_attempts == 1:  # e.g. each poll of a trigger: no retry machinery to set up
            return await send()
        async for attempt in AsyncRetrying(
            **self.retry.tenacity_kwargs(creates_job=creates_job, log=self.log, what=f"{method} {path}")
        ):
            with attempt:
                response = await send()
        return response

    # -- downloads ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def stream_asset(self, url: str, *, use_proxy: bool = False) -> Iterator[httpx.Response]:
        """Open a result picture or video for streaming: a plain GET with browser headers, no secret.

        Backends with an authenticated proxy for their CDN (useapi.net) honour ``use_proxy``.
        """
        if use_proxy:
            raise MidjourneyUnsupportedError(f"use_proxy: the {self.api_name} backend has no CDN proxy")
        from airflow_provider_midjourney.input_checks import check_http_url

        check_http_url(url, "url")  # before any connection: refused naming the field
        client = self.get_conn()
        request = client.build_request("GET", url, headers=transport.BROWSER_HEADERS)
        with self._send_stream(client, request, auth=None) as response:
            yield response

    @contextlib.contextmanager
    def _send_stream(
        self, client: httpx.Client, request: httpx.Request, auth: httpx.Auth | None
    ) -> Iterator[httpx.Response]:
        try:
            response = client.send(request, auth=auth, stream=True)
        except httpx.TransportError as exc:
            raise transport.transport_error(exc, "GET", request.url.path, False, None) from None
        try:
            if response.status_code >= 400:
                response.read()
                self._raise_for_response(response, "GET", request.url.path)
            yield response
        finally:
            response.close()

    @contextlib.contextmanager
    def open_download(
        self, url: str, *, use_proxy: bool = False, chunk_size: int = 256 * 1024
    ) -> Iterator[tuple[httpx.Headers, Iterator[bytes]]]:
        """Open an asset for a streamed download: its response headers and its body in chunks.

        A connection lost while the body arrives raises
        :class:`~airflow_provider_midjourney.exceptions.MidjourneyTransportError`. Call
        :meth:`get_conn` first when threads share the hook.
        """
        with self.stream_asset(url, use_proxy=use_proxy) as response:
            yield response.headers, transport.body_chunks(response, chunk_size)


# -- choosing the hook by connection type ----------------------------------------------------------


def hook_for_connection(conn_id: str, **kwargs: Any) -> MidjourneyBackendHook:
    """The hook of ``conn_id``'s backend (by connection type), with the connection already read."""
    conn = BaseHook.get_connection(conn_id)
    return hook_class_for(conn.conn_type, conn_id)(conn_id, connection=conn, **kwargs)


async def ahook_for_connection(conn_id: str, **kwargs: Any) -> MidjourneyBackendHook:
    """:func:`hook_for_connection` for the triggerer's event loop (the lookup does not block it)."""
    conn = await aget_connection(conn_id)
    return hook_class_for(conn.conn_type, conn_id)(conn_id, connection=conn, **kwargs)


async def aget_connection(conn_id: str) -> Any:
    aget = getattr(BaseHook, "aget_connection", None)
    if aget is not None:
        return await aget(conn_id)
    from asgiref.sync import sync_to_async  # Airflow 3.0: no async getter yet

    return await sync_to_async(BaseHook.get_connection)(conn_id)


# -- shared plumbing ---------------------------------------------------------------------------------


def error_payload(response: httpx.Response) -> dict[str, Any] | str:
    """An error answer's JSON object, or its text (at most 500 characters) when it is not one."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase or "no details"
    return payload if isinstance(payload, dict) else str(payload)[:500]
