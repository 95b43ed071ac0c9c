"""How the contract suite points each registered backend at the emulator.

Every backend in :data:`~airflow_provider_midjourney.backends.BACKENDS` runs through the contract
with a connection made from its registry entry (type, the emulator's URL and token, its
``emulator_extra``). A backend needs an entry in :data:`SETUP` only when its emulator dialect or
its hook keeps state between tests (a server flavour, a probe cache); most need none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from airflow_provider_midjourney.backends import Backend
from airflow_provider_midjourney.hooks.base import Capability, MidjourneyBackendHook
from airflow_provider_midjourney.testing import MidjourneyEmulator

CONN_ID = "mj_contract"


@contextmanager
def _midjourney_proxy_superset(emulator: MidjourneyEmulator) -> Iterator[None]:
    """The maintained superset (it can cancel); the probe cache of the hook class starts empty."""
    from airflow_provider_midjourney.hooks.midjourney_proxy import MidjourneyProxyHook
    from airflow_provider_midjourney.testing.midjourney_proxy import proxy_routes

    routes = proxy_routes(emulator)
    routes.reset()
    routes.superset = True
    MidjourneyProxyHook.forget_probes()
    try:
        yield
    finally:
        routes.reset()
        MidjourneyProxyHook.forget_probes()


SETUP: dict[str, Callable[[MidjourneyEmulator], AbstractContextManager[None]]] = {
    "midjourney_proxy": _midjourney_proxy_superset,
}
# Connection extras on top of the registry's emulator_extra (the flavour named: no probe request).
EXTRA: dict[str, dict[str, Any]] = {"midjourney_proxy": {"flavour": "superset"}}


def prepared(backend: Backend, emulator: MidjourneyEmulator) -> AbstractContextManager[None]:
    setup = SETUP.get(backend.name)
    return setup(emulator) if setup else nullcontext()


def connection_json(backend: Backend, emulator: MidjourneyEmulator, token: str) -> str:
    return json.dumps(
        {
            "conn_type": backend.conn_type,
            "host": emulator.base_url + backend.emulator_path,
            "password": token,
            "extra": {**backend.emulator_extra, **EXTRA.get(backend.name, {})},
        }
    )


@dataclass
class Wing:
    """One backend as the contract sees it: its registry entry, connection id and emulator."""

    backend: Backend
    conn_id: str
    emulator: MidjourneyEmulator

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def hook_class(self) -> type[MidjourneyBackendHook]:
        return self.backend.load_hook_class()

    def can(self, capability: Capability) -> bool:
        return capability in self.hook_class.capabilities

    def requests_carrying(self, marker: str) -> list[Any]:
        """The requests whose body holds ``marker`` (a prompt's unique word): the job submissions."""
        return [
            r
            for r in self.emulator.requests
            if marker in json.dumps(r.json or {}, ensure_ascii=False) + json.dumps(r.form_fields, ensure_ascii=False)
        ]
