"""A real api-server process (one worker, the gallery plugin, real users) and a slow picture
source on loopback: what tests/e2e/test_gallery_attacks.py asserts and benchmarks/gallery_relay.py
measures.

Only the api-server runs: ``airflow dags test`` writes the one run the gallery reads, and a user
role (``editor``) points its result at the slow source through Airflow's own XCom route.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from tests.e2e.stack import AirflowStack
from tests.hostile_http import HostileServer

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "gallery_target"
PASSWORDS = {"admin": "admin-pw-e2e", "viewer": "viewer-pw-e2e", "editor": "editor-pw-e2e"}
ROLES = {"admin": "admin", "viewer": "viewer", "editor": "user"}


class GalleryStack(AirflowStack):
    """The api-server alone, with real users and ``relay_allowed_hosts`` naming ``allowed``."""

    def __init__(self, home: Path, allowed: str, code: Path = REPO) -> None:
        dag_file = REPO / "tests" / "e2e" / "gallery_dags" / "gallery_target.py"
        passwords = home / "passwords.json"
        home.mkdir(parents=True, exist_ok=True)
        passwords.write_text(json.dumps(PASSWORDS))
        super().__init__(home, [dag_file], {"conn_type": "midjourney", "host": "http://127.0.0.1:9"}, {})
        self.env.update(
            {
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in ROLES.items()),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__MIDJOURNEY__RELAY_ALLOWED_HOSTS": allowed,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")])),
            }
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.tokens: dict[str, str] = {}
        self.run_id = ""

    def start(self, timeout: float = 240) -> GalleryStack:
        self.airflow("db", "migrate", timeout=300)
        self.airflow("dags", "reserialize", timeout=300)
        self.airflow("dags", "test", DAG_ID, timeout=300)
        self.start_component("api-server")
        self.wait_for(self._api_ready, timeout, "the api-server to answer")
        runs = self.get("/api/v2/dags/gallery_target/dagRuns", "admin").json()["dag_runs"]
        self.run_id = str(runs[0]["dag_run_id"])
        return self

    def token(self, user: str) -> str:
        if user not in self.tokens:
            answer = httpx.post(
                f"{self.base}/auth/token", json={"username": user, "password": PASSWORDS[user]}, timeout=60
            )
            answer.raise_for_status()
            self.tokens[user] = str(answer.json()["access_token"])
        return self.tokens[user]

    def get(self, path: str, user: str, timeout: float = 30) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers={"Authorization": f"Bearer {self.token(user)}"}, timeout=timeout)

    def forge(self, value: Any, user: str = "editor") -> httpx.Response:
        """The task's result, overwritten through Airflow's REST route as ``user``."""
        run = quote(self.run_id, safe="")
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run}/taskInstances/imagine/xcomEntries/return_value"
        return httpx.patch(
            f"{self.base}{path}",
            json={"value": value, "map_index": -1},
            headers={"Authorization": f"Bearer {self.token(user)}"},
            timeout=30,
        )

    def picture_path(self, number: int) -> str:
        return f"/midjourney/dags/{DAG_ID}/runs/{quote(self.run_id, safe='')}/tasks/imagine/pictures/{number}"


@dataclass
class Attack:
    """``count`` pictures of a dripping source requested at once by one viewer, while Airflow's own
    routes are asked ``probes`` times; every answer (or its failure) and its time recorded."""

    count: int = 60
    probes: int = 5
    probe_timeout: float = 30.0
    statuses: list[int | str] = field(default_factory=list)
    health: list[tuple[int | str, float]] = field(default_factory=list)
    dags: list[tuple[int | str, float]] = field(default_factory=list)

    def run(self, stack: GalleryStack, source: HostileServer) -> Attack:
        urls = [f"{source.base_url}/drip?every=2&bytes=60&n={n}" for n in range(self.count)]
        forged = stack.forge({"job_id": "target", "status": "completed", "image_urls": urls})
        forged.raise_for_status()
        threads = [threading.Thread(target=self._picture, args=(stack, n), daemon=True) for n in range(self.count)]
        for thread in threads:
            thread.start()
        time.sleep(3.0)  # every picture request has reached the api-server
        for _ in range(self.probes):
            self.health.append(self._timed(stack, "/api/v2/monitor/health"))
            self.dags.append(self._timed(stack, "/api/v2/dags?limit=5"))
        deadline = time.monotonic() + 40  # the pictures beyond the viewer's slots give up waiting
        while len(self.statuses) < self.count - 8 and time.monotonic() < deadline:
            time.sleep(0.2)
        source.stop_dripping.set()
        for thread in threads:
            thread.join(timeout=120)
        return self

    def _picture(self, stack: GalleryStack, number: int) -> None:
        try:
            self.statuses.append(stack.get(stack.picture_path(number), "viewer", timeout=150).status_code)
        except httpx.HTTPError as exc:
            self.statuses.append(type(exc).__name__)

    def _timed(self, stack: GalleryStack, path: str) -> tuple[int | str, float]:
        started = time.monotonic()
        try:
            status: int | str = stack.get(path, "admin", timeout=self.probe_timeout).status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        return status, time.monotonic() - started
