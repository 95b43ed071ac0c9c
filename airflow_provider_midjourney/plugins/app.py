"""The gallery's FastAPI app, mounted by Airflow's api-server under ``/midjourney``.

Every route asks Airflow who the caller is (its JWT: ``Authorization: Bearer`` or the UI's session
cookie, exactly as Airflow's own routes do) and whether the auth manager lets them read the DAG's
task instances and XCom; otherwise 401 / 403 and nothing else. Airflow's modules are imported
inside the handlers: this module is imported by every Airflow process that loads plugins, and
only the api-server ever answers a request.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from airflow_provider_midjourney.links import GALLERY_PREFIX, TASK_VIEW_ROUTE, task_instance_ui_path
from airflow_provider_midjourney.plugins import media, pages

log = logging.getLogger(__name__)
PAGE_HEADERS = {"Content-Security-Policy": pages.CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


async def current_user(request: Request) -> Any:
    """The caller, resolved by Airflow's own ``get_user`` (bearer token first, then the UI cookie).

    Where ``get_user`` has another signature (Airflow 3.1/3.2), the same rule by hand: the bearer
    token, else the ``_token`` cookie, checked by the auth manager.
    """
    from airflow.api_fastapi.core_api import security

    credentials = await security.bearer_scheme(request)
    if "bearer_credentials" in inspect.signature(security.get_user).parameters:
        return await security.get_user(request, None, credentials)
    token = credentials.credentials if credentials else request.cookies.get("_token")
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated")
    from airflow.api_fastapi.app import get_auth_manager
    from jwt import ExpiredSignatureError, InvalidTokenError

    try:
        return await get_auth_manager().get_user_from_token(token)
    except ExpiredSignatureError:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Token Expired") from None
    except InvalidTokenError:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Invalid JWT token") from None


UserDep = Annotated[Any, Depends(current_user)]


def authorize(request: Request, user: Any, dag_id: str) -> None:
    """Airflow's own check, as its XCom and task-instance routes do it: GET on both, or 403."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    for entity in (DagAccessEntity.TASK_INSTANCE, DagAccessEntity.XCOM):
        requires_access_dag(method="GET", access_entity=entity, param_dag_id=dag_id)(request, user)


MAX_MAP_INDEX = 2**31 - 1  # Airflow's map_index column is a 32-bit integer


def parse_map_index(value: str | None, *, default: int | None = None) -> int | None:
    """``?map_index=``: an integer from -1 to 2**31-1, else a 400 naming the field.

    The UI leaves ``{MAP_INDEX}`` literal on an unmapped task instance; that, an empty value
    and no value all mean ``default`` (None: every instance of the task).
    """
    text = (value or "").strip()
    if not text or text == "{MAP_INDEX}":
        return default
    if not re.fullmatch(r"-?[0-9]{1,12}", text) or not -1 <= int(text) <= MAX_MAP_INDEX:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"map_index: must be an integer from -1 to {MAX_MAP_INDEX}")
    return int(text)


def _q(value: object) -> str:
    return quote(str(value), safe="")


def links_for(request: Request, dag_id: str, run_id: str) -> pages.Links:
    """Links as paths under the app's mount point, so they work under any ``base_url`` prefix."""
    app_root = str(request.scope.get("root_path", "")).rstrip("/")
    ui_root = app_root.removesuffix(f"/{GALLERY_PREFIX}")

    def picture(task_id: str, map_index: int, number: int) -> str:
        return (
            f"{app_root}/dags/{_q(dag_id)}/runs/{_q(run_id)}/tasks/{_q(task_id)}/pictures/{number}"
            f"?map_index={map_index}"
        )

    def task_page(task_id: str, map_index: int) -> str:
        return f"{ui_root}/{task_instance_ui_path(dag_id, run_id, task_id, map_index)}/plugin/{TASK_VIEW_ROUTE}"

    return pages.Links(picture=picture, task_page=task_page)


def _entries(dag_id: str, run_id: str, task_id: str | None, map_index: int | None = None) -> list[Any]:
    from airflow.utils.session import create_session

    from airflow_provider_midjourney.plugins import store

    with create_session() as session:
        if not store.run_exists(session, dag_id, run_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"DAG run {run_id!r} of {dag_id!r} not found")
        return store.task_entries(session, dag_id, run_id, task_id, map_index)


