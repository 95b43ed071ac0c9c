"""Run the ``midjourney_imagine_upscale`` example DAG end to end and print what it made.

    python -m airflow_provider_midjourney.demo            # against the embedded emulator
    MIDJOURNEY_API_TOKEN=... python -m airflow_provider_midjourney.demo   # against the real API
    MIDJOURNEY_BACKEND=imaginepro python -m airflow_provider_midjourney.demo

``MIDJOURNEY_BACKEND`` picks the API by its registry name (:mod:`airflow_provider_midjourney.backends`):
``useapi_v3`` (default), ``imaginepro``, ``useapi_v2``, ``midjourney_proxy``... (the emulator serves
them all; ``MIDJOURNEY_EMULATOR_PROXY_FLAVOUR=superset`` switches its midjourney-proxy routes to the
maintained superset; ``MIDJOURNEY_LEGNEXT_API=youchuan`` runs the ``legnext`` backend on Youchuan's
``/v1/tob/`` prefix and auth, with the app id from ``MIDJOURNEY_YOUCHUAN_APP``). The example's seed task is
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

from airflow_provider_midjourney.backends import BACKENDS, backend_named
from airflow_provider_midjourney.testing.dag_test import (
    register_assets_for_dag_test,
    reuse_in_process_execution_api,
    xcom_value,
)

EXAMPLE = "midjourney_imagine_upscale"


def example_dags_folder() -> Path:
    """The example DAGs: inside the package when installed from a wheel, at the top of a clone.

    The wheel carries the repository's ``example_dags/`` as ``airflow_provider_midjourney/example_dags``
    (see ``[tool.hatch.build.targets.wheel.force-include]``); an editable install reads the clone's.
    """
    here = Path(__file__).resolve().parent
    candidates = (here / "example_dags", here.parent / "example_dags")
    for candidate in candidates:
        if (candidate / f"{EXAMPLE}.py").is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise SystemExit(f"{EXAMPLE}.py not found (looked in {looked}); reinstall airflow-provider-midjourney")


def _example_source() -> Path:
    return example_dags_folder() / f"{EXAMPLE}.py"


def _local(uri: str) -> str:
    return uri[len("file://") :] if uri.startswith("file://") else uri


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
    names = [b.name for b in BACKENDS]
    if backend not in names:
        raise SystemExit(f"MIDJOURNEY_BACKEND must be one of {', '.join(names)}, got {backend!r}")
    chosen = backend_named(backend)
    token = (os.environ.get("MIDJOURNEY_API_TOKEN") or "").strip()
    extra: dict[str, object] = {}
    with ExitStack() as stack:
        emulated = not (token or os.environ.get("MIDJOURNEY_BASE_URL"))
        if not emulated:  # a real server (a proxy may need no token)
            default_url = chosen.load_hook_class().default_base_url
            base_url = os.environ.get("MIDJOURNEY_BASE_URL") or default_url
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
            base_url, extra = emulator.base_url + chosen.emulator_path, dict(chosen.emulator_extra)
            os.environ.setdefault("MIDJOURNEY_POLL_INTERVAL", "0.5")
            print(f"Backend {backend}: no MIDJOURNEY_API_TOKEN, using the embedded emulator at {base_url}")
        conn: dict[str, object] = {"conn_type": chosen.conn_type, "host": base_url, "password": token, "extra": extra}
        if backend == "legnext":
            conn.update(_legnext_settings(emulated=emulated))
        os.environ["AIRFLOW_CONN_MIDJOURNEY_DEFAULT"] = json.dumps(conn)
        return _run()


def _legnext_settings(*, emulated: bool) -> dict[str, object]:
    """``MIDJOURNEY_LEGNEXT_API``: ``legnext`` (default) or ``youchuan`` (app id: ``MIDJOURNEY_YOUCHUAN_APP``)."""
    api = os.environ.get("MIDJOURNEY_LEGNEXT_API", "legnext").strip().lower()
    if api not in ("legnext", "youchuan"):
        raise SystemExit(f"MIDJOURNEY_LEGNEXT_API must be legnext or youchuan, got {api!r}")
    settings: dict[str, object] = {"extra": {"api": api}}
    if api == "youchuan":
        app = os.environ.get("MIDJOURNEY_YOUCHUAN_APP", "demo-app" if emulated else "").strip()
        if not app:
            raise SystemExit("MIDJOURNEY_YOUCHUAN_APP: the Youchuan app id (x-youchuan-app) is needed")
        settings["login"] = app
        if not emulated and not os.environ.get("MIDJOURNEY_BASE_URL"):
            settings["host"] = ""  # the hook's Youchuan default, https://ali.youchuan.cn
    print(f"Legnext backend on the {api} API")
    return settings


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
    reuse_in_process_execution_api()
    started = time.monotonic()
    dag_run = module.dag.test(run_conf=run_conf)
    elapsed = time.monotonic() - started
    print(f"\nDAG run {dag_run.run_id}: {dag_run.state}")
    imagine = xcom_value(EXAMPLE, dag_run.run_id, "imagine")
    if imagine:
        print(f"imagine  job {imagine['job_id']}  backend {imagine.get('backend')}  grid {imagine['grid_url']}")
        for url in imagine["image_urls"]:
            print(f"         image {url}")
    for index in range(4):
        upscale = xcom_value(EXAMPLE, dag_run.run_id, "upscale", map_index=index)
        if upscale:
            print(f"U{index + 1}       job {upscale['job_id']}  image {(upscale['image_urls'] or [None])[0]}")
    seed = xcom_value(EXAMPLE, dag_run.run_id, "seed")
    if seed:
        print(f"seed     job {seed['job_id']}  seed {seed['seed']}")
    else:
        print("seed     skipped: this backend has no seed")
    stored = xcom_value(EXAMPLE, dag_run.run_id, "download")
    if stored:
        download = dag_run.get_task_instance("download")
        took = (download.end_date - download.start_date).total_seconds() if download and download.end_date else 0.0
        print(f"\nStored {len(stored)} file(s); the download task took {took:.2f} s (the DAG run {elapsed:.1f} s):")
        for item in stored:
            note = "  (already there)" if item.get("skipped") else ""
            print(f"  {_local(item['uri'])}  {item['size']} bytes{note}")
    sheet = xcom_value(EXAMPLE, dag_run.run_id, "download", key="contact_sheet")
    if sheet:
        print(f"Contact sheet: {_local(sheet)}")
    return 0 if str(dag_run.state) == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
