"""Operators for Midjourney jobs (useapi.net API v3)."""

from airflow_provider_midjourney.operators.download import MidjourneyDownloadOperator
from airflow_provider_midjourney.operators.midjourney import (
    MidjourneyBaseOperator,
    MidjourneyBlendOperator,
    MidjourneyButtonOperator,
    MidjourneyDescribeOperator,
    MidjourneyImagineOperator,
    MidjourneySeedOperator,
    MidjourneySettingsOperator,
)

__all__ = [
    "MidjourneyBaseOperator",
    "MidjourneyBlendOperator",
    "MidjourneyButtonOperator",
    "MidjourneyDescribeOperator",
    "MidjourneyDownloadOperator",
    "MidjourneyImagineOperator",
    "MidjourneySeedOperator",
    "MidjourneySettingsOperator",
]
