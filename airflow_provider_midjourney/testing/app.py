"""The emulator's FastAPI app: the shared CDN, and every registered backend's dialect (``testing/<backend>.py``)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from airflow_provider_midjourney.backends import BACKENDS
from airflow_provider_midjourney.testing.jobs import ApiError
from airflow_provider_midjourney.testing.middleware import EmulatorMiddleware

if TYPE_CHECKING:
    from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator


def build_api(emu: MidjourneyEmulator) -> FastAPI:
    state = emu.state
    api = FastAPI(title="Midjourney APIs emulator", docs_url=None, redoc_url=None, openapi_url=None)

    @api.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        if exc.message is None:
            return Response(status_code=exc.status)
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @api.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> Response:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @api.get("/cdn/{asset:path}")
    async def cdn(asset: str, request: Request) -> Response:
        forbidden = emu.take_cdn_forbid()
        if forbidden or "Mozilla/" not in request.headers.get("user-agent", ""):
            return PlainTextResponse("error code: 1010", status_code=403)
        found = state.asset(asset)
        if found is None:
            return PlainTextResponse("Not Found", status_code=404)
        return Response(found[0], media_type=found[1])

    for backend in BACKENDS:  # each dialect serves its vendor's routes over the one job engine
        import_module(backend.emulator_dialect).register(api, emu)
    return api


def create_app(emu: MidjourneyEmulator) -> ASGIApp:
    """The ASGI app served by the emulator: FastAPI wrapped in the recording/fault middleware."""
    return EmulatorMiddleware(build_api(emu), emu)
