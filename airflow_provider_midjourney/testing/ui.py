"""``make ui``: a local Airflow (standalone) with the emulator as the backend and the example DAGs.

    python -m airflow_provider_midjourney.testing.ui [--port 8080] [--home .venvs/ui-home]

Starts the emulator on loopback, points ``midjourney_default`` at it (``MIDJOURNEY_BACKEND`` picks
the connection type, ImaginePro by default), copies the example DAGs into a throwaway
``AIRFLOW_HOME`` and runs ``airflow standalone`` (api-server, scheduler, dag-processor, triggerer).
Prints the URL and the login once the UI answers; Ctrl-C stops everything. For trying the gallery
and the pick, not for production: the home, its SQLite database and the login are local only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from airflow_provider_midjourney.backends import BACKENDS, backend_named
from airflow_provider_midjourney.demo import example_dags_folder
from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator

USER = "admin"
PASSWORD = "admin"  # a throwaway local stack on loopback; printed with the URL
START_TIMEOUT = 600.0  # a cold start on a busy 2-core machine takes minutes


def stack_env(home: Path, port: int, conn: dict[str, str]) -> dict[str, str]:
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        # standalone starts its parts as `airflow ...` from PATH: this virtualenv's, even unactivated
        "PATH": os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", ""))),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        # The supervisor otherwise sees its deferred task exit only at its next 5 s tick, and Airflow
        # fails a task whose trigger fired inside that window (the emulator's jobs take seconds).
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW_CONN_MIDJOURNEY_DEFAULT": json.dumps(conn),
        "MIDJOURNEY_POLL_INTERVAL": os.environ.get("MIDJOURNEY_POLL_INTERVAL", "1"),
    }


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"airflow standalone exited with {process.returncode}; see {log}")
        if _answers(url):
            return
        time.sleep(1)
    raise SystemExit(f"the api-server did not answer within {timeout:.0f} s; see {log}")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("MIDJOURNEY_UI_PORT", "8080")))
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("MIDJOURNEY_UI_HOME", ".venvs/ui-home")))
    parser.add_argument("--check", action="store_true", help="start, print the banner, stop (a smoke test)")
    args = parser.parse_args(argv)
    backend = os.environ.get("MIDJOURNEY_BACKEND", "imaginepro").strip().lower()
    names = [b.name for b in BACKENDS]
    if backend not in names:
        raise SystemExit(f"MIDJOURNEY_BACKEND must be one of {', '.join(names)}, got {backend!r}")
    if _answers(f"http://127.0.0.1:{args.port}"):
        raise SystemExit(f"Port {args.port} already answers (another Airflow?): stop it or pass --port")
    home = args.home.resolve()
    shutil.rmtree(home / "dags", ignore_errors=True)
    shutil.copytree(example_dags_folder(), home / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    timings = JobTimings(start_after=0.5, progress_after=1.5, complete_after=5.0)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the stack too, not only Ctrl-C
    with MidjourneyEmulator(token="ui-token", timings=timings) as emulator:
        conn = {"conn_type": backend_named(backend).conn_type, "host": emulator.base_url, "password": "ui-token"}
        url = f"http://127.0.0.1:{args.port}"
        log = home / "standalone.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [str(Path(sys.executable).parent / "airflow"), "standalone"],
                env=stack_env(home, args.port, conn),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            print(f"Starting Airflow in {home} (log: {log}); the first start takes a few minutes...", flush=True)
            wait_until_up(process, url, log)
            print(
                f"\n  Airflow UI:  {url}\n  Login:       {USER} / {PASSWORD}\n"
                f"  Backend:     {backend} (the emulator at {emulator.base_url}, connection midjourney_default)\n"
                "  Try:         trigger midjourney_pick, answer it under 'Required actions' (Airflow 3.1+),\n"
                "               then open the run's 'Midjourney' tab.  Ctrl-C stops everything.\n",
                flush=True,
            )
            if not args.check:
                process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
