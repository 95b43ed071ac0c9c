"""A throwaway Airflow metadata DB (SQLite) with deferred task instances, for the real-triggerer benchmark.

Not a test module and not part of the package. The rows are made through Airflow's own models
(``DagRun``, ``TaskInstance``, ``Trigger.from_object``, ``Connection``), the way a task's
``defer()`` leaves them: the task instance in state ``deferred`` with ``trigger_id`` and
``next_method`` set, the trigger row holding the serialised (encrypted) trigger kwargs. The DAGs
come from a real DAG file, parsed and serialised by ``airflow dags reserialize``, so every task
instance has a DAG version as the triggerer requires.

Import Airflow only after :func:`airflow_env` has been applied to ``os.environ``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFERRED_DAG = "midjourney_bench_deferred"
WORKER_DAG = "midjourney_bench_worker"
RUN_ID = "bench"

DAG_FILE = '''\
"""Benchmark DAGs: the deferred tasks' DAG and the worker-polling comparator's."""
from datetime import datetime

from airflow.sdk import DAG, BaseOperator

from airflow_provider_midjourney.operators.midjourney import MidjourneyImagineOperator
from airflow_provider_midjourney.sensors.midjourney import MidjourneyJobSensor


class Probe(BaseOperator):
    """Stands for the loop probe's task instance; never executed."""

    def execute(self, context):
        return None


