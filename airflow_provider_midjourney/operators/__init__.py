"""Operators for Midjourney jobs, on any backend (the connection's type picks it)."""

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
from airflow_provider_midjourney.operators.video import MidjourneyVideoExtendOperator, MidjourneyVideoOperator

__all__ = [
    "MidjourneyBaseOperator",
    "MidjourneyBlendOperator",
    "MidjourneyButtonOperator",
    "MidjourneyDescribeOperator",
    "MidjourneyDownloadOperator",
    "MidjourneyImagineOperator",
    "MidjourneyPickOperator",
    "MidjourneySeedOperator",
    "MidjourneySettingsOperator",
    "MidjourneyVideoExtendOperator",
    "MidjourneyVideoOperator",
]


def __getattr__(name: str) -> object:
    """``MidjourneyPickOperator`` on first use: it imports Airflow's human-in-the-loop operator."""
    if name == "MidjourneyPickOperator":
        from airflow_provider_midjourney.operators.pick import MidjourneyPickOperator

        return MidjourneyPickOperator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
