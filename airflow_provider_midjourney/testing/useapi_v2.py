"""Emulated useapi.net Midjourney API v2 (``/v2/...``) and its v1 paths (``/v1/jobs...``).

The routes translate to and from the one job engine (:class:`~.state.EmulatorState`): a v2 job is
an engine job, so timings, moderation/failure/never-finish words, channel limits and locks, and
the fault knobs of the middleware apply unchanged. Shapes and codes follow the vendor's OpenAPI
files (v1, v2) and v1 pages:

* submit answers (``imagineResponse``...) with ``status: started`` and ``code: 200``;
* a prompt, blend URL or describe URL with a moderation word answers **422** with the job's id and
  ``status: moderated`` (the job exists and stays moderated);
* a busy channel answers **429** "Maximum of <maxJobs> jobs executing in parallel supported" with
  ``executingJobs``; a locked channel **596** (pending moderation message);
* an upscale pressed twice answers **409** "Button U1 already executed by job <jobid>";
* ``GET /jobs/?jobid=`` → ``jobResponse`` (grid in ``attachments[0]``, no ``imageUx``; progress only
  in ``content``); ``GET /jobs/cancel/?jobid=`` → ``jobCancelResponse``; ``GET /jobs`` → a list of ids;
* ``seed_async`` → four separate images in ``attachments`` and ``seed: {content, value}``;
* info/fast/relax/turbo/variability answer at once with a completed job (``completedResponse``).

504 "job queued, not tracked" has no engine cause: provoke it with
``emulator.fail_next(1, status=504, path_prefix="/v2/jobs/imagine", error=QUEUED_NOT_TRACKED)``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_midjourney.testing.content import iso, message, snowflake
from airflow_provider_midjourney.testing.jobs import ApiError, JobSpec, JobView
from airflow_provider_midjourney.testing.middleware import (
    ApiFlavour,
    bearer_authorized,
    register_flavour,
    request_params,
)
from airflow_provider_midjourney.testing.useapi_v3_jobs import KEY_FIELDS, redact, useapi_accounts

if TYPE_CHECKING:
    from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator
    from airflow_provider_midjourney.testing.state import EmulatorState

PENDING_MOD_MESSAGE = (
    "Your Discord account has received a pending moderation message from Midjourney. Please address this"
    " issue and reset pendingModMessage before making any new API calls"
)
QUEUED_NOT_TRACKED = (
    "Job queued. The API will not be able to track the progress of this job, although it will still be"
    " processed by Midjourney. You may want to adjust the maxJobs number to a lower value for the next"
    " several minutes."
)
MODERATED = "Unable to find posted message, likely moderated or invalid prompt"
V1_BUTTONS = (
    *("U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4", "⬅️", "➡️", "⬆️", "⬇️", "🔄"),
    *("Vary (Strong)", "Vary (Subtle)", "Zoom Out 1.5x", "Zoom Out 2x", "Upscale (2x)", "Upscale (4x)"),
    *("Redo Upscale (2x)", "Redo Upscale (4x)", "Make Square", "Make Variations", "Remaster"),
)
V2_BUTTONS = (
    *V1_BUTTONS,
    *("Upscale (Subtle)", "Upscale (Creative)", "Redo Upscale (Subtle)", "Redo Upscale (Creative)", "Custom Zoom"),
)
SETTINGS = ("info", "relax", "fast", "turbo", "variability")
V2_ONLY = ("seed_async", "seed", *SETTINGS)
BLEND_DIMENSIONS = {"Portrait": "--ar 2:3", "Square": "--ar 1:1", "Landscape": "--ar 3:2"}
_CANCELLED = "Job cancelled by user"


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": message, "code": status}


def _answer(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


class UseapiV2Routes:
    """The v2 and v1 routes of one emulator, and what they remember beyond the engine."""

    def __init__(self, emu: MidjourneyEmulator) -> None:
        self.emu = emu
        self.state: EmulatorState = emu.state
        # jobid -> the 422 fields of jobs moderated at submit (the engine holds them as cancelled)
        self.moderated: dict[str, dict[str, Any]] = {}

    # -- submit ---------------------------------------------------------------------------------
    def submit(self, version: str, verb: str, params: dict[str, Any]) -> Response:
        if version == "v1" and verb in V2_ONLY:
            raise ApiError(404, f"Unknown endpoint /v1/jobs/{verb}")
        echo = self._account(version, verb, params)
        spec = self._spec(version, verb, params, echo)
        hit = self._moderation_word(spec)
        try:
            job, new = self.state.create_job(spec)
        except ApiError as exc:
            raise self._translated(exc, spec) from None
        jobid = job.id
        if not new and verb == "button":  # execute-once: the engine answered the existing child
            error = f"Button {spec.button} already executed by job {jobid}"
            return _answer(409, {"error": error, "button": spec.button, "jobid": jobid, "code": 409})
        if verb in SETTINGS:
            self.state.force_complete(jobid)
            return _answer(200, self.job(jobid, version))
        if hit is not None:
            self.state.cancel(jobid)  # frees the channel slot; the job stays "moderated" for the API
            fields = {"error": MODERATED, "errorDetails": f"Banned prompt detected: `{hit}`", "code": 422}
            self.moderated[jobid] = fields
            return _answer(422, self._submitted(job, "moderated", fields))
        return _answer(200, self._submitted(job, "started", {"code": 200}))

    def _account(self, version: str, verb: str, params: dict[str, Any]) -> dict[str, Any]:
        """Validate discord/server/channel/maxJobs; returns their echo (discord redacted)."""
        echo: dict[str, Any] = {}
        for name in ("discord", "server", "channel"):
            value = _text(params, name, 256)
            if value is not None:
                echo[name] = value
        needs_account = verb not in ("button", "seed_async", "seed")
        if version == "v1" and needs_account:
            for name in ("discord", "server", "channel"):
                if name not in echo:
                    raise ApiError(412, f"{name} is missing")
        if "maxJobs" in params and params["maxJobs"] not in (None, ""):
            value = params["maxJobs"]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 15:
                raise ApiError(400, "maxJobs must be an integer from 1 to 15")
            echo["maxJobs"] = value
        channel = echo.get("channel")
        if channel and "discord" in echo:
            # A job that brings its own Discord account: the API uses it without prior configuration.
            useapi_accounts(self.emu).remember(channel, echo["discord"])
        if "discord" in echo:
            echo["discord"] = redact(echo["discord"])
        return echo

    def _spec(self, version: str, verb: str, params: dict[str, Any], echo: dict[str, Any]) -> JobSpec:
        request: dict[str, Any] = {"api": version, **echo}
        for name in ("replyUrl", "replyRef"):
            value = _text(params, name, 1024)
            if value is not None:
                request[name] = value
        engine_verb = "seed" if verb in ("seed_async", "seed") else verb
        parent = _text(params, "jobid", 512) if engine_verb in ("button", "seed") else None
        if parent and self.state.has_job(parent):  # button and seed jobs run on the parent's account
            try:
                inherited = self.state.view(parent).request
            except ApiError:  # expired: the engine answers for it when the job is created
                inherited = {}
            for key in ("discord", "server", "channel", "maxJobs"):
                if key in inherited:
                    request.setdefault(key, inherited[key])
        request.setdefault("maxJobs", 3)  # "if not provided defaulted to 3" (v1 pages)
        spec = JobSpec(engine_verb, request, stream=False, account=echo.get("channel"))
        spec.request["verb"] = "seed_async" if engine_verb == "seed" else verb
        if verb == "imagine":
            prompt = _text(params, "prompt", 1024 if version == "v1" else 2048)
            if prompt is None or not prompt.strip():
                raise ApiError(412 if version == "v1" else 400, "prompt is missing")
            request["prompt"] = spec.prompt = prompt
            spec.job_type = "image"
        elif verb == "button":
            self._button(version, spec, params)
        elif verb == "blend":
            urls = params.get("blendUrls")
            if not isinstance(urls, list) or not 2 <= len(urls) <= 5 or not all(_is_url(u) for u in urls):
                raise ApiError(412 if version == "v1" else 400, "blendUrls must hold 2 to 5 image URLs")
            dims = _text(params, "blendDimensions", 16)
            if dims is not None and dims not in BLEND_DIMENSIONS:
                raise ApiError(400, f"blendDimensions must be one of {', '.join(BLEND_DIMENSIONS)}")
            request["blendUrls"] = list(urls)
            if dims:
                request["blendDimensions"] = dims
            spec.prompt, spec.job_type, spec.trigger_text = (
                f" {BLEND_DIMENSIONS[dims or 'Square']}",
                "image",
                " ".join(urls),
            )
        elif verb == "describe":
            url = _text(params, "describeUrl", 2048)
            if url is None or not _is_url(url):
                raise ApiError(412 if version == "v1" else 400, "describeUrl is missing or not a valid URL")
            request["describeUrl"] = spec.trigger_text = spec.source = url
        elif engine_verb == "seed":
            jobid = _text(params, "jobid", 512)
            if jobid is None:
                raise ApiError(400, "jobid is missing")
            request["parentJobId"] = spec.parent_id = jobid
        return spec

    def _button(self, version: str, spec: JobSpec, params: dict[str, Any]) -> None:
        jobid, button = _text(params, "jobid", 512), _text(params, "button", 64)
        for name, value in (("jobid", jobid), ("button", button)):
            if value is None:
                raise ApiError(412 if version == "v1" else 400, f"{name} is missing")
        assert jobid is not None and button is not None
        if button not in (V1_BUTTONS if version == "v1" else V2_BUTTONS):
            raise ApiError(400, f"button {button} not supported")
        prompt = _text(params, "prompt", 2048) if version == "v2" else None
        if button == "Custom Zoom" and prompt is None:
            raise ApiError(400, "prompt is missing (required for button Custom Zoom)")
        spec.request.update(button=button, parentJobId=jobid)
        if prompt is not None:
            spec.request["prompt"] = spec.prompt = prompt
        spec.button, spec.parent_id = button, jobid

    def _moderation_word(self, spec: JobSpec) -> str | None:
        if spec.verb not in ("imagine", "blend", "describe", "button"):
            return None
        text = f"{spec.trigger_text} {spec.prompt}".lower()
        return next((w for w in sorted(self.emu.moderation_words) if w and w.lower() in text), None)

    def _translated(self, exc: ApiError, spec: JobSpec) -> ApiError:
        """An engine error in the words of the v1/v2 API."""
        message = exc.message or ""
        if exc.status == 596:
            return ApiError(596, PENDING_MOD_MESSAGE)
        if exc.status == 429:
            return _Busy(self._executing(spec.account))
        if exc.status in (404, 410) and spec.parent_id:
            return ApiError(404, f"Unable to locate job {spec.parent_id}")
        if exc.status == 400 and message.startswith("Button ") and "not available" in message:
            return ApiError(400, f"button {spec.button} not found in job {spec.parent_id} buttons")
        return ApiError(exc.status, message)

    def _executing(self, channel: str | None) -> list[str]:
        channels = self.state.running()
        chosen = [channels[channel]] if channel in channels else list(channels.values())
        return [job.id for jobs in chosen for job in jobs]

    def _submitted(self, job: JobView, status: str, extra: dict[str, Any]) -> dict[str, Any]:
        """An ``imagineResponse``/``buttonResponse``/... for a job just created."""
        request = job.request
        out: dict[str, Any] = {"jobid": job.id, "verb": request.get("verb", job.verb), "status": status}
        out["created"] = out["updated"] = iso(job.created)
        out.update(_echo(request))
        out["messageId"] = snowflake(f"{job.id}/message")
        content = (message(job) or {}).get("content")
        if content or status == "started":
            out["content"] = content or f"**{request.get('prompt', '')}** - (Waiting to start)"
        out["timestamp"] = out["created"]
        out.update(extra)
        return out

    # -- read -----------------------------------------------------------------------------------
    def job(self, jobid: str, version: str) -> dict[str, Any]:
        """``jobResponse``: the engine's snapshot in v2 shape."""
        try:
            job = self.state.view(jobid)
        except ApiError:
            raise ApiError(404, f"Unable to locate job {jobid}") from None
        request = job.request
        status, failure = job.status, job.failure
        out: dict[str, Any] = {"jobid": jobid, "verb": request.get("verb", job.verb)}
        fields: dict[str, Any] = {}
        if jobid in self.moderated:
            status, fields = "moderated", self.moderated[jobid]
        elif failure is not None and failure.reason == "cancelled":
            status, fields = "cancelled", {"error": _CANCELLED, "code": 200}
        elif failure is not None:
            fields = {"error": failure.title, "errorDetails": failure.details, "code": failure.code}
        out.update(status=status, created=iso(job.created), updated=iso(job.updated))
        out.update(_echo(request))
        response = message(job) or {}
        out["messageId"] = snowflake(f"{jobid}/message")
        if "content" in response:
            out["content"] = response["content"]
        out["timestamp"] = iso(job.updated)
        allowed = V1_BUTTONS if version == "v1" else V2_BUTTONS
        if status == "completed":
            out["buttons"] = [b for b in response.get("buttons", []) if b in allowed]
            out["children"] = [
                {"button": b, "jobid": c, "messageId": snowflake(f"{c}/message")}
                for b, c in job.children.items()
                if b in allowed  # the engine also records seed jobs here; v2 lists button children only
            ]
            out["attachments"] = list(response.get("attachments", []))
            out["embeds"] = [_embed(e) for e in response.get("embeds", [])]
            if out["verb"] == "seed_async":
                match = re.search(r"\*\*seed\*\*\s*(\d+)", response.get("content", ""))
                out["seed"] = {"content": response.get("content", ""), "value": int(match.group(1)) if match else None}
            out["code"] = 200
        out.update(fields)
        return out

    def cancel(self, jobid: str) -> dict[str, Any]:
        if jobid in self.moderated:
            raise ApiError(400, f"Job {jobid} is not running (status moderated)")
        try:
            self.state.cancel(jobid)
        except ApiError as exc:
            if exc.status in (404, 410):
                raise ApiError(404, f"Unable to locate job {jobid}") from None
            raise
        return {"jobid": jobid, "status": "cancelled", "code": 200}

    def running(self) -> list[str]:
        ids = [job.id for jobs in self.state.running().values() for job in jobs]
        return [i for i in ids if i not in self.moderated]


