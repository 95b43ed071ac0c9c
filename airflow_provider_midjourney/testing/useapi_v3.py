"""Emulated useapi.net Midjourney API v3: ``/v3/midjourney/...`` and useapi.net's CDN proxy ``/v1/proxy/...``.

The engine's neutral jobs become v3's job JSON, ids, error texts and Discord accounts in
``useapi_v3_jobs.py``; errors are ``{"error": ...}`` under ``/v3/`` and ``{"error", "code"}`` under ``/v1/``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from airflow_provider_midjourney.testing import images
from airflow_provider_midjourney.testing.content import clock
from airflow_provider_midjourney.testing.jobs import TERMINAL, ApiError
from airflow_provider_midjourney.testing.middleware import (
    ApiFlavour,
    bearer_authorized,
    register_flavour,
    request_params,
)
from airflow_provider_midjourney.testing.state import EmulatorState
from airflow_provider_midjourney.testing.useapi_v3_jobs import (
    ALL_LOCKED,
    KEY_FIELDS,
    running_summary,
    snapshot,
    useapi_accounts,
    v3_error,
)
from airflow_provider_midjourney.testing.useapi_v3_params import VERBS, account_params, job_spec

if TYPE_CHECKING:
    from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator

MJ_CDN = "https://cdn.midjourney.com/"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


async def sse_events(state: EmulatorState, jobid: str) -> AsyncIterator[bytes]:
    """``initialized`` then one event per observed change of the job, in real time."""
    yield _sse(
        {"event": "initialized", "message": "Stream initialized", "jobId": jobid, "seq": 0, "ts": clock(time.time())}
    )
    seq, last_key, last_t, finished = 0, None, -1.0, False
    try:
        while not finished and not state.closing:
            if not state.has_job(jobid):  # forgotten by reset(): end the stream quietly
                return
            created, boundaries = state.boundaries(jobid)
            now_t = time.monotonic() - created
            # every phase change up to now, in order (so none is skipped), then "now" itself
            for t in [*(b for b in boundaries if last_t < b <= now_t), now_t]:
                last_t, job = t, snapshot(state.view_at(jobid, t))
                key = (job["status"], job.get("response", {}).get("progress_percent"))
                if key != last_key:
                    seq, last_key = seq + 1, key
                    yield _sse(
                        {"event": f"midjourney_{job['status']}", "job": job, "seq": seq, "ts": clock(time.time())}
                    )
                if job["status"] in TERMINAL:
                    finished = True
                    break
            upcoming = [b - now_t for b in boundaries if b > now_t]
            if not finished:
                await asyncio.sleep(min([0.1, *upcoming]) + 0.002)
    finally:
        if not finished and not state.closing:
            state.stream_disconnected(jobid)


def _v3_error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": message}


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": message, "code": status}


def register(api: FastAPI, emu: MidjourneyEmulator) -> None:
    """Serve useapi.net v3's routes (and its CDN proxy) on ``api``; the emulator's knobs apply to both."""
    for prefix, with_code in (("/v3/", False), ("/v1/", True)):
        flavour = ApiFlavour(prefix, bearer_authorized, _error_body if with_code else _v3_error_body)
        register_flavour(
            replace(flavour, fault_texts={596: ALL_LOCKED}, secret_fields=("discord",), key_fields=KEY_FIELDS)
        )
    state, accounts = emu.state, useapi_accounts(emu)

    @api.post("/v3/midjourney/jobs/{verb}")
    async def post_job(verb: str, request: Request) -> Response:
        if verb not in VERBS:
            raise ApiError(404, f"Unknown command {verb}")
        spec = job_spec(verb, request_params(request))
        try:
            view, new = state.create_job(spec)
        except ApiError as exc:
            raise v3_error(exc) from None
        if not spec.stream:
            return JSONResponse(snapshot(view, created=new), status_code=201 if new else 200)
        events = sse_events(state, view.id)
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)

    @api.get("/v3/midjourney/jobs")
    async def running_jobs() -> Response:
        return JSONResponse(running_summary(state.running(), accounts.limits()))

    @api.get("/v3/midjourney/jobs/{jobid}")
    async def get_job(jobid: str) -> Response:
        try:
            return JSONResponse(snapshot(state.view(jobid)))
        except ApiError as exc:
            raise v3_error(exc) from None

    @api.delete("/v3/midjourney/jobs/{jobid}")
    async def cancel_job(jobid: str) -> Response:
        try:
            state.cancel(jobid)
        except ApiError as exc:
            raise v3_error(exc) from None
        return Response(status_code=204)

    @api.get("/v3/midjourney/accounts")
    async def list_accounts() -> Response:
        views = accounts.views()
        return JSONResponse(views) if views else Response(status_code=404)

    @api.post("/v3/midjourney/accounts")
    async def configure_account(request: Request) -> Response:
        view, status = accounts.upsert(*account_params(request_params(request)))
        return JSONResponse(view, status_code=status)

    @api.get("/v3/midjourney/accounts/{channel}")
    async def get_account(channel: str) -> Response:
        view = accounts.views().get(channel)
        return JSONResponse(view) if view else Response(status_code=404)

    @api.delete("/v3/midjourney/accounts/{channel}")
    async def delete_account(channel: str) -> Response:
        return Response(status_code=204 if state.delete_account(channel) else 404)

    @api.post("/v3/midjourney/accounts/reset/{channel}")
    async def reset_account(channel: str) -> Response:
        return Response(status_code=204 if state.unlock_account(channel) else 404)

    @api.get("/v1/proxy/cdn-midjourney/")
    @api.get("/v1/proxy/cdn-midjourney")
    async def proxy(request: Request) -> Response:
        url = request.query_params.get("cdnUrl", "")
        own = f"{emu.cdn_base_url}/"
        if not url.startswith((MJ_CDN, own)):
            error = f"cdnUrl is required and must start with {MJ_CDN}"
            return JSONResponse({"error": error, "code": 400}, status_code=400)
        if url.startswith(own):
            found = state.asset(url[len(own) :].split("?")[0])
        elif url.split("?")[0].endswith(".mp4"):
            found = images.mp4_bytes(url), "video/mp4"
        else:
            found = images.png_bytes(url), "image/png"
        if found is None:
            return JSONResponse({"error": "Not Found", "code": 404}, status_code=404)
        return Response(found[0], media_type=found[1])
