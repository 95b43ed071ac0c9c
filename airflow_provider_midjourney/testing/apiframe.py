"""Apiframe v2's routes in the emulator, over the one job engine, mounted under ``/apiframe``.

Served (shapes from Apiframe's ``openapi.json`` and v2 docs; see ``docs/backends/apiframe.md``):

* ``POST /v2/images/generate`` (``model: "midjourney"``, ``prompt`` 1-2000, ``midjourneyParams``
  with ``aspect_ratio`` only; unknown keys are a 400, as ``additionalProperties: false`` says);
* ``POST /v2/images/midjourney/action``: ``upsample``/``variation`` (``index`` 1-4) on a grid job,
  ``inpaint``/``outpaint``/``pan`` on an upsample job (a wrong parent type is a 400);
* ``POST /v2/videos/generate`` (``model: "midjourney-video"``, ``midjourneyVideoParams``);
* ``GET /v2/jobs/{id}`` (a UUID, else 400) and ``GET /v2/jobs`` (newest first, ``limit`` 1-100,
  ``status``, ``cursor``).

Every POST answers ``202 {"jobId", "status"}``. An ``Idempotency-Key`` (at most 255 characters)
seen before answers with its first job and its current status, creating nothing, as the vendor
documents. Auth is ``X-API-Key``; errors are ``{"error": text}``. The emulator's knobs act here
too. Mounted under ``/apiframe`` because useapi.net v2 owns ``/v2/jobs`` on the same server: the
connection's host is ``<emulator>/apiframe``. Where Apiframe documents nothing the emulator
chooses, and says so: a failed job's ``error`` is "Provider returned an error: " + Midjourney's text.
"""

from __future__ import annotations

import hmac
import re
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers

from airflow_provider_midjourney.testing import specs
from airflow_provider_midjourney.testing.content import iso
from airflow_provider_midjourney.testing.jobs import ApiError, JobSpec, JobView, failure_text
from airflow_provider_midjourney.testing.middleware import (
    ApiFlavour,
    json_answer,
    register_flavour,
    request_params,
)

if TYPE_CHECKING:
    from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator

MOUNT = "/apiframe"
V2 = f"{MOUNT}/v2"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STATUS = {"created": "QUEUED", "started": "PROCESSING", "progress": "PROCESSING", "completed": "COMPLETED"}
GRID_KINDS = ("generation", "variation", "inpaint", "outpaint", "pan")
CREDITS = {"generation": 16, "upsample": 4, "video": None}
BUTTON = {"upsample": "U{}", "variation": "V{}"}
PAN = {"left": "⬅️", "right": "➡️", "up": "⬆️", "down": "⬇️"}
ZOOM = {2: "Zoom Out 2x", 1.5: "Zoom Out 1.5x"}
GENERATE_KEYS = {"model", "prompt", "midjourneyParams", "webhookUrl", "webhookEvents"}
ACTION_KEYS = {
    "upsample": {"index"},
    "variation": {"index"},
    "inpaint": {"mask", "prompt"},
    "outpaint": {"zoomRatio"},
    "pan": {"direction"},
}


def key_authorized(headers: Headers, token: str) -> bool:
    try:
        return hmac.compare_digest(headers.get("x-api-key", "").strip().encode(), token.encode())
    except (TypeError, UnicodeError):
        return False


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": message}


@dataclass
class ApiframeRecord:
    jobid: str
    kind: str
    model: str
    input: dict[str, Any]
    created: float
    expired: bool = False


