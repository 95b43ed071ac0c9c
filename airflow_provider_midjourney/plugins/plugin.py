"""The Airflow plugin of the "Midjourney" gallery (Airflow >= 3.1): a FastAPI app and external views.

Registered through the ``airflow.plugins`` entry point, so it loads whether or not providers are
discovered eagerly. Views (relative ``href``: the UI resolves them against its ``base_url``):

* a "Midjourney" tab on every task instance: the job's pictures, prompt, job id, seed, buttons,
  backend and status, or the stored files of a download task;
* a "Midjourney" tab on every DAG run: every Midjourney task instance of the run.

On Airflow 3.0 (no external views, and a UI that does not send its session cookie to plugins)
the plugin registers nothing.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_midjourney.links import GALLERY_PREFIX, RUN_VIEW_ROUTE, TASK_VIEW_ROUTE

__all__ = ["MidjourneyPlugin", "gallery_supported"]

ICON = (
    "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' "
    "stroke='%23888' stroke-width='2'><rect x='3' y='3' width='8' height='8'/><rect x='13' y='3' width='8' "
    "height='8'/><rect x='3' y='13' width='8' height='8'/><rect x='13' y='13' width='8' height='8'/></svg>"
)


def gallery_supported(version: str | None = None) -> bool:
    """Airflow 3.1 or newer (external views on task-instance and run pages)."""
    if version is None:
        from airflow import __version__

        version = str(__version__)
    parts = [int(p) if p.isdigit() else 0 for p in version.split("+")[0].split(".")[:2]]
    return tuple(parts) >= (3, 1)


def _fastapi_apps() -> list[dict[str, Any]]:
    from airflow_provider_midjourney.plugins.app import create_app

    return [{"app": create_app(), "url_prefix": f"/{GALLERY_PREFIX}", "name": "Midjourney gallery"}]


def _external_views() -> list[dict[str, Any]]:
    base = f"{GALLERY_PREFIX}/dags/{{DAG_ID}}/runs/{{RUN_ID}}"
    return [
        {
            "name": "Midjourney",
            "href": f"{base}/tasks/{{TASK_ID}}?map_index={{MAP_INDEX}}",
            "destination": "task_instance",
            "url_route": TASK_VIEW_ROUTE,
            "icon": ICON,
        },
        {
            "name": "Midjourney",
            "href": base,
            "destination": "dag_run",
            "url_route": RUN_VIEW_ROUTE,
            "icon": ICON,
        },
    ]


_SUPPORTED = gallery_supported()


class MidjourneyPlugin(AirflowPlugin):
    """The gallery: ``/midjourney/...`` routes in the api-server and tabs in the UI."""

    name = "midjourney"
    fastapi_apps = _fastapi_apps() if _SUPPORTED else []
    external_views = _external_views() if _SUPPORTED else []
