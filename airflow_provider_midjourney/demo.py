"""Run the ``midjourney_imagine_upscale`` example DAG end to end and print what it made.

    python -m airflow_provider_midjourney.demo            # against the embedded emulator
    MIDJOURNEY_API_TOKEN=... python -m airflow_provider_midjourney.demo   # against the real API
    MIDJOURNEY_BACKEND=imaginepro python -m airflow_provider_midjourney.demo

``MIDJOURNEY_BACKEND`` picks the API: ``useapi_v3`` (default), ``imaginepro``, ``useapi_v2`` or
``midjourney_proxy`` (the emulator serves them all; ``MIDJOURNEY_EMULATOR_PROXY_FLAVOUR=superset``
switches its midjourney-proxy routes to the maintained superset). The example's seed task is
skipped on a backend without seed.

It uses a throwaway AIRFLOW_HOME (SQLite) and ``dag.test()``, which runs the deferred trigger
in-process, so nothing else has to be running. ``MIDJOURNEY_BASE_URL`` overrides the API URL,
``MIDJOURNEY_PROMPT`` the prompt, ``MIDJOURNEY_DESTINATION`` where the images are stored (default:
``<that AIRFLOW_HOME>/midjourney/<date>/``, printed at the end with the contact sheet).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

EXAMPLE = "midjourney_imagine_upscale"
# MIDJOURNEY_BACKEND -> connection type (the connection's type picks the hook).
BACKENDS = {
    "useapi_v3": "midjourney",
    "imaginepro": "imaginepro",
    "useapi_v2": "midjourney_useapi_v2",
    "midjourney_proxy": "midjourney_proxy",
}


def _example_source() -> Path:
    """The example DAG file: inside the package when installed from a wheel, at the top of a clone.

    The wheel carries the repository's ``example_dags/`` as ``airflow_provider_midjourney/example_dags``
    (see ``[tool.hatch.build.targets.wheel.force-include]``); an editable install reads the clone's.
    """
    here = Path(__file__).resolve().parent
    candidates = (here / "example_dags" / f"{EXAMPLE}.py", here.parent / "example_dags" / f"{EXAMPLE}.py")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise SystemExit(f"{EXAMPLE}.py not found (looked in {looked}); reinstall airflow-provider-midjourney")


def register_assets_for_dag_test(dag: Any) -> None:
    """Register the DAG's assets before ``dag.test()`` on Airflow 3.0 (a no-op on 3.1 and later).

    Airflow 3.0's ``dag.test()`` does not register them, so a task with an ``Asset`` outlet (the
    download step) fails as "inactive" (apache/airflow#51644); a real deployment's DAG processor
    registers them when it parses the file.
    """
    from airflow import __version__ as airflow_version

    major, minor = (int(part) for part in airflow_version.split(".")[:2])
    if (major, minor) >= (3, 1) or not any(task.outlets or task.inlets for task in dag.tasks):
        return
    from airflow.dag_processing.collection import AssetModelOperation
    from airflow.serialization.serialized_objects import SerializedDAG
    from airflow.utils.session import create_session

    scheduler_dag = SerializedDAG.deserialize_dag(SerializedDAG.serialize_dag(dag))
    with create_session() as session:
        operation = AssetModelOperation.collect({scheduler_dag.dag_id: scheduler_dag})
        assets = operation.sync_assets(session=session)
        session.flush()
        operation.activate_assets_if_possible(assets.values(), session=session)


def _local(uri: str) -> str:
    return uri[len("file://") :] if uri.startswith("file://") else uri


def _xcom(dag_id: str, run_id: str, task_id: str, map_index: int = -1, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id, key=key, map_index=map_index)
            .one_or_none()
        )
        return XComModel.deserialize_value(row) if row is not None else None


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="midjourney-demo-"))
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(_example_source(), dags / f"{EXAMPLE}.py")
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("DEMO_LOG_LEVEL", "WARNING"),
        }
    )
    backend = os.environ.get("MIDJOURNEY_BACKEND", "useapi_v3").strip().lower()
    if backend not in BACKENDS:
        raise SystemExit(f"MIDJOURNEY_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}")
    conn_type = BACKENDS[backend]
    token = (os.environ.get("MIDJOURNEY_API_TOKEN") or "").strip()
    with ExitStack() as stack:
        if token or os.environ.get("MIDJOURNEY_BASE_URL"):  # a real server (a proxy may need no token)
            from airflow_provider_midjourney.hooks.base import hook_class_for

            base_url = os.environ.get("MIDJOURNEY_BASE_URL") or hook_class_for(conn_type, "demo").default_base_url
            if not base_url:
                raise SystemExit(f"MIDJOURNEY_BASE_URL: the {backend} backend has no default server; give its URL")
            print(f"Backend {backend}: using the real API at {base_url}")
        else:
            from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator

            token = "demo-token"
            emulator = stack.enter_context(
                MidjourneyEmulator(
                    token=token, timings=JobTimings(start_after=0.2, progress_after=0.5, complete_after=2.0)
                )
            )
            base_url = emulator.base_url
            os.environ.setdefault("MIDJOURNEY_POLL_INTERVAL", "0.5")
            print(f"Backend {backend}: no MIDJOURNEY_API_TOKEN, using the embedded emulator at {base_url}")
        os.environ["AIRFLOW_CONN_MIDJOURNEY_DEFAULT"] = json.dumps(
            {"conn_type": conn_type, "host": base_url, "password": token}
        )
        return _run()


def _run() -> int:
    import importlib.util

    from airflow.utils import db

    db.initdb()
    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{EXAMPLE}.py"
    spec = importlib.util.spec_from_file_location("demo_dag", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run_conf = {"prompt": os.environ["MIDJOURNEY_PROMPT"]} if os.environ.get("MIDJOURNEY_PROMPT") else None
    register_assets_for_dag_test(module.dag)
    started = time.monotonic()
    dag_run = module.dag.test(run_conf=run_conf)
    elapsed = time.monotonic() - started
    print(f"\nDAG run {dag_run.run_id}: {dag_run.state}")
    imagine = _xcom(EXAMPLE, dag_run.run_id, "imagine")
    if imagine:
        print(f"imagine  job {imagine['job_id']}  backend {imagine.get('backend')}  grid {imagine['grid_url']}")
        for url in imagine["image_urls"]:
            print(f"         image {url}")
    for index in range(4):
        upscale = _xcom(EXAMPLE, dag_run.run_id, "upscale", map_index=index)
        if upscale:
            print(f"U{index + 1}       job {upscale['job_id']}  image {(upscale['image_urls'] or [None])[0]}")
    seed = _xcom(EXAMPLE, dag_run.run_id, "seed")
    if seed:
        print(f"seed     job {seed['job_id']}  seed {seed['seed']}")
    else:
        print("seed     skipped: this backend has no seed")
    stored = _xcom(EXAMPLE, dag_run.run_id, "download")
    if stored:
        download = dag_run.get_task_instance("download")
        took = (download.end_date - download.start_date).total_seconds() if download and download.end_date else 0.0
        print(f"\nStored {len(stored)} file(s); the download task took {took:.2f} s (the DAG run {elapsed:.1f} s):")
        for item in stored:
            note = "  (already there)" if item.get("skipped") else ""
            print(f"  {_local(item['uri'])}  {item['size']} bytes{note}")
    sheet = _xcom(EXAMPLE, dag_run.run_id, "download", key="contact_sheet")
    if sheet:
        print(f"Contact sheet: {_local(sheet)}")
    return 0 if str(dag_run.state) == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