@dataclass
class ApiframeRoutes:
    emu: MidjourneyEmulator
    lock: threading.Lock = field(default_factory=threading.Lock)
    jobs: dict[str, ApiframeRecord] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    #: Every Idempotency-Key received, in order (for tests: one per POST).
    keys_seen: list[str | None] = field(default_factory=list)
    #: (answers left, Retry-After seconds): the next POSTs answer 429 (a rate limit).
    rate_limit: tuple[int, str] = (0, "1")

    def clear(self) -> None:
        with self.lock:
            self.jobs.clear()
            self.keys.clear()
            self.keys_seen.clear()
            self.rate_limit = (0, "1")

    # -- creation -------------------------------------------------------------------------------

    def submit(self, request: Request, build: Any) -> Response:
        key = request.headers.get("idempotency-key")
        with self.lock:
            self.keys_seen.append(key)
            left, after = self.rate_limit
            if left > 0:
                self.rate_limit = (left - 1, after)
                return JSONResponse({"error": "Rate limit exceeded"}, status_code=429, headers={"Retry-After": after})
        if key is not None and not 1 <= len(key) <= 255:
            raise ApiError(400, "Idempotency-Key must be 1-255 characters")
        with self.lock:
            first = self.keys.get(key or "")
        if first is not None:  # a replay: the first job, nothing new
            return JSONResponse({"jobId": first, "status": self.view(first)["status"]}, status_code=202)
        kind, model, spec, wire = build(_json_params(request))
        jobid = self.emu.state.create_job(spec)[0].id
        job_id = str(uuid.uuid4())
        with self.lock:
            if key is not None and key in self.keys:  # a concurrent replay won the race
                return JSONResponse({"jobId": self.keys[key], "status": "QUEUED"}, status_code=202)
            self.jobs[job_id] = ApiframeRecord(jobid, kind, model, wire, time.time())
            if key is not None:
                self.keys[key] = job_id
        return JSONResponse({"jobId": job_id, "status": "QUEUED"}, status_code=202)

    def generate(self, body: dict[str, Any]) -> tuple[str, str, JobSpec, dict[str, Any]]:
        _only(body, GENERATE_KEYS)
        if body.get("model") != "midjourney":
            raise ApiError(400, "model: must be 'midjourney' for this emulator")
        prompt = _text(body, "prompt", 2000)
        params = body.get("midjourneyParams")
        if params is not None:
            if not isinstance(params, dict) or set(params) - {"aspect_ratio"}:
                raise ApiError(400, "midjourneyParams: only aspect_ratio is allowed")
            ratio = params.get("aspect_ratio")
            if not isinstance(ratio, str) or not re.fullmatch(r"\d{1,4}:\d{1,4}", ratio):
                raise ApiError(400, "midjourneyParams.aspect_ratio: must look like 16:9")
            prompt = f"{prompt} --ar {ratio}"
        _webhook(body)
        wire = {"prompt": body["prompt"]}
        return "generation", "midjourney", specs.imagine(prompt, request=wire), wire

    def action(self, body: dict[str, Any]) -> tuple[str, str, JobSpec, dict[str, Any]]:
        action = body.get("action")
        if action not in ACTION_KEYS:
            raise ApiError(400, f"action: must be one of {', '.join(ACTION_KEYS)}")
        _only(body, {"parentJobId", "action", "webhookUrl", "webhookEvents", *ACTION_KEYS[action]})
        parent_id = body.get("parentJobId")
        if not isinstance(parent_id, str) or not UUID.fullmatch(parent_id):
            raise ApiError(400, "parentJobId: must be a UUID")
        parent = self.record(parent_id)
        if self.view(parent_id)["status"] != "COMPLETED":
            raise ApiError(400, "parent job must be COMPLETED")
        needs_grid = action in ("upsample", "variation")
        if needs_grid != (parent.kind in GRID_KINDS) or (not needs_grid and parent.kind != "upsample"):
            wanted = "a generation or variation grid" if needs_grid else "an upsample job"
            raise ApiError(400, f"{action} needs {wanted} as parent, got a {parent.kind} job")
        prompt: str | None = None
        mask: str | None = None
        if needs_grid:
            index = body.get("index")
            if isinstance(index, bool) or index not in (1, 2, 3, 4):
                raise ApiError(400, "index: must be 1-4")
            label = BUTTON[action].format(index)
        elif action == "inpaint":
            raw_mask = body.get("mask")
            if not isinstance(raw_mask, str) or not raw_mask or len(raw_mask) > 12_000_000:
                raise ApiError(400, "mask: a base64 PNG is required")
            label, mask = "Vary (Region)", raw_mask.split(",", 1)[-1]
            if body.get("prompt") is not None:
                prompt = _text(body, "prompt", 2000)
        elif action == "outpaint":
            ratio = body.get("zoomRatio")
            if isinstance(ratio, bool) or ratio not in ZOOM:
                raise ApiError(400, "zoomRatio: must be 1.5 or 2")
            label = ZOOM[ratio]
        else:
            direction = body.get("direction")
            if direction not in PAN:
                raise ApiError(400, "direction: must be up, down, left or right")
            label = PAN[direction]
        _webhook(body)
        wire = {k: v for k, v in body.items() if k != "mask"}
        return action, "midjourney", specs.button(parent.jobid, label, prompt=prompt, mask=mask, request=wire), wire

    def video(self, body: dict[str, Any]) -> tuple[str, str, JobSpec, dict[str, Any]]:
        _only(body, {"model", "prompt", "midjourneyVideoParams", "webhookUrl", "webhookEvents"})
        if body.get("model") != "midjourney-video":
            raise ApiError(400, "model: must be 'midjourney-video' for this emulator")
        prompt = _text(body, "prompt", 4000)
        params = body.get("midjourneyVideoParams")
        if not isinstance(params, dict) or set(params) - {"start_image", "motion", "resolution"}:
            raise ApiError(400, "midjourneyVideoParams: start_image is required; motion and resolution optional")
        start = params.get("start_image")
        if not isinstance(start, str) or not re.match(r"https?://\S+\Z", start):
            raise ApiError(400, "midjourneyVideoParams.start_image: must be a URI")
        motion = params.get("motion", "low")
        if motion not in ("low", "high") or params.get("resolution", "sd") not in ("sd", "hd"):
            raise ApiError(400, "midjourneyVideoParams: motion is low|high, resolution sd|hd")
        _webhook(body)
        wire = {"prompt": prompt, **params}
        return (
            "video",
            "midjourney-video",
            specs.imagine(f"{start} {prompt} --video --motion {motion}", request=wire),
            wire,
        )

    # -- reading --------------------------------------------------------------------------------

    def record(self, job_id: str) -> ApiframeRecord:
        with self.lock:
            record = self.jobs.get(job_id)
        if record is None:
            raise ApiError(404, "Job not found")
        return record

    def view(self, job_id: str) -> dict[str, Any]:
        record = self.record(job_id)
        job = self.emu.state.view(record.jobid)
        status = job.status
        done = status == "completed"
        view: dict[str, Any] = {
            "id": job_id,
            "status": STATUS.get(status, "FAILED"),
            "model": record.model,
            "progress": 100 if done else int(job.percent or 0),
            "result": _result(record.kind, job) if done else None,
            "error": None,
            "creditCost": CREDITS.get(record.kind, 16),
            "webhookStatus": None,
            "createdAt": iso(record.created),
            "completedAt": iso(job.updated) if done or status not in STATUS else None,
            "input": record.input,
            "expired": record.expired,
        }
        if status not in STATUS:
            view["error"] = "Provider returned an error: " + failure_text(job.failure, "job failed")
            view["creditCost"] = 0
        return view

    def listing(self, status: str | None, limit: int, cursor: int) -> dict[str, Any]:
        with self.lock:
            ids = list(reversed(self.jobs))
        views = [v for v in (self.view(i) for i in ids) if status is None or v["status"] == status]
        page = views[cursor : cursor + limit]
        more = cursor + limit < len(views)
        return {"jobs": page, "nextCursor": str(cursor + limit) if more else None, "hasMore": more}


