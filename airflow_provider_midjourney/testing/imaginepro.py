"""ImaginePro's routes in the emulator, both API generations, over the one job engine.

Served (shapes from ImaginePro's pages and its official SDK; see the hook's module for sources):

* ``POST /api/v1/nova/{imagine,button,describe}`` and ``POST /api/v1/midjourney/{imagine,button,
  blend,describe}``: ``{"success": true, "messageId", "createdAt"}``;
* ``GET /api/v1/message/fetch/{messageId}`` and ``GET /api/v1/midjourney/message/{messageId}``:
  the message (``status`` QUEUED/PROCESSING/DONE/FAIL, ``progress`` 0-100, one grid ``uri``,
  ``buttons``, ``originatingMessageId``, ``ref``, ``error``);
* ``GET /api/v1/nova/images`` and ``GET /api/v1/midjourney/images``: the 24-hour history of
  finished pictures (``{"images": [{id, type, button, prompt, uri, createdAt}]}``), newest first;
* ``GET /api/v1/subscription/account-info``: ``{"plan", "credits"}``, 1000 credits less 8 per message
  created (the contract names the route and that it reports credits; the shape is ours).
* ``POST /api/v1/video/mj/generate`` (``prompt``, ``startFrameUrl`` and ``endFrameUrl``, all typed
  required by the SDK) and ``POST /api/v1/video/mj/extend`` (``messageId`` of a video, ``index``
  0-3, ``animateMode``), polled with ``GET /api/v1/video/mj/fetch/{messageId}``: the message plus
  ``videoUrl`` (the first clip) and ``results[{url, index}]`` (0-based, the SDK README's example).
  An extension is emulated as a new four-clip video of the parent's prompt.

Each job is a job of the v3 engine (``EmulatorState``), so the knobs (moderation words, never
finishing, latency, faults, 401) act on these routes too; a ``messageId`` maps to its v3 job.
Errors answer ``{"message", "error", "statusCode"}`` (the SDK's ``ErrorResponse``). Where
ImaginePro documents nothing, the emulator chooses, and says so: a moderated or failed job is a
``FAIL`` whose ``error`` is Midjourney's own text; /describe's four prompts come back in
``content`` numbered 1️⃣-4️⃣ as Midjourney writes them; ``Cancel Job`` turns a running job into
``FAIL`` with ``error`` "Job cancelled by user".
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from airflow_provider_midjourney.testing import specs
from airflow_provider_midjourney.testing.content import describe_text, iso
from airflow_provider_midjourney.testing.jobs import ApiError, Failure, JobSpec, failure_text
from airflow_provider_midjourney.testing.middleware import (
    ApiFlavour,
    bearer_authorized,
    json_answer,
    register_flavour,
    request_params,
)
from airflow_provider_midjourney.testing.specs import is_http_url
from airflow_provider_midjourney.testing.vendor_jobs import VendorJobs

if TYPE_CHECKING:
    from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator

PREFIX = "/api/v1/"
NOVA = "/api/v1/nova"
LEGACY = "/api/v1/midjourney"
#: The account's credits (the contract names the route; its answer's shape is our guess).
ACCOUNT_INFO = "/api/v1/subscription/account-info"
#: Credits of a fresh emulated account, and what each job created on it takes.
START_CREDITS, CREDITS_PER_JOB = 1000, 8
BUTTONS = (
    *(f"U{n}" for n in range(1, 5)),
    *(f"V{n}" for n in range(1, 5)),
    "🔄",
    "Zoom Out 2x",
    "Zoom Out 1.5x",
    "Vary (Strong)",
    "Vary (Subtle)",
    "Vary (Region)",
    "⬅️",
    "➡️",
    "⬆️",
    "⬇️",
    "Make Square",
    "Upscale (2x)",
    "Upscale (4x)",
    "Redo Upscale (2x)",
    "Redo Upscale (4x)",
    "Upscale (Creative)",
    "Upscale (Subtle)",
)
CANCEL = "Cancel Job"
STATUS = {"created": "QUEUED", "started": "PROCESSING", "progress": "PROCESSING", "completed": "DONE"}
PHRASES = {400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 404: "Not Found", 429: "Too Many Requests"}


def error_body(status: int, message: str) -> dict[str, Any]:
    """NestJS's error shape, which the SDK's ``ErrorResponse`` types: message, error, statusCode."""
    return {"message": message, "error": PHRASES.get(status, "Error"), "statusCode": status}


@dataclass
class MessageRecord:
    engine_id: str
    verb: str
    prompt: str
    ref: str | None
    button: str | None = None
    parent: str | None = None


def _common(body: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Check ``ref``, ``webhookOverride`` and ``timeout`` (10-900 s): (the ref, the body to echo for the job)."""
    ref, webhook, timeout = body.get("ref"), body.get("webhookOverride"), body.get("timeout")
    if ref is not None and (not isinstance(ref, str) or len(ref) > 1024):
        raise ApiError(400, "ref must be a string of at most 1024 characters")
    if webhook is not None and (not isinstance(webhook, str) or not is_http_url(webhook)):
        raise ApiError(400, "webhookOverride must be an http(s) URL")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or not 10 <= timeout <= 900):
        raise ApiError(400, "timeout must be an integer between 10 and 900")
    return ref, {k: v for k, v in body.items() if k != "mask"}


