"""Reads from Airflow's metadata database, in the api-server (the caller checked access first).

XCom values are read the way Airflow's own XCom route reads them: rows straight from the
database, decoded with ``XComModel.deserialize_value``. A task whose XCom cannot be decoded shows
as "no Midjourney result" instead of failing the page.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_midjourney.plugins.results import (
    JOB_ID_XCOM_KEY,
    PICK_XCOM_KEY,
    TaskPictures,
    read_task,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

RETURN_VALUE = "return_value"
MAX_TASKS = 200  # task instances shown on one run page


@dataclass
class TaskEntry:
    """One task instance and what its XCom says."""

    task_id: str
    map_index: int
    state: str | None
    operator: str | None
    pictures: TaskPictures
    #: A button task's rendered ``button`` and ``job_id`` (its parent job), for naming its card.
    button: str | None = None
    parent_job_id: str | None = None

    @property
    def is_midjourney(self) -> bool:
        return self.pictures.kind != "none" or (self.operator or "").startswith("Midjourney")


def _decode(row: Any) -> Any:
    from airflow.models.xcom import XComModel

    try:
        return XComModel.deserialize_value(row)
    except Exception:
        try:
            return json.loads(row.value) if isinstance(row.value, (str, bytes)) else row.value
        except (TypeError, ValueError):
            return None


def _xcoms(
    session: Session, dag_id: str, run_id: str, task_id: str | None, map_index: int | None
) -> dict[tuple[str, int, str], Any]:
    """Every relevant XCom of a run (or of one task of it): (task_id, map_index, key) -> value."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    query = select(XComModel).where(
        XComModel.dag_id == dag_id,
        XComModel.run_id == run_id,
        XComModel.key.in_((RETURN_VALUE, PICK_XCOM_KEY, JOB_ID_XCOM_KEY)),
    )
    if task_id is not None:
        query = query.where(XComModel.task_id == task_id)
    if map_index is not None:
        query = query.where(XComModel.map_index == map_index)
    return {(row.task_id, row.map_index, row.key): _decode(row) for row in session.scalars(query)}


def _event_extras(session: Session, dag_id: str, run_id: str, task_id: str | None) -> dict[tuple[str, int], Any]:
    """The ``extra`` of asset events the run's tasks emitted (downloads put job ids, prompts and their
    stored files there). A task instance's events are merged: ``files`` of every try, the rest of the
    latest. Only a running task writes events with a source task: the REST API cannot forge them."""
    from airflow.models.asset import AssetEvent
    from sqlalchemy import select

    query = select(AssetEvent).where(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run_id)
    if task_id is not None:
        query = query.where(AssetEvent.source_task_id == task_id)
    merged: dict[tuple[str, int], Any] = {}
    for event in session.scalars(query.order_by(AssetEvent.id)):
        index = int(event.source_map_index if event.source_map_index is not None else -1)
        key = (str(event.source_task_id), index)
        extra = dict(event.extra) if isinstance(event.extra, dict) else {}
        files = list(merged.get(key, {}).get("files", []))
        files += (
            [f for f in extra.get("files", []) if isinstance(f, str)] if isinstance(extra.get("files"), list) else []
        )
        merged[key] = {**extra, "files": files}
    return merged


def _buttons(session: Session, dag_id: str, run_id: str, task_id: str | None) -> dict[tuple[str, int], Any]:
    """(task_id, map_index) -> (button, parent job id) from the rendered template fields of button tasks."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as RTIF
    from sqlalchemy import select

    query = select(RTIF.task_id, RTIF.map_index, RTIF.rendered_fields).where(
        RTIF.dag_id == dag_id, RTIF.run_id == run_id
    )
    if task_id is not None:
        query = query.where(RTIF.task_id == task_id)
    found = {}
    for row_task, row_map, fields in session.execute(query.limit(MAX_TASKS)):
        if isinstance(fields, dict) and isinstance(fields.get("button"), str):
            parent = fields.get("job_id")
            found[(row_task, row_map)] = (fields["button"][:40], parent[:200] if isinstance(parent, str) else None)
    return found


def task_entries(
    session: Session, dag_id: str, run_id: str, task_id: str | None = None, map_index: int | None = None
) -> list[TaskEntry]:
    """The run's task instances (or one task's, mapped ones included, or one of them) in task and map order."""
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    query = select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
    if task_id is not None:
        query = query.where(TaskInstance.task_id == task_id)
    if map_index is not None:
        query = query.where(TaskInstance.map_index == map_index)
    instances = session.scalars(query.limit(MAX_TASKS)).all()
    xcoms = _xcoms(session, dag_id, run_id, task_id, map_index)
    extras = _event_extras(session, dag_id, run_id, task_id)
    buttons = _buttons(session, dag_id, run_id, task_id)
    entries = []
    for ti in instances:
        key = (ti.task_id, ti.map_index)
        pictures = read_task(
            xcoms.get((*key, RETURN_VALUE)),
            pick=xcoms.get((*key, PICK_XCOM_KEY)),
            job_id=xcoms.get((*key, JOB_ID_XCOM_KEY)),
            event_extra=extras.get(key),
        )
        state = str(ti.state.value if hasattr(ti.state, "value") else ti.state) if ti.state else None
        button, parent = buttons.get(key, (None, None))
        entries.append(TaskEntry(ti.task_id, ti.map_index, state, ti.operator, pictures, button, parent))
    # DAG order; tasks the DAG no longer has go last, in the order they first started.
    order = dag_task_order(session, dag_id)
    started: dict[str, str] = {}
    for ti in instances:
        stamp = ti.start_date.isoformat() if ti.start_date else "~"
        started[ti.task_id] = min(started.get(ti.task_id, "~"), stamp)
    entries.sort(
        key=lambda entry: (order.get(entry.task_id, len(order)), started[entry.task_id], entry.task_id, entry.map_index)
    )
    return entries


def dag_task_order(session: Session, dag_id: str) -> dict[str, int]:
    """Each task's place in its DAG's latest serialized version; empty when that cannot be read."""
    try:
        from airflow.models.serialized_dag import SerializedDagModel

        dag = SerializedDagModel.get_dag(dag_id, session=session)
        downstream = {task_id: list(task.downstream_task_ids) for task_id, task in dag.task_dict.items()} if dag else {}
    except Exception:  # an unreadable DAG still shows its run, in start order
        return {}
    return {task_id: place for place, task_id in enumerate(topological_order(downstream))}


def topological_order(downstream: Mapping[str, list[str]]) -> list[str]:
    """Upstream before downstream; among tasks free to go, the one declared first (Kahn, O(V+E)).
    Tasks on a cycle (not a valid DAG) follow in declared order."""
    declared = {task_id: n for n, task_id in enumerate(downstream)}
    waiting = dict.fromkeys(downstream, 0)
    for children in downstream.values():
        for child in children:
            if child in waiting:
                waiting[child] += 1
    ready = [declared[task_id] for task_id, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    names = list(downstream)
    order: list[str] = []
    while ready:
        task_id = names[heapq.heappop(ready)]
        order.append(task_id)
        for child in downstream[task_id]:
            if child in waiting:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, declared[child])
    placed = set(order)
    return order + [task_id for task_id in names if task_id not in placed]


def run_exists(session: Session, dag_id: str, run_id: str) -> bool:
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    return session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)) is not None
