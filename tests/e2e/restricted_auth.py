"""A simple auth manager with one restricted user, for the gallery's access-control tests.

``noxcom`` (role viewer) may read every DAG except its XCom; everyone else is what the simple
auth manager makes them. Used in-process (tests/test_plugin.py) and by the e2e api-server
(``[core] auth_manager = tests.e2e.restricted_auth.RestrictedAuthManager``).
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

RESTRICTED_USER = "noxcom"


class RestrictedAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        if user.get_name() == RESTRICTED_USER and access_entity == DagAccessEntity.XCOM:
            return False
        return bool(super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details))
