"""Apache Airflow provider for Midjourney through the useapi.net Midjourney API v3."""

from __future__ import annotations

__version__ = "0.1.0"

from airflow_provider_midjourney.get_provider_info import get_provider_info

__all__ = ["__version__", "get_provider_info"]