class _Busy(ApiError):
    def __init__(self, executing: list[str]) -> None:
        super().__init__(429, f"Maximum of {len(executing) or 1} jobs executing in parallel supported")
        self.executing = executing


_ECHO_KEYS = (
    *("prompt", "blendUrls", "blendDimensions", "describeUrl", "button", "parentJobId"),
    *("discord", "channel", "server", "maxJobs", "replyUrl", "replyRef"),
)


def _echo(request: dict[str, Any]) -> dict[str, Any]:
    return {k: request[k] for k in _ECHO_KEYS if k in request}


def _embed(embed: dict[str, Any]) -> dict[str, Any]:
    return {k: embed[k] for k in ("type", "title", "description", "image") if k in embed}


def _text(params: dict[str, Any], name: str, max_len: int) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ApiError(400, f"{name} must be a string")
    value = str(value)
    if len(value) > max_len:
        raise ApiError(413 if name in ("replyUrl", "replyRef", "prompt") else 400, f"{name} is too long")
    return value


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and re.match(r"https?://", value) is not None


def _error_response(exc: ApiError) -> JSONResponse:
    body = _error_body(exc.status, exc.message or "")
    if isinstance(exc, _Busy):
        body = {"error": exc.message, "executingJobs": exc.executing, "code": 429}
    return JSONResponse(body, status_code=exc.status)


