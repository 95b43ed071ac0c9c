"""The "Midjourney image" button on a finished task in the Airflow UI."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.bases.xcom import BaseXCom


class MidjourneyImageLink(BaseOperatorLink):
    """Opens the grid (or the first image) of the job the task ran."""

    name = "Midjourney image"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        result = BaseXCom.get_value(ti_key=ti_key, key="return_value")
        if not isinstance(result, dict):
            return ""
        urls = result.get("image_urls") or result.get("video_urls") or []
        return str(result.get("grid_url") or (urls[0] if urls else ""))
