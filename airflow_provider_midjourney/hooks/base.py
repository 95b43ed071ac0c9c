"""The backend seam: what every Midjourney API's hook offers, and the HTTP plumbing they share.

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
import contextvars
import re
import threading
import weakref
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpcore
import httpx
from pydantic import BaseModel
from tenacity import AsyncRetrying, Retrying

from airflow_provider_midjourney.admission import note_retry_after
from airflow_provider_midjourney.backends import hook_class_for
from airflow_provider_midjourney.checks import check_seconds
from airflow_provider_midjourney.exceptions import (
    MidjourneyConfigurationError,
    MidjourneyConnectError,
    MidjourneyMalformedAnswerError,
    MidjourneySubmitUncertainError,
    MidjourneyTransportError,
    MidjourneyUnsupportedError,
    error_for_status,
    redact,
    register_secret,
)
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
# Some CDNs (cdn.midjourney.com behind Cloudflare) refuse clients without a browser User-Agent.
BROWSER_HEADERS = {
    "User-Agent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/139.0.0.0 Safari/537.36"
    ),
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate, br",
    "Connection": "keep-alive",
}
# Connections of the AsyncClient that hooks created with ``shared_async_client=True`` (the trigger's)
# share per event loop, base URL and timeout; requests beyond this many wait their turn. The pool
# serves at most SHARED_POOL_SIZE / latency requests a second, less while the event loop is busy:
# in Airflow's real triggerer, 16 connections at 0.25 s delivered ~40 a second, short of the ~50 a
# second that 3,000 waiting jobs finishing within a minute need (their news queued for up to 24 s,
# docs/benchmarks.md); 32 keep up. Only bursts use them: a waiting job sends ~2 requests in all.
SHARED_POOL_SIZE = 32  # the default of [midjourney] shared_pool_size (config.py)
# A poll on the shared client (a GET without body or query: what a trigger sends) goes straight to
# the client's own httpcore pool, with the client's headers and timeouts prebuilt: no cookie jar,
# no URL merging, no auth flow per request (benchmarks/poll_cost.py; the httpx path stays for
# everything else, for redirects, and where the client has proxy mounts).
DIRECT_POOL_GETS = True
#: Set (in its own task) by a request that must not queue behind the others on the shared client's
#: gate: the one "which jobs still run" call that all waiting triggers depend on (triggers/watch.py).
#: It still waits for a free connection in the pool, behind at most SHARED_POOL_SIZE requests.
SKIP_SHARED_QUEUE: contextvars.ContextVar[bool] = contextvars.ContextVar("midjourney_skip_shared_queue", default=False)
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9/._~:@!$&'()*+,;=-]*\Z")  # nothing httpx would have to encode


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


def base_url_from_host(host: str | None, port: int | None = None, default: str = "https://api.useapi.net") -> str:
    """``http://127.0.0.1:8765`` stays as is; a bare host gets https; empty means ``default``."""
    if host is not None and not isinstance(host, str):
        raise MidjourneyConfigurationError(f"Connection host must be text, got {type(host).__name__}")
    host = (host or "").strip().rstrip("/")
    if not host:
        return default
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in host) or not host.isascii():
        raise MidjourneyConfigurationError(
            f"Connection host {host[:80]!r} contains spaces, control or non-ASCII characters;"
            " expected an http(s) base URL"
        )
    if "://" not in host:
        host = f"https://{host}"
    try:
        parts = urlsplit(host)
        has_port = parts.port is not None
    except ValueError:
        raise MidjourneyConfigurationError(f"Connection host {host[:80]!r} is not a valid http(s) base URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MidjourneyConfigurationError(f"Connection host {host[:80]!r} is not an http(s) base URL")
    if port and not has_port:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise MidjourneyConfigurationError(f"Connection port must be 1-65535, got {port!r}")
        host = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
    return host


def check_token(token: Any, conn_id: str, api_name: str, *, required: bool = True) -> str:
    """The connection's secret without surrounding whitespace, registered for redaction.

    A pasted token often ends with a newline: sent as is, the HTTP library refuses the header
    and prints it, token included. Control and non-ASCII characters are refused with a message
    that does not contain them (nor the token).
    """
    if token is None:
        token = ""
    if not isinstance(token, str):
        raise MidjourneyConfigurationError(f"Connection {conn_id!r}: the API token (password) must be text")
    secret = str(token).strip()
    if required and not secret:
        raise MidjourneyConfigurationError(
            f"Connection {conn_id!r} has no API token: put the {api_name} token in its password"
            " (it is empty or only whitespace)"
        )
    if secret and (not secret.isascii() or any(ord(char) < 32 or ord(char) == 127 for char in secret)):
        raise MidjourneyConfigurationError(
            f"Connection {conn_id!r}: the API token (password) contains a control character or a non-ASCII character"
            f" ({len(secret)} characters in all); copy the {api_name} token again"
        )
    register_secret(secret)
    return secret


class _HeaderAuth(httpx.Auth):
    """Adds the secret header per API request (never to CDN requests) and hides it from reprs."""

    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._name] = self._value
        yield request

    def __repr__(self) -> str:
        return f"_HeaderAuth({self._name}: ***)"

    def raw(self) -> tuple[bytes, bytes]:
        """The header as bytes, for a request sent without httpx's auth flow."""
        return self._name.encode("latin-1"), self._value.encode("latin-1")