def create_app() -> FastAPI:
    app = FastAPI(title="Midjourney gallery", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/dags/{dag_id}/runs/{run_id}", response_class=HTMLResponse)
    def run_view(dag_id: str, run_id: str, request: Request, user: UserDep) -> HTMLResponse:
        """Every Midjourney task instance of a run, mapped ones included."""
        authorize(request, user, dag_id)
        entries = _entries(dag_id, run_id, None)
        return HTMLResponse(
            pages.run_page(dag_id, run_id, entries, links_for(request, dag_id, run_id)), headers=PAGE_HEADERS
        )

    @app.get("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}", response_class=HTMLResponse)
    def task_view(
        dag_id: str,
        run_id: str,
        task_id: str,
        request: Request,
        user: UserDep,
        map_index: str | None = None,
    ) -> HTMLResponse:
        """One task instance (or every instance of a mapped task when no map index is given)."""
        authorize(request, user, dag_id)
        wanted = parse_map_index(map_index)
        entries = _entries(dag_id, run_id, task_id, wanted)
        page = pages.task_page(dag_id, run_id, task_id, entries, links_for(request, dag_id, run_id))
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/pictures/{number}")
    async def picture(
        dag_id: str,
        run_id: str,
        task_id: str,
        number: str,
        request: Request,
        user: UserDep,
        map_index: str | None = None,
    ) -> Response:
        """Picture ``number`` (0-based, in gallery order) of what the task's own result names.

        Asynchronous: the picture is relayed without holding a thread of the api-server's shared
        pool (the database reads take one briefly). Every refusal after the access check is the
        same answer, whatever the reason.
        """
        from starlette.concurrency import run_in_threadpool

        wanted = parse_map_index(map_index, default=-1)

        def lookup() -> list[Any]:
            authorize(request, user, dag_id)
            return _entries(dag_id, run_id, task_id, wanted)

        entries = await run_in_threadpool(lookup)
        pictures = entries[0].pictures.pictures if entries else []
        index = int(number) if number.isascii() and number.isdigit() and len(number) < 6 else -1
        try:
            slot = await media.take_slot(_viewer(user))
        except media.RelayBusy as exc:
            log.warning("Gallery relay busy: %s", exc)
            headers = {**media.RESPONSE_HEADERS, "Retry-After": "5"}
            return PlainTextResponse("too many pictures at once", status_code=503, headers=headers)
        try:
            if not 0 <= index < len(pictures):
                raise media.PictureUnavailable(f"picture {number[:20]!r} does not exist")
            body = await media.open_picture(pictures[index])
        except media.PictureUnavailable as exc:
            slot.release()
            log.info("Picture %s of %s/%s/%s refused: %s", number[:20], dag_id, run_id, task_id, exc)
            return refusal()
        except BaseException:
            slot.release()
            raise
        # The slot is released when the body ends, and after the answer in any case (a browser that
        # went away before the body started included).
        return StreamingResponse(
            _held(body, slot),
            media_type=body.media_type,
            headers=media.RESPONSE_HEADERS,
            background=BackgroundTask(_finished, body, slot),
        )

    return app


def refusal() -> Response:
    """The one answer for every picture that is not relayed: no port, endpoint or file-exists oracle."""
    return PlainTextResponse(media.REFUSAL, status_code=media.REFUSAL_STATUS, headers=media.RESPONSE_HEADERS)


def _viewer(user: Any) -> str:
    for getter in ("get_id", "get_name"):
        with contextlib.suppress(Exception):
            return str(getattr(user, getter)())
    return "?"


async def _held(body: media.Body, slot: media.Slot) -> AsyncIterator[bytes]:
    """The body; its upstream connection and relay slot are released when it ends."""
    try:
        async for chunk in body.chunks():
            yield chunk
    finally:
        await _finished(body, slot)


async def _finished(body: media.Body, slot: media.Slot) -> None:
    await body.aclose()
    slot.release()
