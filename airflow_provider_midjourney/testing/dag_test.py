"""Running a DAG in-process with ``dag.test()`` (the demo and the tests): assets before Airflow 3.3, one
in-process Execution API per process, XCom reads.

Imports Airflow only inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import functools
from typing import Any


def reuse_in_process_execution_api() -> None:
    """Let ``dag.test()`` build Airflow's in-process Execution API once per process, as Airflow 3.3 does.

    Before 3.3, ``dag.test()`` makes a new one for every task it starts, and its first request
    builds every versioned router of the API: about 2.5 s of CPU per task on Airflow 3.1/3.2, most
    of a DAG test's time there, and one event-loop thread left behind each time. Airflow 3.3 caches
    it (``functools.lru_cache`` on ``in_process_api_server``); this does the same on older versions
    and changes nothing on 3.3 or when called again. Call it before ``dag.test()``.
    """
    from airflow.sdk.execution_time import supervisor

    build = supervisor.in_process_api_server
    if not hasattr(build, "cache_info"):  # Airflow 3.3's is an lru_cache already
        supervisor.in_process_api_server = functools.cache(build)  # type: ignore[assignment]


def register_assets_for_dag_test(dag: Any) -> None:
    """Register the DAG's assets before ``dag.test()`` on Airflow 3.0-3.2 (a no-op from 3.3).

    Airflow 3.0's ``dag.test()`` does not register them, so a task with an ``Asset`` outlet (the
    download step) fails as "inactive" (apache/airflow#51644); 3.1 and 3.2 write a DAG to the
    database only while it has no version yet, so an outlet changed since (another destination)
    stays unknown and its events are dropped. A real deployment's DAG processor registers them
    when it parses the file.
    """
    from airflow import __version__ as airflow_version

    major, minor = (int(part) for part in airflow_version.split(".")[:2])
    if (major, minor) >= (3, 3) or not any(task.outlets or task.inlets for task in dag.tasks):
        return
    if (major, minor) >= (3, 1):
        _activate_outlets(dag)
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


def _activate_outlets(dag: Any) -> None:
    """Each ``Asset`` outlet known and active, as the dag processor leaves it (Airflow 3.1/3.2)."""
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.sdk import Asset
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        for outlet in (o for task in dag.tasks for o in task.outlets if isinstance(o, Asset)):
            known = select(AssetModel).where(AssetModel.name == outlet.name, AssetModel.uri == outlet.uri)
            model = session.scalar(known)
            if model is None:
                model = AssetModel(name=outlet.name, uri=outlet.uri, group=outlet.group, extra=outlet.extra)
                session.add(model)
            if session.scalar(select(AssetActive).where(AssetActive.name == outlet.name)) is None:
                session.add(AssetActive.for_asset(model))


def xcom_value(dag_id: str, run_id: str, task_id: str, map_index: int = -1, key: str = "return_value") -> Any:
    """The XCom value a task instance stored under ``key``, or None."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id, key=key, map_index=map_index)
            .one_or_none()
        )
        return XComModel.deserialize_value(row) if row is not None else None
