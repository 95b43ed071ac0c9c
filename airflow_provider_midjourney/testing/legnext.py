"""Legnext's and Youchuan's routes in the emulator, over the one job engine.

Served (shapes from Legnext's docs, its OpenAPI files and SDK test results; Youchuan's from the
Alibaba Cloud Marketplace pages; see ``docs/backends/legnext.md``):

* Legnext, header ``x-api-key``: ``POST /api/v1/{diffusion,upscale,variation,reroll,pan,outpaint,
  inpaint,remix,blend,describe,video-diffusion,extend-video,edit}`` answering the full Job object
  (``status: pending``), ``GET /api/v1/job/{job_id}`` and ``GET /api/account/balance``;
* Youchuan, headers ``x-youchuan-app`` + ``x-youchuan-secret``: the same verbs under ``/v1/tob/``
  (no blend, no describe), ``GET /v1/tob/job/{id}`` answering ``{id, text, urls[], status (int),
  comment, seed}`` and ``GET /v1/tob/costs``.

Each job is a job of the v3 engine, so the knobs (latency, faults, failure words, 402) act here
too. Where the vendors document nothing the emulator chooses, and says so: a prompt holding a
moderation word is refused at submit with 403 "sensitive content" (Legnext's documented moderation
answer) instead of failing later; ``/edit`` always answers the whitelist 403 of the vendor's own
test; /describe's prompts are in ``output.prompts``; Youchuan's status is 0 waiting, 1 running,
2 finished, 3 failed; Youchuan's errors are ``{code, message}``; its submit answers the job.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
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
from airflow_provider_midjourney.testing.specs import is_http_url
from airflow_provider_midjourney.testing.vendor_jobs import VendorJobs

if TYPE_CHECKING:
    from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator

LEGNEXT = "/api/v1"
YOUCHUAN = "/v1/tob"
OPS = ("diffusion", "upscale", "variation", "reroll", "pan", "outpaint", "inpaint", "remix", "video-diffusion")
OPS_LEGNEXT_ONLY = ("blend", "describe")
WHITELIST = (
    "This feature is only available for whitelisted accounts. Please upgrade your plan or contact customer"
    " support to access this feature."
)
SENSITIVE = "Sensitive content detected: the prompt contains a banned word ({word})"
STATUS = {"created": "pending", "started": "staged", "progress": "processing", "completed": "completed"}
YOUCHUAN_STATUS = {"created": 0, "started": 1, "progress": 1, "completed": 2}
GRID_ACTIONS = {"upscale": [0, 1, 2, 3], "variation": [0, 1, 2, 3], "reroll": True}
SINGLE_ACTIONS = {op: [0] for op in ("upscale", "variation", "inpaint", "outpaint", "pan", "remix")} | {"reroll": False}
PAN_LABELS = {0: "⬇️", 1: "➡️", 2: "⬆️", 3: "⬅️"}
ZERO_TIME = "0001-01-01T00:00:00Z"


def legnext_error(status: int, message: str) -> dict[str, Any]:
    """401 in the quickstart's flat shape; every other error as a failed Job (the SDK tests' shape)."""
    if status == 402:
        message = "Insufficient credits: please top up your account"
    if status == 401:
        return {"code": 401, "message": message or "Failed to verify api key", "raw_message": "", "detail": None}
    error = {"code": status, "raw_message": "", "message": message, "detail": None}
    return {"job_id": "", "model": "", "task_type": "", "status": "failed", "output": None, "error": error}


def youchuan_error(status: int, message: str) -> dict[str, Any]:
    return {"code": status, "message": "insufficient balance" if status == 402 else message}


def legnext_authorized(headers: Headers, token: str) -> bool:
    return _same(headers.get("x-api-key", ""), token)


def youchuan_authorized(headers: Headers, token: str) -> bool:
    return bool(headers.get("x-youchuan-app", "").strip()) and _same(headers.get("x-youchuan-secret", ""), token)


def _same(given: str, token: str) -> bool:
    import hmac

    try:
        return hmac.compare_digest(given.strip().encode(), token.encode())
    except (TypeError, UnicodeError):
        return False


@dataclass
class Record:
    engine_id: str
    op: str
    prompt: str
    callback: str = ""
    kind: str = "grid"  # grid | single | video | describe
    extra: dict[str, Any] = field(default_factory=dict)


def _echo(body: dict[str, Any]) -> dict[str, Any]:
    """The request as the job's echo, without its images."""
    return {k: v for k, v in body.items() if k not in ("base64Array", "mask")}


def _int(body: dict[str, Any], name: str, low: int, high: int, *, required: bool = True) -> int | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, f"{name} must be an integer from {low} to {high}")
    return value


