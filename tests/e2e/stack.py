"""A real Airflow 3 stack for end-to-end tests: api-server, scheduler (LocalExecutor), dag-processor
and triggerer as separate processes on SQLite, in a throwaway AIRFLOW_HOME."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Rows of the reliability table, printed at the end of the run (tests/e2e/conftest.py).
RESULTS: list[dict[str, Any]] = []
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowStack:
    """Start with :meth:`start`, always :meth:`stop` (it kills whole process groups)."""

    def __init__(self, home: Path, dag_files: Iterable[Path], connection: dict[str, Any], extra_env: dict[str, str]):
        self.home = home
        self.dags = home / "dags"
        self.logs = home / "logs"
        self.port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.dags.mkdir(parents=True, exist_ok=True)
        for path in dag_files:
            shutil.copy(path, self.dags / path.name)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-jwt-secret-not-a-token",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs),
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            # The task supervisor otherwise notices its task's exit only at the next 5 s heartbeat
            # tick; a trigger that fires inside that window makes Airflow fail the requeued task.
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW_CONN_MIDJOURNEY_DEFAULT": json.dumps(connection),
            **extra_env,
        }

    # -- processes ------------------------------------------------------------------------------

    def airflow(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=True
        )

    def start_component(self, name: str) -> None:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        args = [name, "--port", str(self.port)] if name == "api-server" else [name]
        self.processes[name] = subprocess.Popen(
            [str(BIN / "airflow"), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill_component(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        _kill_group(process, sig)

    def start(self, timeout: float = 180) -> AirflowStack:
        self.airflow("db", "migrate", timeout=300)
        for name in COMPONENTS:
            self.start_component(name)
        self.wait_for(self._api_ready, timeout, "the api-server to answer")
        return self

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill_component(name, signal.SIGTERM)

    def _api_ready(self) -> bool:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.home / (name + '.log')}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/api/v2/monitor/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    @staticmethod
    def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            time.sleep(interval)
        raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")

    # -- DAG runs -------------------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"http://127.0.0.1:{self.port}/api/v2{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, timeout: float = 120) -> str:
        """Wait until the dag-processor has parsed ``dag_id``, unpause it and start a run."""
        self.wait_for(lambda: self._dag_known(dag_id), timeout, f"{dag_id} to be parsed")
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        return str(run["dag_run_id"])

    def _dag_known(self, dag_id: str) -> bool:
        try:
            self.api("GET", f"/dags/{dag_id}")
            return True
        except httpx.HTTPStatusError:
            return False

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 180) -> str:
        return str(
            self.wait_for(
                lambda: (s := self.run_state(dag_id, run_id)) in ("success", "failed") and s,
                timeout,
                f"run {run_id} of {dag_id} to finish",
                interval=1,
            )
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"])

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        for ti in self.task_instances(dag_id, run_id):
            if ti["task_id"] == task_id:
                return ti["state"]
        return None

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the metadata DB directly (SQLite)."""
        with sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=10) as db:
            return db.execute(sql, params).fetchall()

    def log_text(self) -> str:
        texts = [p.read_text(errors="replace") for p in self.home.glob("*.log")]
        texts += [p.read_text(errors="replace") for p in self.logs.rglob("*") if p.is_file()]
        return "\n".join(texts)


def _kill_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
