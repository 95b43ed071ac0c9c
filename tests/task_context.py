"""What an operator's ``execute`` needs of its context, for tests that call operators directly."""

from __future__ import annotations

from typing import Any


class FakeTI:
    """A task instance that records its XComs."""

    def __init__(self, dag_id: str = "d", try_number: int = 1) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = dag_id, "r", "t", -1
        self.try_number = try_number
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class StateStore(dict[str, Any]):
    """Airflow 3.3's task state store, as a dict."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value


def task_context(store: StateStore | None = None, **ti: Any) -> dict[str, Any]:
    return {"ti": FakeTI(**ti), "task_state_store": store}
