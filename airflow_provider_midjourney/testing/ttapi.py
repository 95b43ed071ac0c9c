"""TTAPI's routes in the emulator, over the one job engine.

Served (shapes from TTAPI's pages, see ``docs/backends/ttapi.md``), all under ``/midjourney/`` and
authenticated by the ``TT-API-KEY`` header:

* ``POST /midjourney/v1/{imagine,action,seed,blend,describe,inpaint}`` and
  ``POST /midjourney/video/{submit,extend}``: ``{"status": "SUCCESS", "message", "data": {"job_id"}}``;
* ``GET /midjourney/v1/fetch?jobId=``: ``{status, message, jobId, data}`` with the job's state in
  ``status`` (``PENDING_QUEUE``, ``ON_QUEUE``, ``SUCCESS``, ``FAILED``);
* ``GET /midjourney/v1/fetch-list?page=&limit=&status=&order=``: snake_case items, integer status;
* ``GET /midjourney/v1/info``: the account (email, balance, max_queue).

Errors answer ``{"status": "FAILED", "message", "data": null}`` with TTAPI's codes: 400 bad
parameters, 401 key, 402 ``insufficient quota``, 404 unknown job, 429 rate, 499 queue exhausted
(the engine's busy channel). Where TTAPI documents nothing the emulator chooses, and says so: a
moderated job is ``FAILED`` with ``message`` "prompt violation"; ``fetch-list``'s integers are 0-3
in the order of the string states; a video job's links are in ``data.videos``; describe's prompts
are ``data.prompt``, one per line.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import Headers

from airflow_provider_midjourney.testing import specs
from airflow_provider_midjourney.testing.content import iso
from airflow_provider_midjourney.testing.jobs import SUBSCRIPTION_EXPIRED, ApiError, JobSpec, JobView, failure_text
from airflow_provider_midjourney.testing.middleware import (
    ApiFlavour,
    json_answer,
    register_flavour,
    request_params,
)
from airflow_provider_midjourney.testing.specs import is_blank, is_http_url
from airflow_provider_midjourney.testing.vendor_jobs import VendorJobs

if TYPE_CHECKING:
    from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator

PREFIX = "/midjourney/"
V1 = "/midjourney/v1"
MODES = ("fast", "relax", "turbo")
STATES = {"created": "PENDING_QUEUE", "started": "ON_QUEUE", "progress": "ON_QUEUE", "completed": "SUCCESS"}
LIST_CODES = {"PENDING_QUEUE": 0, "ON_QUEUE": 1, "SUCCESS": 2, "FAILED": 3}
# The engine's button labels and TTAPI's action names for them (the pages name U/V/reroll; the
# rest follows the third-party list the hook documents).
ACTION_OF = {
    **{f"U{n}": f"upsample{n}" for n in range(1, 5)},
    **{f"V{n}": f"variation{n}" for n in range(1, 5)},
    "🔄": "reroll",
    "Vary (Strong)": "high_variation",
    "Vary (Subtle)": "low_variation",
    "Zoom Out 2x": "zoom_out_2",
    "Zoom Out 1.5x": "zoom_out_1_5",
    "⬅️": "pan_left",
    "➡️": "pan_right",
    "⬆️": "pan_up",
    "⬇️": "pan_down",
    "Upscale (Subtle)": "upscale_subtle",
    "Upscale (Creative)": "upscale_creative",
    "Redo Upscale (Subtle)": "redo_upscale_subtle",
    "Redo Upscale (Creative)": "redo_upscale_creative",
}
LABEL_OF = {action: label for label, action in ACTION_OF.items()}
QUOTA = {"imagine": 2, "action": 2, "seed": 0, "blend": 2, "describe": 1, "inpaint": 2, "video": 8, "extend": 8}


def error_body(status: int, message: str) -> dict[str, Any]:
    if status == 402 and message == SUBSCRIPTION_EXPIRED:
        message = "insufficient quota"
    return {"status": "FAILED", "message": message, "data": None}


def authorized(headers: Headers, token: str) -> bool:
    import hmac

    value = headers.get("tt-api-key", "")
    try:
        return bool(value) and hmac.compare_digest(value.strip().encode(), token.encode())
    except (TypeError, UnicodeError):
        return False


@dataclass
class TtapiJob:
    engine_id: str
    kind: str  # imagine, action, seed, blend, describe, inpaint, video, extend
    action: str
    prompt: str
    mode: str
    hook_url: str | None
    batch: int = 4
    parent: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(400, f"{name} is required")
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    return value


def _url(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = _text(body, name, required=required)
    if value is not None and not is_http_url(value):
        raise ApiError(400, f"{name} must be a publicly accessible http(s) URL")
    return value


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = _text(body, name) or default
    if value not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}")
    return value


def _number(body: dict[str, Any], name: str, allowed: range | tuple[int, ...], default: int | None) -> int | None:
    value = body.get(name)
    if value is None or value == "":
        return default
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not text.isdigit() or int(text) not in allowed:
        shown = f"{allowed.start}-{allowed.stop - 1}" if isinstance(allowed, range) else ", ".join(map(str, allowed))
        raise ApiError(400, f"{name} must be one of {shown}")
    return int(text)


class TtapiRoutes:
    """The handlers; one instance per emulator."""

    def __init__(self, emu: MidjourneyEmulator) -> None:
        self.emu = emu
        self.jobs: VendorJobs[TtapiJob] = VendorJobs("job not found", one_id_per_job=False)

    def _create(self, spec: JobSpec, job: TtapiJob) -> dict[str, Any]:
        try:
            engine_id = self.emu.state.create_job(spec)[0].id
        except ApiError as exc:
            if exc.status == 429:  # the engine's busy channel: TTAPI's "queue exhausted"
                raise ApiError(499, f"queue exhausted: {exc.message}") from None
            raise
        job.engine_id = engine_id
        return {"status": "SUCCESS", "message": "success", "data": {"job_id": self.jobs.add(job)}}

    def _common(self, body: dict[str, Any]) -> tuple[str | None, str]:
        hook_url = _url(body, "hookUrl")
        _number(body, "timeout", range(300, 1201), None)
        return hook_url, _choice(body, "mode", MODES, "fast")

    def _finished_parent(self, body: dict[str, Any]) -> tuple[str, TtapiJob, dict[str, Any]]:
        parent_id = _text(body, "jobId", required=True)
        assert parent_id is not None
        parent = self.jobs.get(parent_id)
        view = self.fetch(parent_id)
        if view["status"] != "SUCCESS":
            raise ApiError(400, f"job {parent_id} is {view['status']}; it must be SUCCESS first")
        return parent_id, parent, view

    def imagine(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = _text(body, "prompt", required=True)
        assert prompt is not None
        if is_blank(prompt):
            raise ApiError(400, "prompt is required")
        hook_url, mode = self._common(body)
        spec = specs.imagine(prompt, request=_echo(body))
        return self._create(spec, TtapiJob("", "imagine", "imagine", prompt, mode, hook_url))

    def action(self, body: dict[str, Any]) -> dict[str, Any]:
        action = _text(body, "action", required=True)
        hook_url, _ = self._common(body)
        parent_id, parent, view = self._finished_parent(body)
        offered = view["data"].get("components") or []
        if action not in offered:
            raise ApiError(
                400, f"action {action} is not available for job {parent_id}; available: {', '.join(offered)}"
            )
        assert action is not None
        job = TtapiJob("", "action", action, parent.prompt, parent.mode, hook_url, parent=parent_id)
        return self._create(specs.button(parent.engine_id, LABEL_OF[action], request=_echo(body)), job)

    def inpaint(self, body: dict[str, Any]) -> dict[str, Any]:
        mask = _text(body, "mask", required=True)
        assert mask is not None
        if mask.startswith("data:"):
            raise ApiError(400, "mask must be base64 without the data: prefix")
        prompt = _text(body, "prompt")
        hook_url, _ = self._common(body)
        parent_id, parent, _view = self._finished_parent(body)
        spec = specs.button(parent.engine_id, "Vary (Region)", prompt=prompt or None, mask=mask, request=_echo(body))
        job = TtapiJob("", "inpaint", "inpaint", prompt or parent.prompt, parent.mode, hook_url, parent=parent_id)
        return self._create(spec, job)

    def seed(self, body: dict[str, Any]) -> dict[str, Any]:
        hook_url, _ = self._common(body)
        parent_id, parent, _view = self._finished_parent(body)
        job = TtapiJob("", "seed", "seed", parent.prompt, parent.mode, hook_url, parent=parent_id)
        return self._create(specs.seed(parent.engine_id, request=_echo(body)), job)

    def blend(self, body: dict[str, Any]) -> dict[str, Any]:
        images = body.get("imgBase64Array")
        if not isinstance(images, list) or not 2 <= len(images) <= 5:
            raise ApiError(400, "imgBase64Array must hold 2 to 5 images")
        if not all(isinstance(i, str) and re.match(r"data:image/[a-z+.-]+;base64,", i) for i in images):
            raise ApiError(400, "imgBase64Array items must be data:image/...;base64, strings")
        dimensions = _choice(body, "dimensions", ("PORTRAIT", "SQUARE", "LANDSCAPE"), "SQUARE")
        if any(len(image) > MAX_IMAGE for image in images):
            raise ApiError(400, "imgBase64Array items must be at most 10 MB")
        hook_url, mode = self._common(body)
        blobs = [f"blob_{n}" for n in range(len(images))]
        spec = specs.blend(blobs, dimensions.capitalize(), request=_echo(body))
        return self._create(spec, TtapiJob("", "blend", "blend", "", mode, hook_url))

    def describe(self, body: dict[str, Any]) -> dict[str, Any]:
        data, url = _text(body, "base64"), _url(body, "url")
        if data is None and url is None:
            raise ApiError(400, "base64 or url is required")
        if data is not None and not re.match(r"data:image/[a-z+.-]+;base64,", data):
            raise ApiError(400, "base64 must be a data:image/...;base64, string")
        if data is not None and len(data) > MAX_IMAGE:
            raise ApiError(400, "base64 must be at most 10 MB")
        hook_url, _ = self._common(body)
        source = url if url is not None else f"blob:{len(str(data).encode())}"
        spec = specs.describe(source, url=url is not None, request=_echo(body))
        return self._create(spec, TtapiJob("", "describe", "describe", "", "fast", hook_url))

    def video(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = _text(body, "prompt", required=True)
        image = _url(body, "imageUrl", required=True)
        _url(body, "endingUrl")
        for name in ("mode", "model"):
            _choice(body, name, ("fast",), "fast")
        _choice(body, "manual", ("low", "high"), "low")
        _choice(body, "resolution", ("sd", "hd"), "sd")
        batch = _number(body, "bs", (1, 2, 4), 4) or 4
        hook_url = _url(body, "hookUrl")
        job = TtapiJob("", "video", "video", prompt or "", "fast", hook_url, batch=batch, extra={"imageUrl": image})
        return self._create(specs.imagine(f"{image} {prompt} --video", request=_echo(body)), job)

    def extend(self, body: dict[str, Any]) -> dict[str, Any]:
        index = _number(body, "index", range(0, 4), None)
        if index is None:
            raise ApiError(400, "index is required (0-3)")
        _choice(body, "manual", ("low", "high"), "low")
        _choice(body, "animateMode", ("auto", "manual"), "auto")
        hook_url = _url(body, "hookUrl")
        parent_id, parent, view = self._finished_parent(body)
        if parent.kind not in ("video", "extend") or index >= len(view["data"].get("videos") or []):
            raise ApiError(400, f"job {parent_id} has no video {index} to extend")
        prompt = _text(body, "prompt") or parent.prompt
        job = TtapiJob("", "extend", "extend", prompt, "fast", hook_url, batch=parent.batch, parent=parent_id)
        return self._create(specs.imagine(f"{prompt} --video", request=_echo(body)), job)

    # -- reads ------------------------------------------------------------------------------------

    def fetch(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        record = self.emu.state.view(job.engine_id)
        state = STATES.get(record.status, "FAILED")
        data: dict[str, Any] = {
            "action": job.action,
            "jobId": job_id,
            "progress": "100" if state == "SUCCESS" else str(int(record.percent or 0)),
            "prompt": job.prompt,
            "quota": str(QUOTA[job.kind]),
            "mode": job.mode,
            "hookUrl": job.hook_url,
            "components": [],
            "seed": None,
            "submitTime": iso(record.created),
            "finishTime": iso(record.updated) if state in ("SUCCESS", "FAILED") else None,
        }
        message = ""
        if state == "SUCCESS":
            data.update(self._result(job, record))
        elif state == "FAILED":
            message = "prompt violation" if record.status == "moderated" else failure_text(record.failure, FAILED)
        return {"status": state, "message": message, "jobId": job_id, "data": data}

    def _result(self, job: TtapiJob, record: JobView) -> dict[str, Any]:
        picture = record.primary_url
        if job.kind in ("video", "extend"):
            return {"videos": list(record.video_urls)[: job.batch], "cdnImage": None}
        if job.kind == "describe":
            return {"prompt": "\n".join(record.describe_prompts)}
        if job.kind == "seed":
            return {"seed": None if record.seed is None else str(record.seed)}
        result: dict[str, Any] = {
            "discordImage": picture,
            "cdnImage": picture,
            "width": 1024,
            "height": 1024,
            "components": [ACTION_OF[b] for b in record.buttons if b in ACTION_OF],
        }
        cells = list(record.image_urls)
        if len(cells) == 4:  # a grid: TTAPI's crops of its quarters
            result["images"] = cells
        return result

    def fetch_list(self, page: int, limit: int, status: str, order: str) -> dict[str, Any]:
        items = []
        for job_id, job in self.jobs.oldest_first():
            try:
                view = self.fetch(job_id)
            except ApiError:
                continue
            if view["status"] != status:
                continue
            data = view["data"]
            items.append(
                {
                    "job_id": job_id,
                    "model": job.mode,
                    "action": job.action,
                    "quota": QUOTA[job.kind],
                    "status": LIST_CODES[view["status"]],
                    "progress": data["progress"],
                    "prompt": job.prompt,
                    "discord_image": data.get("discordImage"),
                    "cdn_image": data.get("cdnImage"),
                }
            )
        if order == "desc":
            items.reverse()
        return {"status": "SUCCESS", "message": "success", "data": items[(page - 1) * limit : page * limit]}

    def info(self) -> dict[str, Any]:
        data = {"email": "emulator@example.com", "balance": 1000, "freeze_balance": 0, "max_queue": 10}
        return {"status": "SUCCESS", "message": "success", "data": data}


FAILED = "Midjourney job failed"
MAX_IMAGE = 10 * 1024 * 1024  # characters of one base64 image


def _echo(body: dict[str, Any]) -> dict[str, Any]:
    """The request as the job's echo, without its images."""
    return {k: v for k, v in body.items() if k not in ("imgBase64Array", "base64", "mask")}


