"""Airflow's real REST API and UI backend, in-process (FastAPI TestClient), with the gallery plugin.

Users of the simple auth manager: ``admin`` (admin), ``viewer`` (viewer) and ``noxcom`` (viewer
that may not read XCom, see tests/e2e/restricted_auth.py) and ``editor`` (user: may write XCom
through the REST API, as the gallery's attacker does). Tokens come from the auth manager
itself, the way ``POST /auth/token`` makes them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

USERS = {"admin": "admin", "viewer": "viewer", "noxcom": "viewer", "editor": "user"}


@pytest.fixture(scope="session")
def airflow_api(airflow_db: None) -> Iterator[Any]:
    """A TestClient of Airflow's api-server app (core API + plugins), on the tests' metadata DB."""
    os.environ["AIRFLOW__CORE__AUTH_MANAGER"] = "tests.e2e.restricted_auth.RestrictedAuthManager"
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = ",".join(f"{u}:{r}" for u, r in USERS.items())
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "False"
    os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "tests-jwt-secret-not-a-real-one-" + "0123456789abcdef" * 3)
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app("core")) as client:
        yield client


def token(username: str) -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=USERS[username])))


def auth(username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(username)}"}
