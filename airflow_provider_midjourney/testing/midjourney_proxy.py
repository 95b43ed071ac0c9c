"""Emulated midjourney-proxy: novicezk's original routes by default, trueai-org's superset on a knob.

Each task is a job of the one engine (:class:`~.state.EmulatorState`), so timings, moderation,
failure and never-finish words, channel limits and the middleware's fault knobs apply unchanged.
Shapes and texts follow the servers' sources and ``docs/api.md``:

* ``POST /mj/submit/{imagine,change,describe,blend}`` answer a ``SubmitResultVO``
  (``{"code": 1, "description": "成功", "result": "<task id>", "properties": {...}}``); 21 when the
  task exists (an upscale pressed twice), 23 when the channel is busy (queue full), 24 when the
  prompt holds one of :attr:`MidjourneyProxyRoutes.banned_words`, 4 for validation, 3 for an
  unknown parent; :meth:`MidjourneyProxyRoutes.force_code_next` forces 21/22/23/24;
* ``GET /mj/task/{id}/fetch`` (an unknown id: an empty 200 on the original, 204 on the superset),
  ``GET /mj/task/list``, ``GET /mj/task/queue`` (original), ``POST /mj/task/list-by-condition``;
* statuses NOT_START → SUBMITTED → IN_PROGRESS ("38%") → SUCCESS / FAILURE; a moderated engine
  job is a FAILURE whose ``failReason`` is the refusal (English on the original, "可能包含敏感词"
  on the superset; :attr:`MidjourneyProxyRoutes.moderation_reason` overrides), a cancelled one
  "取消任务";
* the superset (``superset = True``, or ``MIDJOURNEY_EMULATOR_PROXY_FLAVOUR=superset`` when the
  emulator starts) adds ``buttons[]`` with ``customId``, ``imageUrls[]``, ``seed``,
  ``POST /submit/action``, ``POST /task/{id}/cancel``, ``GET /task/{id}/image-seed`` and the
  ``/mj-fast/mj``, ``/mj-relax/mj``, ``/mj-turbo/mj`` prefixes.

The optional secret is the emulator's ``token``, checked in the ``mj-api-secret`` header
(``token=None``: a server without ``mj.api-secret``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import random
import re
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers

from airflow_provider_midjourney.testing import specs
from airflow_provider_midjourney.testing.content import components, describe_text
from airflow_provider_midjourney.testing.jobs import ApiError, EngineError, JobSpec, JobView
from airflow_provider_midjourney.testing.middleware import BODY_SCOPE_KEY, ApiFlavour, register_flavour
from airflow_provider_midjourney.testing.models import ParsedBody

if TYPE_CHECKING:
    from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator

PREFIXES = ("/mj", "/mj-fast/mj", "/mj-relax/mj", "/mj-turbo/mj")
SUCCESS_TEXT = "成功"
EXISTS_TEXT = "任务已存在"
QUEUED_TEXT = "排队中，前面还有{n}个任务"
QUEUE_FULL_TEXT = "队列已满，请稍后尝试"
BANNED_TEXT = "可能包含敏感词"
NOT_FOUND_TEXT = "关联任务不存在或已失效"
BAD_STATE_TEXT = "关联任务状态错误"
CANCELLED_TEXT = "取消任务"
TIMED_OUT_TEXT = "任务超时"
SUPERSET_MODERATION = "可能包含敏感词"
BLEND_AR = {"PORTRAIT": "--ar 2:3", "SQUARE": "--ar 1:1", "LANDSCAPE": "--ar 3:2"}
CHANGE_TARGETS = ("IMAGINE", "VARIATION", "REROLL", "BLEND")
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.+)$", re.DOTALL)
_STATUS = {"created": "NOT_START", "started": "SUBMITTED", "progress": "IN_PROGRESS", "completed": "SUCCESS"}
_ROUTES: weakref.WeakKeyDictionary[MidjourneyEmulator, MidjourneyProxyRoutes] = weakref.WeakKeyDictionary()
_ROUTES_LOCK = threading.Lock()


def secret_authorized(headers: Headers, secret: str) -> bool:
    """``mj-api-secret`` equals the configured secret (header names are case-insensitive)."""
    try:
        return hmac.compare_digest(headers.get("mj-api-secret", "").encode(), secret.encode())
    except (TypeError, UnicodeError):
        return False


def error_body(status: int, message: str) -> dict[str, Any]:
    """Spring Boot's / ASP.NET's plain error shape (no ``code``: that is for submit results)."""
    return {"status": status, "error": message}


@dataclass
class ProxyTask:
    id: str
    jobid: str
    action: str
    prompt: str
    description: str
    state: str | None
    submit_time: int
    mode: str | None
    seed: str | None = None


def _result(code: int, description: str, result: Any = None, **properties: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "description": description, "result": result, "properties": properties}
    return body


def _decode_data_url(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    match = _DATA_URL.match(value.strip())
    if match is None:
        return None
    try:
        return base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return None


def _action_for_custom_id(custom_id: str, parent_action: str) -> str:
    """The child task's action, as trueai-org's ``/submit/action`` derives it from the customId."""
    for prefix, action in (
        ("MJ::JOB::upsample::", "UPSCALE"),
        ("MJ::JOB::variation::", "VARIATION"),
        ("MJ::JOB::reroll::", parent_action),
        ("MJ::JOB::pan_", "PAN"),
        ("MJ::JOB::upsample_", "UPSCALE_HD"),
        ("MJ::JOB::animate_", "VIDEO"),
    ):
        if custom_id.startswith(prefix):
            return action
    return "ZOOM" if "zoom" in custom_id.lower() else "VARIATION"


class MidjourneyProxyRoutes:
    """The tasks of one emulator's midjourney-proxy routes, and this API's own knobs."""

    def __init__(self, emu: MidjourneyEmulator) -> None:
        self.emu = emu
        self._lock = threading.RLock()
        self._rng = random.Random(0x3E1)
        self.reset()

    def reset(self) -> None:
        """Forget tasks and restore the knobs (the flavour from ``MIDJOURNEY_EMULATOR_PROXY_FLAVOUR``)."""
        with self._lock:
            flavour = os.environ.get("MIDJOURNEY_EMULATOR_PROXY_FLAVOUR", "original").strip().lower()
            #: trueai-org's superset (buttons, imageUrls, seed, cancel, /submit/action, mode prefixes).
            self.superset = flavour in ("superset", "trueai", "trueai-org")
            #: prompts holding one of these answer code 24 at submit (BannedPromptUtils).
            self.banned_words: set[str] = {"banned"}
            #: the failReason of a moderated task (None: the flavour's usual text).
            self.moderation_reason: str | None = None
            self.tasks: dict[str, ProxyTask] = {}
            self._by_job: dict[str, str] = {}
            self._forced: list[list[int]] = []

    def force_code_next(self, code: int, n: int = 1) -> None:
        """The next ``n`` submits answer ``code``: 21 or 22 (the task is created), 23 or 24 (it is not)."""
        if code not in (21, 22, 23, 24):
            raise ValueError(f"code must be 21, 22, 23 or 24, got {code}")
        with self._lock:
            self._forced.append([code, n])

    def _take_forced(self) -> int | None:
        with self._lock:
            for rule in self._forced:
                if rule[1] > 0:
                    rule[1] -= 1
                    return rule[0]
            return None

    def _new_id(self) -> str:
        with self._lock:
            for _ in range(1000):
                task_id = f"{int(time.time() * 1000)}{self._rng.randrange(1000):03d}"
                if task_id not in self.tasks:
                    return task_id
            raise ApiError(500, "no free task id")  # pragma: no cover

    # -- submit -----------------------------------------------------------------------------------

    def _create(
        self, spec: JobSpec, action: str, description: str, params: dict[str, Any], mode: str | None, prompt: str = ""
    ) -> Any:
        """Create the engine job and its task; answers the submit result (a dict, or a Response)."""
        forced = self._take_forced()
        if forced == 23:
            return _result(23, QUEUE_FULL_TEXT, self._new_id(), discordInstanceId=self._instance())
        if forced == 24:
            return _result(24, BANNED_TEXT, None, promptEn=spec.prompt, bannedWord="(forced)")
        try:
            job, new = self.emu.state.create_job(spec)
        except ApiError as exc:
            return self._engine_error(exc)
        jobid = job.id
        with self._lock:
            if not new and jobid in self._by_job:  # an upscale pressed twice: the existing task
                existing = self._by_job[jobid]
                shown = self.task_json(self.tasks[existing]) or {}
                return _result(21, EXISTS_TEXT, existing, status=shown.get("status"), imageUrl=shown.get("imageUrl"))
            state = params.get("state")
            task = ProxyTask(
                id=self._new_id(),
                jobid=jobid,
                action=action,
                prompt=(prompt or spec.prompt).strip(),
                description=description,
                state=str(state) if state is not None else None,
                submit_time=int(time.time() * 1000),
                mode=mode,
            )
            self.tasks[task.id] = task
            self._by_job[jobid] = task.id
        instance = self._instance(job.account)
        if forced == 21:
            return _result(21, EXISTS_TEXT, task.id, status="NOT_START", discordInstanceId=instance)
        if forced == 22:
            return _result(22, QUEUED_TEXT.format(n=1), task.id, numberOfQueues=1, discordInstanceId=instance)
        return _result(1, SUCCESS_TEXT, task.id, discordInstanceId=instance)

    def _instance(self, account: str = "") -> str:
        """The Discord instance (the engine's account) a task runs on."""
        return account or next(iter(self.emu.state.accounts), "0")

    def _engine_error(self, exc: ApiError) -> Any:
        if exc.status == 429:
            return _result(23, QUEUE_FULL_TEXT, self._new_id())
        if exc.status in (404, 410):
            return _result(3, NOT_FOUND_TEXT)
        if isinstance(exc, EngineError) and exc.reason == "parent_not_completed":
            return _result(4, BAD_STATE_TEXT)
        if exc.status == 400:
            return _result(4, exc.message or "参数错误")
        return _result(9, f"提交失败: {exc.message}")

    def imagine(self, params: dict[str, Any], mode: str | None) -> Any:
        prompt = params.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _result(4, "prompt不能为空")
        prompt = prompt.strip()
        hit = next((w for w in sorted(self.banned_words) if w and w.lower() in prompt.lower()), None)
        if hit is not None:
            return _result(24, BANNED_TEXT, None, promptEn=prompt, bannedWord=hit)
        references = params.get("base64Array") or []
        if not isinstance(references, list) or any(_decode_data_url(r) is None for r in references):
            return _result(4, "base64格式错误")
        spec = JobSpec("imagine", {"prompt": prompt}, stream=False, prompt=prompt, job_type="image")
        spec.trigger_text = prompt
        return self._create(spec, "IMAGINE", f"/imagine {prompt}", params, mode)

    def change(self, params: dict[str, Any], mode: str | None) -> Any:
        task_id, action, index = params.get("taskId"), params.get("action"), params.get("index")
        if not isinstance(task_id, str) or not task_id.strip():
            return _result(4, "taskId不能为空")
        if action not in ("UPSCALE", "VARIATION", "REROLL"):
            return _result(4, "action参数错误")
        if action != "REROLL" and (isinstance(index, bool) or index not in (1, 2, 3, 4)):
            return _result(4, "index参数错误")
        parent = self._parent(task_id)
        if isinstance(parent, dict):
            return parent
        if parent.action not in CHANGE_TARGETS:
            return _result(4, "关联任务不允许执行变化")
        button = "🔄" if action == "REROLL" else f"{action[0]}{index}"
        description = f"/up {task_id} " + ("R" if action == "REROLL" else button)
        return self._child(parent, button, action, description, params, mode)

    def action(self, params: dict[str, Any], mode: str | None) -> Any:
        task_id, custom_id = params.get("taskId"), params.get("customId")
        if not isinstance(task_id, str) or not task_id.strip() or not isinstance(custom_id, str) or not custom_id:
            return _result(4, "参数错误")
        parent = self._parent(task_id)
        if isinstance(parent, dict):
            return JSONResponse(parent, status_code=404) if parent["code"] == 3 else parent
        view = self.task_json(parent) or {}
        label = next((b["label"] or b["emoji"] for b in view.get("buttons", []) if b["customId"] == custom_id), None)
        if label is None:
            return _result(4, "未知的 Action 类型")
        action = _action_for_custom_id(custom_id, parent.action)
        return self._child(parent, label, action, f"/action {task_id} {custom_id}", params, mode)

    def video(self, params: dict[str, Any], mode: str | None) -> Any:
        """``/submit/video`` (superset): animate ``image`` (URL or data URL), or ``action: "extend"``
        clip ``index`` (1-4) of the finished video task ``taskId``; the prompt is required either way.
        Completed video tasks show ``videoUrl`` and ``videoUrls`` (mirrored into ``imageUrls``)."""
        prompt = params.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _result(4, "Prompt 不能为空")
        flags = [f"--motion {params['motion']}"] if params.get("motion") in ("low", "high") else []
        if params.get("loop") is True:
            flags.append("--loop")
        if isinstance(params.get("batchSize"), int) and params["batchSize"] in (1, 2, 4):
            flags.append(f"--bs {params['batchSize']}")
        task_id = params.get("taskId")
        if task_id:
            if params.get("action") != "extend":
                return _result(4, "任务类型错误")
            index = params.get("index")
            if isinstance(index, bool) or index not in (1, 2, 3, 4):
                return _result(4, "index参数错误")
            parent = self._parent(str(task_id))
            if isinstance(parent, dict):
                return JSONResponse(parent, status_code=404) if parent["code"] == 3 else parent
            if parent.action != "VIDEO":
                return _result(4, "任务类型错误")
            start: Any = f"{self.emu.cdn_base_url}/video/extend-of-{parent.id}/{index - 1}.mp4"
        else:
            start, end = params.get("image"), params.get("endImage")
            for value in (start, end):
                if value is not None and not (
                    isinstance(value, str)
                    and (value.startswith(("http://", "https://")) or _decode_data_url(value) is not None)
                ):
                    return _result(4, "base64格式错误")
            if not start:
                return _result(4, "image不能为空")
            if end:
                flags.append(f"--end {end if str(end).startswith('http') else 'data-url'}")
        text = f"{start if str(start).startswith('http') else 'data-url'} {prompt.strip()} --video {' '.join(flags)}"
        spec = JobSpec("imagine", {"prompt": text}, stream=False, prompt=text, job_type="video")
        spec.trigger_text = prompt
        return self._create(spec, "VIDEO", f"/video {prompt.strip()}", params, mode, prompt=prompt)

    def _parent(self, task_id: str) -> ProxyTask | dict[str, Any]:
        parent = self.tasks.get(task_id.strip())
        view = self.task_json(parent) if parent else None
        if parent is None or view is None:
            return _result(3, NOT_FOUND_TEXT)
        if view["status"] != "SUCCESS":
            return _result(4, BAD_STATE_TEXT)
        return parent

    def _child(
        self, parent: ProxyTask, button: str, action: str, description: str, params: dict[str, Any], mode: str | None
    ) -> Any:
        spec = specs.button(parent.jobid, button, request=_echo(params))
        return self._create(spec, action, description, params, mode, prompt=parent.prompt)

    def blend(self, params: dict[str, Any], mode: str | None) -> Any:
        images = params.get("base64Array")
        if not isinstance(images, list) or not 2 <= len(images) <= 5:
            return _result(4, "base64List参数错误")
        dimensions = params.get("dimensions") or "SQUARE"
        if dimensions not in BLEND_AR:
            return _result(4, "dimensions参数错误")
        decoded = [_decode_data_url(i) for i in images]
        if any(d is None for d in decoded):
            return _result(4, "base64格式错误")
        digests = [hashlib.sha256(d or b"").hexdigest()[:16] for d in decoded]
        spec = specs.blend(digests, dimensions.capitalize(), request=_echo(params))
        return self._create(spec, "BLEND", f"/blend {len(images)} {dimensions}", params, mode)

    def describe(self, params: dict[str, Any], mode: str | None) -> Any:
        raw = params.get("base64")
        link = params.get("link") if self.superset else None
        if not raw and not link:
            return _result(4, "base64不能为空")
        if raw:
            data = _decode_data_url(raw)
            if data is None:
                return _result(4, "base64格式错误")
            source = "sha256:" + hashlib.sha256(data).hexdigest()
        else:
            source = str(link)
        spec = specs.describe(source, url=False, request=_echo(params))  # no moderation words in an image
        return self._create(spec, "DESCRIBE", f"/describe {source[:24]}.png", params, mode)

    # -- tasks ------------------------------------------------------------------------------------

    def task_json(self, task: ProxyTask) -> dict[str, Any] | None:
        """The task as ``/task/{id}/fetch`` shows it now (None once the engine forgot the job)."""
        try:
            job = self.emu.state.view(task.jobid)
        except ApiError:
            return None
        engine = job.status
        status = _STATUS.get(engine, "FAILURE")
        percent = job.percent
        view: dict[str, Any] = {
            "id": task.id,
            "action": task.action,
            "status": status,
            "prompt": task.prompt or None,
            "promptEn": task.prompt or None,
            "description": task.description,
            "state": task.state,
            "submitTime": task.submit_time,
            "startTime": None if engine == "created" else task.submit_time + 50,
            "finishTime": int(job.updated * 1000) if status in ("SUCCESS", "FAILURE") else None,
            "imageUrl": None,
            "progress": "0%" if engine in ("created", "started") else f"{percent or 0}%",
            "failReason": None,
            "properties": {"discordInstanceId": self._instance(job.account), "finalPrompt": task.prompt or None},
        }
        if status == "SUCCESS":
            self._completed(view, task, job)
        elif status == "FAILURE":
            view["progress"] = ""
            view["failReason"] = self._fail_reason(job)
        if self.superset:
            view.setdefault("buttons", [])
            view.setdefault("imageUrls", None)
            view.update(seed=task.seed, mode=(task.mode or "fast").upper(), botType="MID_JOURNEY")
        return view

    def _completed(self, view: dict[str, Any], task: ProxyTask, job: JobView) -> None:
        view["progress"] = "100%"
        view["imageUrl"] = job.primary_url
        if task.action == "DESCRIBE":
            text = describe_text(job.describe_prompts)
            if self.superset:  # SetDescribeButtions: the prompts joined by CRLF
                text = "\r\n".join(p for p in job.describe_prompts if p)
            view["properties"]["finalPrompt"] = text
            view["promptEn"] = text
            view["imageUrl"] = None  # the uploaded image's Discord URL on a real server
        if not self.superset:
            return
        clips = job.video_urls
        if task.action == "VIDEO" and clips:
            view["videoUrl"] = view["imageUrl"]
            view["videoUrls"] = [{"url": clip, "thumbnail": clip} for clip in clips]
            view["imageUrls"] = list(view["videoUrls"])  # TaskInfo mirrors them, index for index
            view["buttons"] = []
            return
        cells = job.image_urls
        if len(cells) > 1:
            view["imageUrls"] = [{"url": cell, "thumbnail": cell} for cell in cells]
        buttons = []
        for row in components(job.uid, list(job.buttons)):
            for item in row.get("components") or []:
                if item.get("custom_id"):
                    emoji = (item.get("emoji") or {}).get("name", "")
                    buttons.append(
                        {
                            "customId": item["custom_id"],
                            "emoji": emoji,
                            "label": item.get("label", ""),
                            "style": 2,
                            "type": 2,
                        }
                    )
        view["buttons"] = buttons

    def _fail_reason(self, job: JobView) -> str:
        failure = job.failure
        error, details = (failure.title, failure.details) if failure else ("", "")
        if job.status == "moderated":
            if self.moderation_reason is not None:
                return self.moderation_reason
            return SUPERSET_MODERATION if self.superset else f"[{error}] {details}"
        if failure is not None and failure.reason == "cancelled":
            return CANCELLED_TEXT
        if failure is not None and failure.reason == "timed_out":
            return TIMED_OUT_TEXT
        return f"[{error}] {details}"

    def views(self, ids: list[str] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            tasks = list(self.tasks.values()) if ids is None else [self.tasks[i] for i in ids if i in self.tasks]
        found = [v for t in tasks if (v := self.task_json(t)) is not None]
        return sorted(found, key=lambda v: v["submitTime"], reverse=True)

    def seed(self, task_id: str) -> Response:
        task = self.tasks.get(task_id)
        view = self.task_json(task) if task else None
        if task is None or view is None:
            return JSONResponse(_result(3, NOT_FOUND_TEXT), status_code=404)
        if view["status"] != "SUCCESS" or task.action == "DESCRIBE":
            return JSONResponse(_result(4, BAD_STATE_TEXT), status_code=400)
        if task.seed is None:
            task.seed = str(int.from_bytes(hashlib.sha256(task.jobid.encode()).digest()[:4], "big"))
        return JSONResponse(_result(1, SUCCESS_TEXT, task.seed))

    def cancel(self, task_id: str) -> Response:
        task = self.tasks.get(task_id)
        view = self.task_json(task) if task else None
        if task is not None and view is not None and view["status"] not in ("SUCCESS", "FAILURE"):
            self.emu.state.cancel(task.jobid)
        return Response(status_code=200)


def proxy_routes(emu: MidjourneyEmulator) -> MidjourneyProxyRoutes:
    """The midjourney-proxy side of ``emu`` (its tasks and knobs), made on first use."""
    with _ROUTES_LOCK:
        routes = _ROUTES.get(emu)
        if routes is None:
            routes = _ROUTES[emu] = MidjourneyProxyRoutes(emu)
        return routes


def _echo(params: dict[str, Any]) -> dict[str, Any]:
    """The request as the job's echo, without its images."""
    return {k: v for k, v in params.items() if k not in ("base64", "base64Array", "maskBase64")}


def _params(request: Request) -> dict[str, Any] | None:
    parsed: ParsedBody = request.scope.get(BODY_SCOPE_KEY) or ParsedBody()
    return None if parsed.error else parsed.params


def _mode(request: Request) -> str | None:
    match = re.match(r"^/mj-(fast|relax|turbo)/", request.url.path)
    return match.group(1) if match else None


def build_router(routes: MidjourneyProxyRoutes) -> APIRouter:
    router = APIRouter()
    missing = JSONResponse(error_body(404, "Not Found"), status_code=404)

    def answer(result: Any) -> Response:
        return result if isinstance(result, Response) else JSONResponse(result)

    def served(request: Request) -> bool:
        """The mode prefixes exist on the superset only."""
        return routes.superset or _mode(request) is None

    def submit_route(name: str) -> None:
        async def submit(request: Request) -> Response:
            if not served(request) or (name in ("action", "video") and not routes.superset):
                return missing
            params = _params(request)
            if params is None:
                return JSONResponse(error_body(400, "Bad Request"), status_code=400)
            return answer(getattr(routes, name)(params, _mode(request)))

        router.add_api_route(f"/submit/{name}", submit, methods=["POST"])

    for name in ("imagine", "change", "describe", "blend", "action", "video"):
        submit_route(name)

    @router.get("/task/{task_id}/fetch")
    async def fetch(task_id: str, request: Request) -> Response:
        if not served(request):
            return missing
        task = routes.tasks.get(task_id)
        view = routes.task_json(task) if task else None
        if view is None:
            return Response(status_code=204) if routes.superset else Response(status_code=200)
        return JSONResponse(view)

    @router.get("/task/list")
    async def task_list(request: Request) -> Response:
        if not served(request):
            return missing
        views = routes.views()
        return JSONResponse(views[:100] if routes.superset else views)

    @router.get("/task/queue")
    async def queue(request: Request) -> Response:
        if routes.superset or _mode(request):
            return missing
        running = [v for v in routes.views() if v["status"] in ("NOT_START", "SUBMITTED", "IN_PROGRESS")]
        return JSONResponse(sorted(running, key=lambda v: v["submitTime"]))

    @router.post("/task/list-by-condition")
    async def by_condition(request: Request) -> Response:
        if not served(request):
            return missing
        params = _params(request)
        ids = (params or {}).get("ids")
        if not isinstance(ids, list):
            return JSONResponse([])
        return JSONResponse(routes.views([str(i).strip() for i in ids]))

    @router.get("/task/{task_id}/image-seed")
    async def image_seed(task_id: str) -> Response:
        return routes.seed(task_id) if routes.superset else missing

    @router.post("/task/{task_id}/cancel")
    async def cancel(task_id: str) -> Response:
        return routes.cancel(task_id) if routes.superset else missing

    return router


def register(api: FastAPI, emu: MidjourneyEmulator) -> MidjourneyProxyRoutes:
    """Serve the midjourney-proxy routes under ``/mj`` (and the superset's mode prefixes) on ``api``."""
    for prefix in ("/mj/", "/mj-fast/", "/mj-relax/", "/mj-turbo/"):
        register_flavour(ApiFlavour(prefix, secret_authorized, error_body))
    routes = proxy_routes(emu)
    router = build_router(routes)
    for prefix in PREFIXES:
        api.include_router(router, prefix=prefix)
    return routes
