"""A dialect's own job ids over the engine's: each id a vendor hands out names one engine job.

ImaginePro's ``messageId``, TTAPI's ``jobId`` and Legnext's ``job_id`` are all uuid4s the dialect
keeps in a :class:`VendorJobs` table with its own record of the request; jobs the engine forgot
(``reset()``) answer 404 through the engine when read.
"""

from __future__ import annotations

import threading
import uuid
from typing import Generic, Protocol, TypeVar

from airflow_provider_midjourney.testing.jobs import ApiError


class HasEngineId(Protocol):
    engine_id: str


R = TypeVar("R", bound=HasEngineId)


class VendorJobs(Generic[R]):
    """Vendor job id -> the dialect's record of it (which carries the engine's job id).

    ``missing`` is the 404 text (``{id}``: the id asked for). With ``one_id_per_job`` a record of an
    engine job that already has an id gets that id again (an upscale pressed twice is one job).
    """

    def __init__(self, missing: str = "Job {id} not found", *, one_id_per_job: bool = True) -> None:
        self._lock = threading.Lock()
        self._missing = missing
        self._one_id_per_job = one_id_per_job
        self._by_id: dict[str, R] = {}
        self._by_job: dict[str, str] = {}

    def add(self, record: R) -> str:
        with self._lock:
            existing = self._by_job.get(record.engine_id) if self._one_id_per_job else None
            if existing is not None:
                return existing
            vendor_id = str(uuid.uuid4())
            self._by_id[vendor_id] = record
            self._by_job.setdefault(record.engine_id, vendor_id)
            return vendor_id

    def get(self, vendor_id: str) -> R:
        with self._lock:
            record = self._by_id.get(vendor_id)
        if record is None:
            raise ApiError(404, self._missing.format(id=vendor_id))
        return record

    def oldest_first(self) -> list[tuple[str, R]]:
        with self._lock:
            return list(self._by_id.items())

    def newest_first(self) -> list[tuple[str, R]]:
        return self.oldest_first()[::-1]

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_id)