def register(api: FastAPI, emu: MidjourneyEmulator) -> UseapiV2Routes:
    """Add the ``/v2/`` and ``/v1/jobs`` routes to ``api`` (the ``/v1/`` flavour already exists)."""
    register_flavour(
        ApiFlavour("/v2/", bearer_authorized, _error_body, secret_fields=("discord",), key_fields=KEY_FIELDS)
    )
    routes = UseapiV2Routes(emu)

    for version in ("v2", "v1"):
        _add_job_routes(api, routes, version)

    @api.get("/v2/account/midjourney/{channel}")
    async def get_account(channel: str) -> Response:
        account = useapi_accounts(emu).views().get(channel)
        if account is None:
            return _error_response(ApiError(404, "Configuration not found for provided channel"))
        view: dict[str, Any] = {k: account[k] for k in ("discord", "channel", "maxJobs") if k in account}
        if account.get("error"):
            view["pendingModMessage"] = account["error"]
        return JSONResponse(view)

    @api.post("/v2/account/midjourney/{channel}/reset")
    async def reset_account(channel: str) -> Response:
        if routes.state.unlock_account(channel):
            return Response(status_code=204)
        return _error_response(ApiError(404, "Configuration not found for provided channel"))

    return routes


def _add_job_routes(api: FastAPI, routes: UseapiV2Routes, version: str) -> None:
    prefix = f"/{version}/jobs"

    @api.post(prefix + "/{verb}")
    async def submit(verb: str, request: Request) -> Response:
        if verb not in ("imagine", "button", "blend", "describe", *V2_ONLY):
            return _error_response(ApiError(404, f"Unknown endpoint {prefix}/{verb}"))
        try:
            return routes.submit(version, verb, request_params(request))
        except ApiError as exc:
            return _error_response(exc)

    @api.get(prefix + "/")
    async def get_job(request: Request) -> Response:
        jobid = request.query_params.get("jobid")
        if not jobid:
            return _error_response(ApiError(400, "Query param jobid not provided"))
        try:
            return JSONResponse(routes.job(jobid, version))
        except ApiError as exc:
            return _error_response(exc)

    @api.get(prefix + "/cancel/")
    async def cancel(request: Request) -> Response:
        jobid = request.query_params.get("jobid")
        if not jobid:
            return _error_response(ApiError(400, "Query param jobid not provided"))
        try:
            return JSONResponse(routes.cancel(jobid))
        except ApiError as exc:
            return _error_response(exc)

    @api.get(prefix)
    async def running() -> Response:
        return JSONResponse(routes.running())