def _scale(body: dict[str, Any], low: float, high: float) -> float:
    value = body.get("scale")
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ApiError(400, f"scale is required: a number from {low} to {high}")
    return float(value)


class LegnextRoutes:
    """The handlers, shared by both prefixes; one instance per emulator."""

    def __init__(self, emu: MidjourneyEmulator) -> None:
        self.emu = emu
        self.records: VendorJobs[Record] = VendorJobs("job {id} not found")

    # -- creating jobs -------------------------------------------------------------------------
    def submit(self, op: str, body: dict[str, Any], youchuan: bool) -> dict[str, Any]:
        callback = body.get("callback") or ""
        if not isinstance(callback, str) or (callback and not is_http_url(callback)):
            raise ApiError(400, "callback must be an http(s) URL")
        if op == "edit":
            raise ApiError(403, WHITELIST)
        handler: Callable[[dict[str, Any]], Record] = getattr(self, "_" + op.replace("-", "_"))
        record = handler(body)
        record.callback = callback
        job_id = self.records.add(record)
        return self.view(job_id, youchuan)

    def _check_words(self, text: str) -> None:
        lowered = text.lower()
        word = next((w for w in sorted(self.emu.moderation_words) if w and w.lower() in lowered), None)
        if word:
            raise ApiError(403, SENSITIVE.format(word=word))

    def _create(self, spec: JobSpec, record: Record) -> Record:
        record.engine_id = self.emu.state.create_job(spec)[0].id
        return record

    def _diffusion(self, body: dict[str, Any]) -> Record:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 8192:
            raise ApiError(400, "text is required (1-8192 characters)")
        self._check_words(text)
        return self._create(specs.imagine(text, request=_echo(body)), Record("", "diffusion", text))

    def _parent(self, body: dict[str, Any]) -> tuple[str, Record]:
        job_id = body.get("jobId")
        if not isinstance(job_id, str) or not job_id:
            raise ApiError(400, "jobId is required")
        return job_id, self.records.get(job_id)

    def _button(
        self, op: str, body: dict[str, Any], label_for: Callable[[Record, int], str], mask: str | None = None
    ) -> Record:
        _job_id, parent = self._parent(body)
        image_no = _int(body, "imageNo", 0, 3) if op != "reroll" else 0
        assert image_no is not None
        remix = body.get("remixPrompt")
        if remix is not None and (not isinstance(remix, str) or not remix.strip()):
            raise ApiError(400, "remixPrompt must be non-empty text")
        if remix:
            self._check_words(remix)
        if parent.kind == "single" and image_no != 0:
            raise ApiError(400, f"imageNo {image_no} is not available: the job has one image")
        label = label_for(parent, image_no)
        spec = specs.button(parent.engine_id, label, prompt=remix or None, mask=mask, request=_echo(body))
        single = op in ("upscale",)
        return self._create(spec, Record("", op, remix or parent.prompt, kind="single" if single else "grid"))

    def _upscale(self, body: dict[str, Any]) -> Record:
        kind = _int(body, "type", 0, 1)
        return self._button(
            "upscale",
            body,
            lambda p, n: f"U{n + 1}" if p.kind == "grid" else ("Upscale (Subtle)", "Upscale (Creative)")[kind or 0],
        )

    def _variation(self, body: dict[str, Any]) -> Record:
        kind = _int(body, "type", 0, 1)
        return self._button(
            "variation",
            body,
            lambda p, n: f"V{n + 1}" if p.kind == "grid" else ("Vary (Subtle)", "Vary (Strong)")[kind or 0],
        )

    def _reroll(self, body: dict[str, Any]) -> Record:
        return self._button("reroll", body, lambda p, n: "🔄")

    def _pan(self, body: dict[str, Any]) -> Record:
        direction = body.get("direction")
        if isinstance(direction, bool) or direction not in PAN_LABELS:
            raise ApiError(400, "direction must be an integer: 0 = down, 1 = right, 2 = up, 3 = left")
        _scale(body, 1.1, 3.0)
        return self._button("pan", body, lambda p, n: PAN_LABELS[int(direction)])

    def _outpaint(self, body: dict[str, Any]) -> Record:
        scale = _scale(body, 1.1, 2.0)
        return self._button("outpaint", body, lambda p, n: "Zoom Out 2x" if scale >= 1.75 else "Zoom Out 1.5x")

    def _inpaint(self, body: dict[str, Any]) -> Record:
        mask = body.get("mask")
        areas = mask.get("areas") if isinstance(mask, dict) else None
        url = mask.get("url") if isinstance(mask, dict) else None
        if not (isinstance(areas, list) and areas) and not (isinstance(url, str) and is_http_url(url)):
            raise ApiError(400, "mask must be {areas: [...]} or {url: <mask image URL>}")
        return self._button("inpaint", body, lambda p, n: "Vary (Region)", mask="legnext-mask")

    def _remix(self, body: dict[str, Any]) -> Record:
        mode = _int(body, "mode", 0, 1)
        if not isinstance(body.get("remixPrompt"), str) or not body["remixPrompt"].strip():
            raise ApiError(400, "remixPrompt is required")
        return self._button("remix", body, lambda p, n: ("Vary (Strong)", "Vary (Subtle)")[mode or 0])

    def _blend(self, body: dict[str, Any]) -> Record:
        # Both shapes in circulation: the OpenAPI files' imgUrls + aspect_ratio, the docs' base64Array + dimension.
        urls = body.get("imgUrls", body.get("base64Array"))
        if not isinstance(urls, list) or not 2 <= len(urls) <= 5 or not all(isinstance(u, str) and u for u in urls):
            raise ApiError(400, "imgUrls must be a list of 2 to 5 image URLs")
        if any(u.startswith("http") and not is_http_url(u) for u in urls):
            raise ApiError(400, "imgUrls must be a list of 2 to 5 image URLs")
        ratio = body.get("aspect_ratio") or {"PORTRAIT": "2:3", "LANDSCAPE": "3:2"}.get(
            str(body.get("dimension")), "1:1"
        )
        dimensions = {"2:3": "Portrait", "1:1": "Square", "3:2": "Landscape"}.get(str(ratio))
        if dimensions is None:
            raise ApiError(400, "aspect_ratio must be 2:3, 1:1 or 3:2")
        sources = urls if all(u.startswith("http") for u in urls) else [f"blob_{n}" for n in range(len(urls))]
        spec = specs.blend(sources, dimensions, request=_echo(body))
        return self._create(spec, Record("", "blend", " ".join(urls)))

    def _describe(self, body: dict[str, Any]) -> Record:
        url = body.get("imgUrl")
        if not isinstance(url, str) or not is_http_url(url):
            raise ApiError(400, "imgUrl must be an image URL")
        return self._create(specs.describe(url, request=_echo(body)), Record("", "describe", url, kind="describe"))

    def _video_diffusion(self, body: dict[str, Any]) -> Record:
        _int(body, "videoType", 0, 1, required=False)
        prompt = body.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise ApiError(400, "prompt must be text")
        if body.get("jobId") is not None:
            _job_id, parent = self._parent(body)
            image_no = _int(body, "imageNo", 0, 3)
            assert image_no is not None
            urls = self._output(parent, self.emu.state.view(parent.engine_id)).get("image_urls") or []
            if parent.kind == "video" or image_no >= len(urls):
                raise ApiError(400, f"imageNo {image_no}: the job has no such image")
            text = f"{urls[image_no]} {prompt or ''}".strip()
        elif isinstance(prompt, str) and prompt.split(" ", 1)[0].startswith(("http://", "https://")):
            text = prompt
        else:
            raise ApiError(400, "give jobId + imageNo, or a prompt starting with the image URL")
        self._check_words(text)
        spec = specs.imagine(f"{text} --video", request=_echo(body))
        return self._create(spec, Record("", "video-diffusion", text, kind="video"))

    def _extend_video(self, body: dict[str, Any]) -> Record:
        _job_id, parent = self._parent(body)
        _int(body, "videoNo", 0, 3)
        if parent.kind != "video":
            raise ApiError(400, "jobId must be a video job")
        extensions = parent.extra.get("extensions", 0) + 1
        if extensions > 4:
            raise ApiError(400, "a video can be extended at most 4 times")
        prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
        text = f"{parent.prompt} {prompt}".strip()
        self._check_words(text)
        record = Record("", "extend-video", text, kind="video", extra={"extensions": extensions})
        return self._create(specs.imagine(f"{text} --video", request=_echo(body)), record)

    # -- reading jobs --------------------------------------------------------------------------
    def _output(self, record: Record, job: JobView) -> dict[str, Any]:
        if job.status != "completed":
            return {"image_url": "", "image_urls": None, "seed": ""}
        if record.kind == "describe":
            return {"image_url": "", "image_urls": None, "seed": "", "prompts": [p for p in job.describe_prompts if p]}
        seed = str(int(hashlib.sha256(job.id.encode()).hexdigest()[:8], 16))
        if record.kind == "video":
            return {"video_urls": list(job.video_urls), "seed": seed}
        images = list(job.image_urls)
        if record.kind == "single":
            return {
                "image_url": images[0] if images else "",
                "image_urls": None,
                "seed": seed,
                "available_actions": SINGLE_ACTIONS,
            }
        grid = job.primary_url or ""
        return {"image_url": grid, "image_urls": images, "seed": seed, "available_actions": GRID_ACTIONS}

    def view(self, job_id: str, youchuan: bool) -> dict[str, Any]:
        record = self.records.get(job_id)
        job = self.emu.state.view(record.engine_id)
        status = job.status
        output = self._output(record, job)
        failed = status not in STATUS
        message = failure_text(job.failure) if failed else ""
        if youchuan:
            urls = (
                output.get("video_urls")
                or output.get("image_urls")
                or ([output["image_url"]] if output.get("image_url") else [])
            )
            return {
                "id": job_id,
                "text": record.prompt,
                "urls": urls,
                "status": YOUCHUAN_STATUS.get(status, 3),
                "comment": message or ("" if status == "completed" else "执行中"),
                "cost": {"type": "point", "value": 80},
                "audits": [],
                "seed": output.get("seed", ""),
            }
        done = status == "completed" or failed
        return {
            "job_id": job_id,
            "model": "midjourney",
            "task_type": record.op,
            "status": STATUS.get(status, "failed"),
            "config": {"service_mode": "public", "webhook_config": {"endpoint": record.callback, "secret": ""}},
            "input": None,
            "output": output,
            "meta": {
                "created_at": iso(job.created),
                "started_at": iso(job.created) if status != "created" else ZERO_TIME,
                "ended_at": iso(job.updated) if done else ZERO_TIME,
                "usage": {"type": "point", "frozen": 80, "consume": 80 if status == "completed" else 0},
            },
            "detail": None,
            "logs": [],
            "error": {
                "code": (job.failure.code if job.failure else 500) if failed else 0,
                "raw_message": "",
                "message": message,
                "detail": None,
            },
        }

    def balance(self) -> dict[str, Any]:
        data = {
            "account_id": 1,
            "balance_usd": 72.048,
            "available_credits": 71000,
            "available_points": 1048,
            "alert_threshold": 10,
            "low_balance_alert": False,
            "updated_at": iso(0),
        }
        return {"code": 200, "data": data, "message": "success"}


