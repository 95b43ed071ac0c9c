"""A trigger that measures the event loop it runs in: the real triggerer's loop, from inside.

Not part of the package. ``benchmarks/real_triggerer.py`` puts one of these in the triggerer next
to the Midjourney triggers (its own deferred task instance), with this directory on
``PYTHONPATH``. Every ``interval`` it sleeps and records how late it woke (loop lag, like the
triggerer's ``block_watchdog`` but at 50 ms and without its 0.2 s threshold); every second it
appends one line to ``path``: wall time, the largest lag of that second, the number of asyncio
tasks in the loop (each running trigger is one), and the garbage collector's pauses (full
collections and the longest pause) in the runner process. One short ``write`` per second is the
only blocking call it makes.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class LoopProbeTrigger(BaseTrigger):
    """Record event-loop lag and GC pauses until ``until`` (epoch s), then fire once."""

    def __init__(self, path: str, until: float, interval: float = 0.05) -> None:
        super().__init__()
        self.path = path
        self.until = float(until)
        self.interval = float(interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"path": self.path, "until": self.until, "interval": self.interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        pauses: list[tuple[int, float]] = []
        started = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                pauses.append((info["generation"], time.perf_counter() - started[0]))

        gc.callbacks.append(on_gc)
        try:
            with open(self.path, "a", buffering=1) as out:  # noqa: ASYNC230 - once, one line a second
                second_max, next_report = 0.0, time.time() + 1.0
                while time.time() < self.until:
                    before = time.perf_counter()
                    await asyncio.sleep(self.interval)
                    second_max = max(second_max, time.perf_counter() - before - self.interval)
                    now = time.time()
                    if now >= next_report:
                        full = [p for g, p in pauses if g == 2]
                        line = {
                            "t": now,
                            "lag": round(second_max, 4),
                            "tasks": len(asyncio.all_tasks()),
                            "gc_max": round(max((p for _, p in pauses), default=0.0), 4),
                            "gc_full": len(full),
                            "gc_full_max": round(max(full, default=0.0), 4),
                        }
                        out.write(json.dumps(line) + "\n")
                        pauses.clear()
                        second_max, next_report = 0.0, now + 1.0
        finally:
            gc.callbacks.remove(on_gc)
        yield TriggerEvent({"status": "done"})
