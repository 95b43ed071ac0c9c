"""A local emulator of every registered Midjourney API, for tests and local development.

One job engine (``state.py``: jobs advance with time, fault knobs, a CDN) and one dialect per
backend (``testing/<backend>.py``: that vendor's routes, shapes and error codes), all served by
one loopback server; the registry (:mod:`airflow_provider_midjourney.backends`) lists the dialects.

>>> from airflow_provider_midjourney.testing import MidjourneyEmulator
>>> with MidjourneyEmulator(token="t") as emu:  # doctest: +SKIP
...     emu.base_url  # 'http://127.0.0.1:54321'

Importing this package is cheap: FastAPI and uvicorn are only imported by
``MidjourneyEmulator.start()``. Run standalone with
``python -m airflow_provider_midjourney.testing --port 8765``; the pytest fixture
``midjourney_emulator`` lives in ``airflow_provider_midjourney.testing.pytest_plugin``.
"""

from __future__ import annotations

from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator
from airflow_provider_midjourney.testing.models import EmulatorKnobs, JobTimings, RecordedRequest

EmulatorConfig = EmulatorKnobs

__all__ = [
    "EmulatorConfig",
    "EmulatorKnobs",
    "JobTimings",
    "MidjourneyEmulator",
    "RecordedRequest",
]