with DAG(DEFERRED_DAG, schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    # One task instance per waiting job (map index = job number), deferred as this operator does.
    MidjourneyImagineOperator(task_id="imagine", prompt="benchmark")
    Probe(task_id="probe")

with DAG(WORKER_DAG, schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    # The worker-polling comparator: a sensor in poke mode holds its worker slot while it waits.
    MidjourneyJobSensor(
        task_id="poll",
        job_id="{{ dag_run.conf['job_id'] }}",
        deferrable=False,
        mode="poke",
        poll_interval=float("{{POLL}}"),
        timeout=3600,
    )
'''


@dataclass(frozen=True)
class AirflowSettings:
    """The deployment knobs the benchmark varies (defaults: Airflow's, except where noted)."""

    capacity: int = 1000
    select_per_loop: int = 50
    watchdog_threshold: float = 0.2
    greenback_portal: bool = True
    gc_freeze: bool = False
    log_level: str = ""  # [logging] logging_level ("": Airflow's INFO); trigger log lines are supervisor work


def airflow_env(home: Path, settings: AirflowSettings, bench_dir: Path) -> dict[str, str]:
    """Environment for every Airflow process of one run (the parent applies it to itself too)."""
    from cryptography.fernet import Fernet

    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__TRIGGERER__CAPACITY": str(settings.capacity),
        "AIRFLOW__TRIGGERER__MAX_TRIGGER_TO_SELECT_PER_LOOP": str(settings.select_per_loop),
        "AIRFLOW__TRIGGERER__BLOCKED_MAIN_THREAD_WARNING_THRESHOLD": str(settings.watchdog_threshold),
        "PYTHONPATH": os.pathsep.join(p for p in (str(bench_dir), os.environ.get("PYTHONPATH", "")) if p),
    }
    if settings.log_level:
        env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = settings.log_level
    if not settings.greenback_portal:
        env["AIRFLOW_DISABLE_GREENBACK_PORTAL"] = "true"
    return env


def prepare_home(home: Path, env: dict[str, str], settings: AirflowSettings, poll_interval: float) -> None:
    """DAG file, ``airflow db migrate``, ``airflow dags reserialize``; optional local settings."""
    (home / "dags").mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    text = DAG_FILE.replace("DEFERRED_DAG", repr(DEFERRED_DAG)).replace("WORKER_DAG", repr(WORKER_DAG))
    (home / "dags" / "midjourney_bench.py").write_text(text.replace("{{POLL}}", str(poll_interval)))
    if settings.gc_freeze:
        # What a deployment can do: airflow_local_settings is imported at start-up, before the
        # triggerer forks its runner, so the runner inherits a frozen start-up heap.
        (home / "config").mkdir(exist_ok=True)
        (home / "config" / "airflow_local_settings.py").write_text(
            '"""Freeze the start-up heap: full GCs of the triggerer skip it."""\nimport gc\n\ngc.freeze()\n'
        )
    full_env = {**os.environ, **env}
    airflow = str(Path(sys.executable).with_name("airflow"))
    for command in (["db", "migrate"], ["dags", "reserialize"]):
        done = subprocess.run([airflow, *command], env=full_env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")


def add_connection(base_url: str, token: str) -> None:
    """The connection row, as ``airflow connections add`` would store it (password encrypted)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(Connection(conn_id="midjourney_default", conn_type="midjourney", host=base_url, password=token))


def _dag_version(dag_id: str, session: Any) -> tuple[Any, Any]:
    from airflow.models.dag_version import DagVersion
    from airflow.models.dagbag import DBDagBag

    dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
    version = DagVersion.get_latest_version(dag_id, session=session)
    if dag is None or version is None:
        raise RuntimeError(f"DAG {dag_id} is not serialised: did `airflow dags reserialize` see the file?")
    return dag, version


def _dag_run(dag_id: str, run_id: str, session: Any, conf: dict[str, Any] | None = None, state: str = "running") -> Any:
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    now = datetime.now(UTC)
    run = DagRun(
        dag_id=dag_id,
        run_id=run_id,
        run_type=DagRunType.MANUAL,
        state=state,
        run_after=now,
        start_date=now,
        conf=conf,
        triggered_by=DagRunTriggeredByType.TEST,
    )
    session.add(run)
    return run


def create_deferred(
    triggers: list[Any], probe: Any, *, first_index: int, run_id: str = RUN_ID, new_run: bool = True
) -> None:
    """One deferred ``imagine`` task instance per trigger (map index ``first_index`` + i) and its trigger row.

    ``probe`` (or None) gets its own deferred ``probe`` task instance.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        dag, version = _dag_version(DEFERRED_DAG, session)
        if new_run:
            _dag_run(DEFERRED_DAG, run_id, session)
        rows = [Trigger.from_object(t) for t in triggers]
        probe_row = Trigger.from_object(probe) if probe is not None else None
        session.add_all([*rows, *([probe_row] if probe_row else [])])
        session.flush()  # trigger ids
        now = datetime.now(UTC)
        pairs: list[tuple[str, int, Any]] = [("imagine", first_index + i, row) for i, row in enumerate(rows)]
        if probe_row is not None:
            pairs.append(("probe", -1, probe_row))
        for task_id, index, row in pairs:
            ti = TaskInstance(dag.get_task(task_id), dag_version_id=version.id, run_id=run_id, map_index=index)
            ti.state = TaskInstanceState.DEFERRED
            ti.try_number = 1
            ti.start_date = now
            ti.trigger_id = row.id
            ti.next_method = "execute_complete"
            ti.next_kwargs = None
            ti.trigger_timeout = None
            session.add(ti)


def create_worker_run(run_id: str, job_id: str) -> Any:
    """A queued ``poll`` task instance in its own DAG run (conf: the job id); returns its DTO."""
    from airflow.executors.workloads import TaskInstanceDTO  # type: ignore[attr-defined]
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        dag, version = _dag_version(WORKER_DAG, session)
        _dag_run(WORKER_DAG, run_id, session, conf={"job_id": job_id})
        ti = TaskInstance(dag.get_task("poll"), dag_version_id=version.id, run_id=run_id, map_index=-1)
        ti.state = TaskInstanceState.QUEUED
        ti.try_number = 1
        ti.queue = "default"
        session.add(ti)
        session.flush()
        return TaskInstanceDTO.model_validate(ti, from_attributes=True)


def ti_states(task_id: str = "imagine", run_id: str = RUN_ID) -> dict[int, tuple[str, float, str | None]]:
    """map index -> (state, epoch of its last update, next_method) of the deferred DAG's task instances."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.map_index, TaskInstance.state, TaskInstance.updated_at, TaskInstance.next_method).where(
                TaskInstance.dag_id == DEFERRED_DAG, TaskInstance.task_id == task_id, TaskInstance.run_id == run_id
            )
        ).all()
    return {int(m): (str(s), u.timestamp() if u else float("nan"), n) for m, s, u, n in rows}


def count_deferred(run_id: str = RUN_ID) -> int:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    TaskInstance.dag_id == DEFERRED_DAG,
                    TaskInstance.task_id == "imagine",
                    TaskInstance.run_id == run_id,
                    TaskInstance.state == "deferred",
                )
            )
            or 0
        )
