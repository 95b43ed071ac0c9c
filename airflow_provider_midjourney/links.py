"""The "Midjourney image" button on a finished task in the Airflow UI."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink


def image_link(result: Any) -> str:
    """The grid of a job result, else its first image or video ("" when there is none)."""
    if not isinstance(result, dict):
        return ""
    urls = result.get("image_urls") or result.get("video_urls") or []
    return str(result.get("grid_url") or (urls[0] if urls else ""))


class MidjourneyImageLink(BaseOperatorLink):
    """Opens the grid (or the first image) of the job the task ran.

    On Airflow 3 the worker evaluates the link when the task finishes and stores it in XCom for
    the UI; the operator keeps its last result on ``midjourney_result`` for that moment (a task
    that only deferred has none yet, so its link stays empty instead of failing an XCom read).
    """

    name = "Midjourney image"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return image_link(getattr(operator, "midjourney_result", None))