_ROUTES: weakref.WeakKeyDictionary[Any, LegnextRoutes] = weakref.WeakKeyDictionary()


def job_for(emu: MidjourneyEmulator, job_id: str) -> str:
    """The v3 engine's job id behind a Legnext/Youchuan job id (for tests: ``emu.complete_job``)."""
    return _ROUTES[emu].records.get(job_id).engine_id


def build_router(emu: MidjourneyEmulator) -> APIRouter:
    routes = _ROUTES[emu] = LegnextRoutes(emu)
    router = APIRouter()

    def answer(call: Callable[[], dict[str, Any]], youchuan: bool) -> Response:
        return json_answer(call, youchuan_error if youchuan else legnext_error)

    for prefix, youchuan, ops in (
        (LEGNEXT, False, (*OPS, *OPS_LEGNEXT_ONLY, "extend-video", "edit")),
        (YOUCHUAN, True, (*OPS, "extend-video", "edit")),
    ):
        for op in ops:

            async def post(request: Request, _op: str = op, _y: bool = youchuan) -> Response:
                return answer(lambda: routes.submit(_op, request_params(request), _y), _y)

            router.add_api_route(f"{prefix}/{op}", post, methods=["POST"])

        async def job(job_id: str, _y: bool = youchuan) -> Response:
            return answer(lambda: routes.view(job_id, _y), _y)

        router.add_api_route(f"{prefix}/job/{{job_id}}", job, methods=["GET"])

    @router.get("/api/account/balance")
    async def balance() -> Response:
        return answer(routes.balance, False)

    @router.get(f"{YOUCHUAN}/costs")
    async def costs() -> Response:
        return answer(lambda: {"total": 0, "items": []}, True)

    return router


def register(app: FastAPI, emu: MidjourneyEmulator) -> None:
    """Serve both APIs' routes; the emulator's knobs and token apply under their prefixes."""
    for op in (*OPS, *OPS_LEGNEXT_ONLY, "extend-video", "edit", "job/"):
        register_flavour(ApiFlavour(f"{LEGNEXT}/{op}", legnext_authorized, legnext_error))
    register_flavour(ApiFlavour("/api/account/", legnext_authorized, legnext_error))
    register_flavour(ApiFlavour(f"{YOUCHUAN}/", youchuan_authorized, youchuan_error))
    app.include_router(build_router(emu))