_ROUTES: weakref.WeakKeyDictionary[Any, TtapiRoutes] = weakref.WeakKeyDictionary()


def engine_job(emu: MidjourneyEmulator, job_id: str) -> str:
    """The engine's job id behind a TTAPI ``jobId`` (for tests: ``emu.complete_job``)."""
    return _ROUTES[emu].jobs.get(job_id).engine_id


def build_router(emu: MidjourneyEmulator) -> APIRouter:
    routes = _ROUTES[emu] = TtapiRoutes(emu)
    router = APIRouter()

    def answer(call: Callable[[], dict[str, Any]]) -> Response:
        return json_answer(call, error_body)

    posts = {
        f"{V1}/imagine": routes.imagine,
        f"{V1}/action": routes.action,
        f"{V1}/seed": routes.seed,
        f"{V1}/blend": routes.blend,
        f"{V1}/describe": routes.describe,
        f"{V1}/inpaint": routes.inpaint,
        "/midjourney/video/submit": routes.video,
        "/midjourney/video/extend": routes.extend,
    }

    def poster(handler: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Request], Any]:
        async def post(request: Request) -> Response:
            return answer(lambda: handler(request_params(request)))

        return post

    for path, handler in posts.items():
        router.add_api_route(path, poster(handler), methods=["POST"])

    @router.get(f"{V1}/fetch")
    async def fetch(request: Request) -> Response:
        return answer(lambda: routes.fetch(_text(dict(request.query_params), "jobId", required=True) or ""))

    @router.get(f"{V1}/fetch-list")
    async def fetch_list(request: Request) -> Response:
        def listed() -> dict[str, Any]:
            query = dict(request.query_params)
            page = _number(query, "page", range(1, 10_001), 1) or 1
            limit = _number(query, "limit", range(1, 101), 10) or 10
            status = _choice(query, "status", tuple(LIST_CODES), "SUCCESS")
            return routes.fetch_list(page, limit, status, _choice(query, "order", ("asc", "desc"), "desc"))

        return answer(listed)

    @router.get(f"{V1}/info")
    async def info() -> Response:
        return answer(routes.info)

    return router


def register(app: FastAPI, emu: MidjourneyEmulator) -> None:
    """Serve TTAPI's routes on ``app``; the emulator's knobs apply under ``/midjourney/``."""
    register_flavour(ApiFlavour(PREFIX, authorized, error_body))
    app.include_router(build_router(emu))