H = TypeVar("H", bound="MidjourneyBackendHook")
M = TypeVar("M", bound="BaseModel")


class MidjourneyBackendHook(BaseHook):
    """Base of every backend's hook: connection, transport, and the normalised job interface.

    :param midjourney_conn_id: the Airflow connection id (default: the backend's default id).
    :param retry: when and how long to retry; see :class:`~airflow_provider_midjourney.retry.HttpRetry`.
    :param timeout: seconds per HTTP request, overriding the connection's ``timeout`` extra.
    :param shared_async_client: the async methods send through one ``httpx.AsyncClient`` shared by
        every such hook of the same event loop, base URL and timeout (at most
        :data:`SHARED_POOL_SIZE` connections). The trigger uses it: a triggerer then runs thousands
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
        self._shared: _SharedAsyncClient | None = None
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Airflow < 3.2 reads a hook's form only from the concrete class's own __dict__ (inherited
        # methods are skipped), so each backend gets its own copy unless it defines one itself.
        super().__init_subclass__(**kwargs)
        for name in ("get_ui_field_behaviour", "get_connection_form_widgets"):
            if name not in cls.__dict__:
                setattr(cls, name, MidjourneyBackendHook.__dict__[name])

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
            conn = self._connection or self.get_connection(self.midjourney_conn_id)
            self._settings = self._settings_from(conn)
        return self._settings

    async def aconnection_settings(self) -> ConnectionSettings:
        """The connection, fetched without blocking the event loop."""
        if self._settings is None:
            conn = self._connection or await aget_connection(self.midjourney_conn_id)
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

    def parse_json(self, response: httpx.Response, method: str, path: str, *, creates_job: bool = False) -> Any:
        """The JSON of a 2xx answer; anything else is a malformed answer (never a raw crash).

        After a job-creating request the job probably exists, so that case is "uncertain" (look it
        up by replyRef) rather than retryable.
        """
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            what = f"{method} {path} answered {response.status_code} with a body that is not JSON ({kind})"
            raise self._malformed(what, path, creates_job) from None

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
        return _HeaderAuth("Authorization", f"Bearer {settings.token}") if settings.token else None

    def _raise_for_response(self, response: httpx.Response, method: str, path: str) -> None:
        """Turn an error status into the matching exception (a backend may map its own codes)."""
        if response.status_code < 400:
            return
        try:
            payload = response.json()
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
                try:
                    response = client.request(
                        method, path, params=params, headers=headers, auth=self._auth(settings), **_body_kwargs(body)
                    )
                except httpx.TransportError as exc:
                    raise _transport_error(exc, method, path, creates_job, reply_ref) from None
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
        gate: contextlib.AbstractAsyncContextManager[Any]
        if self.shared_async_client:
            if self._shared is not None and self._shared.loop is not asyncio.get_running_loop():
                self._shared.forget()  # taken under an earlier event loop: unusable in this one
                self._shared = None
            if self._shared is None:
                self._shared = _SharedAsyncClient.acquire(self._client_kwargs(settings))
            client = self._shared.client
            gate = contextlib.nullcontext() if SKIP_SHARED_QUEUE.get() else self._shared.gate
        else:
            client, gate = await self.aget_conn(), contextlib.nullcontext()

        auth = self._auth(settings)
        shared = self._shared
        direct = (
            DIRECT_POOL_GETS
            and shared is not None
            and shared.pool is not None
            and method == "GET"
            and body is None
            and not params
            and (auth is None or isinstance(auth, _HeaderAuth))
            and _PLAIN_PATH.match(path) is not None
        )

        async def send() -> httpx.Response:
            try:
                async with gate:
                    response = None
                    if direct and shared is not None:
                        response = await shared.direct_get(path, auth.raw() if isinstance(auth, _HeaderAuth) else None)
                    if response is None:
                        response = await client.request(method, path, params=params, auth=auth, **_body_kwargs(body))
            except httpx.TransportError as exc:
                raise _transport_error(exc, method, path, creates_job, None) from None
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
        request = client.build_request("GET", url, headers=BROWSER_HEADERS)
        with self._send_stream(client, request, auth=None) as response:
            yield response

    @contextlib.contextmanager
    def _send_stream(
        self, client: httpx.Client, request: httpx.Request, auth: httpx.Auth | None
    ) -> Iterator[httpx.Response]:
        try:
            response = client.send(request, auth=auth, stream=True)
        except httpx.TransportError as exc:
            raise _transport_error(exc, "GET", request.url.path, False, None) from None
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
            yield response.headers, _body_chunks(response, chunk_size)


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


class _SharedAsyncClient:
    """One pooled ``httpx.AsyncClient`` per (event loop, base URL, timeout), counted by its hooks.

    Requests pass a semaphore of ``[midjourney] shared_pool_size`` (:data:`SHARED_POOL_SIZE`) first:
    httpcore's pool rescans its whole queue on every request and release, so thousands of requests
    queued in it at once cost quadratic CPU; queued on the semaphore they cost nothing. Closed when
    its last hook releases it.
    """

    _registry: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Any]]] = (
        weakref.WeakKeyDictionary()
    )
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, key: tuple[Any, ...], client_kwargs: dict[str, Any]) -> None:
        self.key = key
        self.loop = asyncio.get_running_loop()
        from airflow_provider_midjourney import config

        size = config.shared_pool_size()
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self.client = httpx.AsyncClient(limits=limits, **client_kwargs)
        self.gate = asyncio.Semaphore(size)
        # For direct_get: the client's own pool (None when proxies are mounted), headers, timeouts.
        pool = getattr(self.client._transport, "_pool", None)
        self.pool: httpcore.AsyncConnectionPool | None = None if self.client._mounts else pool
        self.base = str(self.client.base_url).rstrip("/")
        self.headers = list(self.client.headers.raw)
        self.extensions: dict[str, Any] = {"timeout": self.client.timeout.as_dict()}
        self.users = 0

    async def direct_get(self, path: str, auth: tuple[bytes, bytes] | None) -> httpx.Response | None:
        """``GET`` base URL + ``path`` on the pool, as httpx would send it; None for a redirect.

        The same connections, headers and timeouts as ``client.request``, minus the per-request work
        a poll does not need (URL merging and encoding, cookies, the auth flow, event hooks).
        """
        assert self.pool is not None
        headers = self.headers if auth is None else [*self.headers, auth]
        try:
            answer = await self.pool.request("GET", self.base + path, headers=headers, extensions=self.extensions)
        except _HTTPCORE_ERRORS as exc:
            raise _as_httpx_error(exc) from None
        if 300 <= answer.status < 400:
            return None  # let httpx follow it
        return httpx.Response(answer.status, headers=answer.headers, content=answer.content)

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
        if self.loop is not asyncio.get_running_loop():
            self.forget()  # its loop is gone or elsewhere: closing it here would fail
            return
        with self._lock:
            self.users -= 1
            if self.users > 0:
                return
            clients = self._registry.get(self.loop, {})
            if clients.get(self.key) is self:
                del clients[self.key]
        await self.client.aclose()

    def forget(self) -> None:
        """Drop one user without closing (the client belongs to another event loop)."""
        with self._lock:
            self.users -= 1


# What httpcore raises where httpx would raise its TransportError of the same name. (This module is
# imported by tasks and the triggerer only, never on a DAG parse, so httpcore may be imported here.)
_HTTPCORE_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)


def _as_httpx_error(exc: Exception) -> httpx.TransportError:
    """httpx's exception of the same name (httpx raises these for the same httpcore errors)."""
    cls = getattr(httpx, type(exc).__name__, None)
    if isinstance(cls, type) and issubclass(cls, httpx.TransportError):
        return cls(str(exc))
    return httpx.TransportError(str(exc))


def error_payload(response: httpx.Response) -> dict[str, Any] | str:
    """An error answer's JSON object, or its text (at most 500 characters) when it is not one."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase or "no details"
    return payload if isinstance(payload, dict) else str(payload)[:500]


def _body_kwargs(body: HttpBody | None) -> dict[str, Any]:
    if body is None:
        return {}
    if body.files is not None:
        return {"data": body.data or {}, "files": body.files}
    return {"json": body.json_body}


def _transport_error(
    exc: httpx.TransportError, method: str, path: str, creates_job: bool, reply_ref: str | None
) -> MidjourneyTransportError:
    """Classify a transport failure: was the request possibly received by the API?"""
    reason = redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return MidjourneyConnectError(f"{method} {path} was not sent: {reason}")
    if creates_job:
        return MidjourneySubmitUncertainError(
            f"{method} {path} got no answer ({reason}). The job may have been created, so the request"
            " is not sent again; look it up (running jobs, or by replyRef) before resubmitting.",
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
