"""pytest plugin: the function-scoped ``midjourney_emulator`` fixture.

Enable with ``pytest_plugins = ["airflow_provider_midjourney.testing.pytest_plugin"]`` (or a
``pytest11`` entry point). Constructor arguments come from an optional marker::

    @pytest.mark.midjourney_emulator(channels=2, token=None)
    def test_x(midjourney_emulator): ...

FastAPI/uvicorn are only imported when the fixture starts an emulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "midjourney_emulator(**kwargs): MidjourneyEmulator arguments for the midjourney_emulator fixture",
    )


@pytest.fixture
def midjourney_emulator(request: pytest.FixtureRequest) -> Iterator[MidjourneyEmulator]:
    """A started :class:`MidjourneyEmulator` (default token ``emulator-token``), stopped after."""
    from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator

    marker = request.node.get_closest_marker("midjourney_emulator")
    with MidjourneyEmulator(**(marker.kwargs if marker else {})) as emulator:
        yield emulator
