"""Buttons on a task in the Airflow UI: the job's picture, or the "Midjourney" gallery tab.

Airflow 3 evaluates a link in the worker each time the task stops running (it deferred, it
finished) and stores the answer in XCom for the UI. A job that is still running has no picture
yet, so its link leads to the gallery tab of the task instance instead of staying empty.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

# Where the plugin's FastAPI app is mounted, and the UI routes of its external views.
GALLERY_PREFIX = "midjourney"
TASK_VIEW_ROUTE = "midjourney"
RUN_VIEW_ROUTE = "midjourney-run"
DAG_VIEW_ROUTE = "midjourney-dag"


def web_url(value: Any) -> str:
    """``value`` when it is an http(s) URL a browser may open, else "" (vendor answers are untrusted:
    ``javascript:``, ``data:`` and ``file:`` links are never offered)."""
    if not isinstance(value, str) or any(ord(c) < 33 for c in value):
        return ""
    return value if value[:8].lower().startswith(("http://", "https://")) else ""


def image_link(result: Any) -> str:
    """The grid of a job result, else its first image or video ("" when there is none that is http(s))."""
    if not isinstance(result, dict):
        return ""
    candidates = [result.get("grid_url")]
    for key in ("image_urls", "video_urls"):
        urls = result.get(key)
        candidates += list(urls) if isinstance(urls, list) else []
    return next((url for url in map(web_url, candidates) if url), "")


def ui_base_url() -> str:
    """``[api] base_url`` without its trailing slash ("" when unset: links are then root-relative)."""
    try:
        from airflow.configuration import conf
    except ImportError:  # pragma: no cover - every supported Airflow has it
        return ""
    return str(conf.get("api", "base_url", fallback="") or "").rstrip("/")


def _q(value: object) -> str:
    return quote(str(value), safe="")


def task_instance_ui_path(dag_id: str, run_id: str, task_id: str, map_index: int | None = -1) -> str:
    """The UI page of a task instance, relative to the UI's base (no leading slash)."""
    path = f"dags/{_q(dag_id)}/runs/{_q(run_id)}/tasks/{_q(task_id)}"
    if map_index is not None and map_index >= 0:
        path += f"/mapped/{map_index}"
    return path


def gallery_ui_url(dag_id: str, run_id: str, task_id: str, map_index: int | None = -1, base: str | None = None) -> str:
    """The "Midjourney" tab of a task instance in the Airflow UI."""
    root = ui_base_url() if base is None else base.rstrip("/")
    return f"{root}/{task_instance_ui_path(dag_id, run_id, task_id, map_index)}/plugin/{TASK_VIEW_ROUTE}"


def run_gallery_ui_url(dag_id: str, run_id: str, base: str | None = None) -> str:
    """The "Midjourney" tab of a DAG run in the Airflow UI."""
    root = ui_base_url() if base is None else base.rstrip("/")
    return f"{root}/dags/{_q(dag_id)}/runs/{_q(run_id)}/plugin/{RUN_VIEW_ROUTE}"


def _gallery_for(ti_key: Any) -> str:
    """The gallery tab of the task instance behind ``ti_key`` ("" without one)."""
    dag_id, run_id, task_id = (getattr(ti_key, name, None) for name in ("dag_id", "run_id", "task_id"))
    if not (dag_id and run_id and task_id):
        return ""
    map_index = getattr(ti_key, "map_index", -1)
    return gallery_ui_url(str(dag_id), str(run_id), str(task_id), map_index if isinstance(map_index, int) else -1)


class MidjourneyImageLink(BaseOperatorLink):
    """Opens the grid (or the first image) of the job the task ran; the gallery while it runs.

    The operator keeps its last result on ``midjourney_result`` for the moment the worker
    evaluates the link; a task that only deferred has none yet, so the link leads to the
    task instance's "Midjourney" tab, which shows the job as soon as it has pictures.
    """

    name = "Midjourney image"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return image_link(getattr(operator, "midjourney_result", None)) or _gallery_for(ti_key)


class MidjourneyFilesLink(BaseOperatorLink):
    """Opens a download task's contact sheet when a browser can reach it (``http(s)://``),
    else the task instance's "Midjourney" tab, which serves the stored files itself."""

    name = "Midjourney files"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return web_url(getattr(operator, "contact_sheet_uri", None)) or _gallery_for(ti_key)
