"""Deprecated: the useapi.net v3 hook under its earlier name; use :mod:`~airflow_provider_midjourney.hooks.useapi_v3`.

``from airflow_provider_midjourney.hooks.midjourney import MidjourneyHook`` keeps working (with a
DeprecationWarning); connections of type ``midjourney`` are served by
:class:`~airflow_provider_midjourney.hooks.useapi_v3.UseapiV3Hook` either way.
"""

from __future__ import annotations

import warnings
from typing import Any

from airflow_provider_midjourney.hooks import useapi_v3

__all__ = ["MidjourneyHook"]  # noqa: F822 - served by __getattr__ with a DeprecationWarning


def __getattr__(name: str) -> Any:
    if name == "MidjourneyHook":
        warnings.warn(
            "airflow_provider_midjourney.hooks.midjourney.MidjourneyHook is deprecated: import UseapiV3Hook"
            " from airflow_provider_midjourney.hooks.useapi_v3 (the same class)",
            DeprecationWarning,
            stacklevel=2,
        )
        return useapi_v3.UseapiV3Hook
    try:
        return getattr(useapi_v3, name)  # what the module exported before (BROWSER_HEADERS, ...)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
