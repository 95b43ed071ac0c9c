"""Running a DAG in-process with ``dag.test()`` (the demo and the tests): assets on Airflow 3.0, XCom reads.

Imports Airflow only inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

from typing import Any


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