class ImagineProRoutes:
    """The handlers; one instance per emulator."""

    def __init__(self, emu: MidjourneyEmulator) -> None:
        self.emu = emu
        self.messages: VendorJobs[MessageRecord] = VendorJobs("Message {id} not found")

    def _create(self, spec: JobSpec, record: MessageRecord) -> dict[str, Any]:
        record.engine_id = self.emu.state.create_job(spec)[0].id
        return {"success": True, "messageId": self.messages.add(record), "createdAt": iso_now()}

    def imagine(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ApiError(400, "prompt is required")
        ref, echo = _common(body)
        return self._create(specs.imagine(prompt, request=echo), MessageRecord("", "imagine", prompt, ref))

    def button(self, body: dict[str, Any]) -> dict[str, Any]:
        message_id, button = body.get("messageId"), body.get("button")
        if not isinstance(message_id, str) or not message_id:
            raise ApiError(400, "messageId is required")
        if not isinstance(button, str) or button not in (*BUTTONS, CANCEL):
            raise ApiError(400, f"button must be one of: {', '.join((*BUTTONS, CANCEL))}")
        parent = self.messages.get(message_id)
        if button == CANCEL:
            try:
                self.emu.state.cancel(parent.engine_id)
            except ApiError as exc:
                if exc.status == 400:
                    raise ApiError(400, "Cancel Job is only available while the job is in progress") from None
                raise
            return {"success": True, "createdAt": iso_now()}
        remix, mask = body.get("prompt"), body.get("mask")
        for name, value in (("prompt", remix), ("mask", mask)):
            if value is not None and not isinstance(value, str):
                raise ApiError(400, f"{name} must be a string")
        ref, echo = _common(body)
        spec = specs.button(parent.engine_id, button, prompt=remix or None, mask=mask, request=echo)
        record = MessageRecord("", "button", remix or parent.prompt, ref, button, message_id)
        return self._create(spec, record)

    def blend(self, body: dict[str, Any]) -> dict[str, Any]:
        urls = body.get("urls")
        if not isinstance(urls, list) or not all(isinstance(u, str) and is_http_url(u) for u in urls):
            raise ApiError(400, "urls must be a list of 2 to 5 image URLs")
        if not 2 <= len(urls) <= 5:
            raise ApiError(400, "urls must be a list of 2 to 5 image URLs")
        ref, echo = _common(body)
        return self._create(specs.blend(urls, request=echo), MessageRecord("", "blend", " ".join(urls), ref))

    def describe(self, body: dict[str, Any]) -> dict[str, Any]:
        url = body.get("url")
        if not isinstance(url, str) or not is_http_url(url):
            raise ApiError(400, "url must be a public image URL")
        ref, echo = _common(body)
        return self._create(specs.describe(url, request=echo), MessageRecord("", "describe", url, ref))

    def video(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt, start, end = body.get("prompt"), body.get("startFrameUrl"), body.get("endFrameUrl")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ApiError(400, "prompt is required")
        for name, url in (("startFrameUrl", start), ("endFrameUrl", end)):
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ApiError(400, f"{name} must be a public image URL")
        ref, echo = _common(body)
        spec = specs.imagine(f"{start} {prompt} --video --end {end}", request=echo)
        return self._create(spec, MessageRecord("", "video", prompt, ref))

    def extend(self, body: dict[str, Any]) -> dict[str, Any]:
        message_id, index = body.get("messageId"), body.get("index")
        if not isinstance(message_id, str) or not message_id:
            raise ApiError(400, "messageId is required")
        if isinstance(index, bool) or index not in (0, 1, 2, 3):
            raise ApiError(400, "index must be 0, 1, 2 or 3")
        parent = self.messages.get(message_id)
        if parent.verb != "video" or self.message(message_id)["status"] != "DONE":
            raise ApiError(400, "messageId must be a finished video message")
        ref, echo = _common(body)
        record = MessageRecord("", "video", parent.prompt, ref, f"extend {index}", message_id)
        return self._create(specs.imagine(f"{parent.prompt} --video", request=echo), record)

    def video_message(self, message_id: str) -> dict[str, Any]:
        view = self.message(message_id)
        if self.messages.get(message_id).verb != "video":
            raise ApiError(404, f"Video message {message_id} not found")
        if view["status"] == "DONE":
            clips = list(self.emu.state.view(self.messages.get(message_id).engine_id).video_urls)
            view["results"] = [{"url": url, "index": n} for n, url in enumerate(clips)]
            view["videoUrl"] = clips[0] if clips else None
        return view

    def message(self, message_id: str) -> dict[str, Any]:
        record = self.messages.get(message_id)
        job = self.emu.state.view(record.engine_id)
        status = job.status
        view: dict[str, Any] = {
            "messageId": message_id,
            "prompt": record.prompt,
            "status": STATUS.get(status, "FAIL"),
            "progress": 100 if status == "completed" else int(job.percent or 0),
            "createdAt": iso(job.created),
            "updatedAt": iso(job.updated),
            "buttons": [],
            "ref": record.ref or "",
        }
        if record.parent:
            view["originatingMessageId"] = record.parent
        if status == "completed":
            if job.primary_url:
                view["uri"] = view["originalUrl"] = job.primary_url
            view["buttons"] = [b for b in job.buttons if b in BUTTONS]
            if record.verb == "describe":
                view["content"] = describe_text(job.describe_prompts)
        elif status not in STATUS:
            view["error"] = _error_text(job.failure)
        return view

    def account_info(self) -> dict[str, Any]:
        left = START_CREDITS - CREDITS_PER_JOB * len(self.messages)
        return {"plan": "emulated", "credits": max(0, left)}

    def history(self, page: int, size: int) -> dict[str, Any]:
        done = []
        for message_id, record in self.messages.newest_first():
            try:
                view = self.message(message_id)
            except ApiError:
                continue
            if view["status"] == "DONE" and view.get("uri"):
                entry = {"id": message_id, "type": record.verb, "button": record.button or "", "prompt": record.prompt}
                done.append({**entry, "uri": view["uri"], "createdAt": view["createdAt"]})
        return {"images": done[(page - 1) * size : page * size]}


def _error_text(failure: Failure | None) -> str:
    if failure is None:
        return "Midjourney job failed"
    if failure.reason == "cancelled":
        return "Job cancelled by user"
    return failure_text(failure)


def iso_now() -> str:
    return iso(time.time())


def _positive(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit() or int(value) < 1:
        raise ApiError(400, "page and size must be positive integers")
    return int(value)


_ROUTES: weakref.WeakKeyDictionary[Any, ImagineProRoutes] = weakref.WeakKeyDictionary()


def job_for_message(emu: MidjourneyEmulator, message_id: str) -> str:
    """The engine's job id behind an ImaginePro ``messageId`` (for tests: ``emu.complete_job``)."""
    return _ROUTES[emu].messages.get(message_id).engine_id


def build_router(emu: MidjourneyEmulator) -> APIRouter:
    routes = _ROUTES[emu] = ImagineProRoutes(emu)
    router = APIRouter()

    def answer(call: Callable[[], dict[str, Any]]) -> Response:
        return json_answer(call, error_body)

    for prefix in (NOVA, LEGACY):
        for verb in ("imagine", "button", "describe"):

            async def post(request: Request, _verb: str = verb) -> Response:
                return answer(lambda: getattr(routes, _verb)(request_params(request)))

            router.add_api_route(f"{prefix}/{verb}", post, methods=["POST"])

        async def history(request: Request) -> Response:
            query = request.query_params
            return answer(lambda: routes.history(_positive(query.get("page"), 1), _positive(query.get("size"), 10)))

        router.add_api_route(f"{prefix}/images", history, methods=["GET"])

    for verb in ("generate", "extend"):

        async def video_post(request: Request, _verb: str = verb) -> Response:
            call = routes.video if _verb == "generate" else routes.extend
            return answer(lambda: call(request_params(request)))

        router.add_api_route(f"/api/v1/video/mj/{verb}", video_post, methods=["POST"])

    @router.get("/api/v1/video/mj/fetch/{message_id}")
    async def video_message(message_id: str) -> Response:
        return answer(lambda: routes.video_message(message_id))

    @router.post(f"{LEGACY}/blend")
    async def blend(request: Request) -> Response:
        return answer(lambda: routes.blend(request_params(request)))

    @router.get(ACCOUNT_INFO)
    async def account_info() -> Response:
        return answer(routes.account_info)

    @router.get("/api/v1/message/fetch/{message_id}")
    @router.get(f"{LEGACY}/message/{{message_id}}")
    async def message(message_id: str) -> Response:
        return answer(lambda: routes.message(message_id))

    return router


def register(app: FastAPI, emu: MidjourneyEmulator) -> None:
    """Serve ImaginePro's routes on ``app``; the emulator's knobs apply under ``/api/v1/``."""
    register_flavour(ApiFlavour(PREFIX, bearer_authorized, error_body))
    app.include_router(build_router(emu))
