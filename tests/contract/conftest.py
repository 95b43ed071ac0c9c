"""The ``wing`` fixture: every registered backend, pointed at the session's emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_midjourney.backends import BACKENDS
from airflow_provider_midjourney.testing import MidjourneyEmulator
from tests.conftest import TOKEN
from tests.contract.wings import CONN_ID, Wing, connection_json, prepared


@pytest.fixture(params=BACKENDS, ids=lambda backend: backend.name)
def wing(
    request: pytest.FixtureRequest, emulator: MidjourneyEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Wing]:
    backend = request.param
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_json(backend, emulator, TOKEN))
    with prepared(backend, emulator):
        yield Wing(backend, CONN_ID, emulator)
