"""Outermost raw ASGI middleware: records requests, injects faults, checks the API token.

It sits *outside* FastAPI so that ``send`` is uvicorn's own bound method, whose protocol cycle
holds the TCP transport: that is how ``drop_next`` closes a connection without any answer.
Order for every request: parse + record, drop (before handling), latency (API routes only;
``cdn_latency`` for the CDN route), ``fail_next``, ``failure_rate`` (API only), 401, 402 (API
only), then the app. ``cdn_truncate_next`` cuts a CDN answer after half of its body.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_midjourney.testing.jobs import SUBSCRIPTION_EXPIRED, ApiError
from airflow_provider_midjourney.testing.models import BlobField, FaultRule, ParsedBody, RecordedRequest

if TYPE_CHECKING:
    from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator

BODY_SCOPE_KEY = "midjourney_emulator.body"


def request_params(request: Request, *, json_only: bool = False) -> dict[str, Any]:
    """The request's parsed body (JSON or form fields, as the middleware read it); a broken one is a 400."""
    parsed: ParsedBody = request.scope.get(BODY_SCOPE_KEY) or ParsedBody()
    if parsed.error or (json_only and parsed.form):
        raise ApiError(400, parsed.error or "a JSON body is required")
    return parsed.params


def json_answer(call: Callable[[], Any], error_body: Callable[[int, str], dict[str, Any]]) -> Response:
    """``call()``'s dict as JSON (or its Response as it is); an :class:`ApiError` in ``error_body``'s shape."""
    try:
        result = call()
    except ApiError as exc:
        return JSONResponse(error_body(exc.status, exc.message or ""), status_code=exc.status)
    return result if isinstance(result, Response) else JSONResponse(result)


@dataclass(frozen=True)
class ApiFlavour:
    """How one vendor's API under ``prefix`` authenticates and shapes its error answers.

    The middleware applies the emulator's knobs (failures, latency, 401, 402) to every flavour's
    routes; each backend's emulator module registers its own with :func:`register_flavour`.
    """

    prefix: str
    authorized: Callable[[Headers, str], bool]
    error_body: Callable[[int, str], dict[str, Any]]
    #: status -> the text of an injected failure (``{n}``: the number of accounts), over the generic one
    fault_texts: Mapping[int, str] = field(default_factory=dict)
    #: body fields holding a secret: recorded as ``abc...xyz``
    secret_fields: tuple[str, ...] = ()
    #: what a ``missing_fields`` answer (``malformed_next``) leaves out
    key_fields: tuple[str, ...] = ("status",)


def bearer_authorized(headers: Headers, token: str) -> bool:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    try:
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
    except (TypeError, UnicodeError):
        return False


API_FLAVOURS: list[ApiFlavour] = []  # filled by the dialects' register()


def register_flavour(flavour: ApiFlavour) -> None:
    """Add (or replace) the flavour of ``flavour.prefix``; longer prefixes win over shorter ones."""
    API_FLAVOURS[:] = [f for f in API_FLAVOURS if f.prefix != flavour.prefix] + [flavour]
    API_FLAVOURS.sort(key=lambda f: len(f.prefix), reverse=True)


def flavour_for(path: str) -> ApiFlavour | None:
    return next((f for f in API_FLAVOURS if path.startswith(f.prefix)), None)


CDN_PREFIX = "/cdn/"
_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def parse_body(scope: Scope, body: bytes, receive: Receive) -> ParsedBody:
    """JSON object, multipart or urlencoded form into a flat dict (files become BlobField)."""
    ctype = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
    if not body.strip():
        return ParsedBody()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        params: dict[str, Any] = {}
        try:
            form = await Request(scope, _replay(body, receive)).form(max_part_size=11 * 2**20)
        except Exception:
            return ParsedBody(error="Invalid form data", form=True, empty=False)
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                size = value.size if value.size is not None else len(await value.read())
                params[key] = BlobField(size, value.filename, value.content_type)
            else:
                params[key] = value
        await form.close()
        return ParsedBody(params, form=True, empty=False)
    try:
        data = json.loads(body)
    except ValueError:
        return ParsedBody(error="Invalid JSON body", empty=False)
    if not isinstance(data, dict):
        return ParsedBody(error="Request body must be a JSON object", empty=False)
    return ParsedBody(data, empty=False)


def _redacted(params: dict[str, Any], path: str) -> dict[str, Any]:
    flavour = flavour_for(path)
    secrets = [name for name in (flavour.secret_fields if flavour else ()) if isinstance(params.get(name), str)]
    return {**params, **{name: f"{params[name][:3]}...{params[name][-3:]}" for name in secrets}}


def _abort(send: Send) -> None:
    """Close the TCP connection under uvicorn's ``send`` without writing an HTTP answer."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("drop_next needs the emulator's own uvicorn server")
    transport.abort()
    cycle.disconnected = True  # type: ignore[union-attr]  # uvicorn: no 500, no error log


def _close(send: Send) -> None:
    """Close the TCP connection under uvicorn's ``send`` after flushing what was written (a FIN)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cdn_truncate_next needs the emulator's own uvicorn server")
    transport.close()
    cycle.disconnected = True  # type: ignore[union-attr]