def _result(kind: str, job: JobView) -> dict[str, Any]:
    if kind == "video":
        return {"videos": list(job.video_urls)}
    images = list(job.image_urls)
    if kind == "upsample":
        return {"images": images[:1]}
    return {"images": images, "gridUrl": job.primary_url}


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, f"Unrecognized key(s) in object: {', '.join(map(repr, unknown))}")


def _text(body: dict[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ApiError(400, f"{name}: a string of 1-{limit} characters is required")
    return value


def _webhook(body: dict[str, Any]) -> None:
    url, events = body.get("webhookUrl"), body.get("webhookEvents")
    if url is not None and (not isinstance(url, str) or not re.match(r"https?://\S+\Z", url)):
        raise ApiError(400, "webhookUrl: must be a URI")
    if events is not None and (
        not isinstance(events, list) or not events or set(events) - {"progress", "completed", "failed"}
    ):
        raise ApiError(400, "webhookEvents: one or more of progress, completed, failed")


def _json_params(request: Request) -> dict[str, Any]:
    return request_params(request, json_only=True)


_ROUTES: weakref.WeakKeyDictionary[Any, ApiframeRoutes] = weakref.WeakKeyDictionary()


def routes_of(emu: MidjourneyEmulator) -> ApiframeRoutes:
    """The Apiframe dialect's state of ``emu`` (tests: ``keys_seen``, ``rate_limit``, ``expire``)."""
    return _ROUTES[emu]


def engine_job(emu: MidjourneyEmulator, job_id: str) -> str:
    """The engine's job id behind an Apiframe job id (for tests: ``emu.complete_job``)."""
    return _ROUTES[emu].record(job_id).jobid


def expire(emu: MidjourneyEmulator, job_id: str) -> None:
    """Mark a job's files purged (Apiframe's ``expired: true`` after 24 h)."""
    _ROUTES[emu].record(job_id).expired = True


def build_router(emu: MidjourneyEmulator) -> APIRouter:
    routes = _ROUTES[emu] = ApiframeRoutes(emu)
    emu.on_reset.append(routes.clear)
    router = APIRouter()

    def answer(call: Any) -> Response:
        return json_answer(call, error_body)

    builders = {"/images/generate": routes.generate, "/images/midjourney/action": routes.action}
    builders["/videos/generate"] = routes.video
    for path in builders:

        async def post(request: Request, _path: str = path) -> Response:
            return answer(lambda: routes.submit(request, builders[_path]))

        router.add_api_route(V2 + path, post, methods=["POST"])

    @router.get(V2 + "/jobs/{job_id}")
    async def get_job(job_id: str) -> Response:
        if not UUID.fullmatch(job_id):
            return answer(lambda: (_ for _ in ()).throw(ApiError(400, "id: must be a UUID")))
        return answer(lambda: routes.view(job_id))

    @router.get(V2 + "/jobs")
    async def list_jobs(request: Request) -> Response:
        query = request.query_params

        def listing() -> dict[str, Any]:
            status = query.get("status")
            if status is not None and status not in ("QUEUED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"):
                raise ApiError(400, "status: not a job status")
            limit, cursor = query.get("limit", "20"), query.get("cursor", "0")
            if not limit.isdigit() or not 1 <= int(limit) <= 100 or not cursor.isdigit():
                raise ApiError(400, "limit: 1-100; cursor: from an earlier page")
            return routes.listing(status, int(limit), int(cursor))

        return answer(listing)

    return router


def register(app: FastAPI, emu: MidjourneyEmulator) -> None:
    """Serve Apiframe's v2 routes under ``/apiframe`` on ``app``; the emulator's knobs apply there."""
    register_flavour(ApiFlavour(V2 + "/", key_authorized, error_body))
    app.include_router(build_router(emu))