class EmulatorMiddleware:
    def __init__(self, app: ASGIApp, emulator: MidjourneyEmulator) -> None:
        self.app = app
        self.emu = emulator

    def _authorized(self, headers: Headers, path: str) -> bool:
        if self.emu.token is None:
            return True
        flavour = flavour_for(path)
        # Outside the API (the CDN route) "authorized" records whether a valid token was sent at all.
        return (flavour.authorized if flavour else bearer_authorized)(headers, self.emu.token)

    def _error_text(self, status: int, path: str) -> str:
        flavour = flavour_for(path)
        if flavour is not None and status in flavour.fault_texts:
            return flavour.fault_texts[status].format(n=max(1, len(self.emu.state.accounts)))
        if status == 402:
            return SUBSCRIPTION_EXPIRED
        return _STATUS_TEXT.get(status, f"Emulated failure ({status})")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        headers = Headers(scope=scope)
        arrived = time.monotonic()
        body = await _read_body(receive)
        if body is None:
            return
        parsed = await parse_body(scope, body, receive)
        fields = _redacted(parsed.params, path)
        form_fields: dict[str, str | int] = {}
        if parsed.form:  # files are recorded by their size in bytes
            form_fields = {k: v.size if isinstance(v, BlobField) else str(v) for k, v in fields.items()}
        record = RecordedRequest(
            method=method,
            path=path,
            query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
            status=0,
            json=None if parsed.form or parsed.empty or parsed.error else fields,
            form_fields=form_fields,
            user_agent=headers.get("user-agent"),
            authorized=self._authorized(headers, path),
            time=arrived,
        )
        self.emu._record(record)
        scope[BODY_SCOPE_KEY] = parsed

        drop = self.emu.take_drop(method, path)
        if drop is not None and not drop.after_handling:
            record.dropped = True
            _abort(send)
            return
        dropping = drop is not None
        truncate = not dropping and path.startswith(CDN_PREFIX) and self.emu.take_cdn_truncate()

        async def recording_send(message: Message) -> None:
            nonlocal truncate
            if message["type"] == "http.response.start":
                record.status = int(message["status"])
                truncate = truncate and record.status == 200
                if dropping:
                    record.dropped = True
                    _abort(send)
            if truncate and message["type"] == "http.response.body":
                if not record.dropped:  # half the body, then the connection closes
                    record.dropped = True
                    body = message.get("body", b"")
                    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
                    _close(send)
                return
            if not dropping:
                await send(message)

        await self._dispatch(scope, _replay(body, receive), recording_send, record, dropping=dropping)

    async def _dispatch(
        self, scope: Scope, receive: Receive, send: Send, record: RecordedRequest, *, dropping: bool = False
    ) -> None:
        path: str = scope["path"]
        flavour = flavour_for(path)
        api = flavour is not None
        delay = self.emu.api_delay() if api else self.emu.cdn_delay(path) if path.startswith(CDN_PREFIX) else 0.0
        slow = self.emu.take_slow(scope["method"], path)
        delay += slow.delay if slow is not None else 0.0
        # Rules are matched on arrival (a request held by latency must not take a rule set later).
        # A request whose answer will be dropped leaves the fail/malformed rules for the next one.
        rule = None if dropping else self.emu.take_fail(scope["method"], path)
        if delay > 0:
            await asyncio.sleep(delay)
        status = 0
        if rule is not None and rule.after_handling:
            await self._rewrite(scope, receive, send, rule)
            return
        if rule is not None:
            status = rule.status
            message = rule.error or self._error_text(status, path)
        elif api and self.emu.roll_failure():
            status, message = 500, self._error_text(500, path)
        elif api and not record.authorized:
            status, message = 401, "Unauthorized"
        elif api and self.emu.subscription_expired:
            status, message = 402, SUBSCRIPTION_EXPIRED
        if not status:
            await self.app(scope, receive, send)
            return
        payload = flavour.error_body(status, message) if flavour else {"error": message}
        data = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data, "more_body": False})

    async def _rewrite(self, scope: Scope, receive: Receive, send: Send, rule: FaultRule) -> None:
        """Let the app handle the request (a job gets created), then answer what ``rule`` says."""
        status, body = 0, b""

        async def capture(message: Message) -> None:
            nonlocal status, body
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                body += message.get("body", b"")

        await self.app(scope, receive, capture)
        if rule.malformed is not None:
            flavour = flavour_for(scope["path"])
            ctype, data = _malformed(rule.malformed, body, flavour.key_fields if flavour else ("status",))
            status = status if status < 400 else 200
        else:
            flavour = flavour_for(scope["path"])
            message = rule.error or self._error_text(rule.status, scope["path"])
            payload = flavour.error_body(rule.status, message) if flavour else {"error": message}
            ctype, data, status = "application/json", json.dumps(payload).encode(), rule.status
        headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data, "more_body": False})


def _malformed(kind: str, body: bytes, key_fields: tuple[str, ...]) -> tuple[str, bytes]:
    """A broken version of an answer's JSON ``body`` (see ``EmulatorKnobs.malformed_next``)."""
    if kind == "html":
        return "text/html", b"<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"
    if kind == "empty":
        return "application/json", b""
    if kind == "truncated":
        return "application/json", body[: len(body) // 2]
    if kind == "not_object":
        return "application/json", b"[]"
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    if isinstance(data, dict):
        for key in key_fields:
            data.pop(key, None)
    return "application/json", json.dumps(data).encode()
