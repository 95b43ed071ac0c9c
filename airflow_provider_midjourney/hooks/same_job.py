"""An answer about the job that was asked for, or an error: every backend's ``fetch_job`` and
``afetch_job`` are wrapped with these (by the seam's ``__init_subclass__``), so a poll answered about
another job (a hostile or broken API) can never finish the wrong task."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from airflow_provider_midjourney.exceptions import MidjourneyMalformedAnswerError

if TYPE_CHECKING:
    from airflow_provider_midjourney.job import MidjourneyJob


def same_job(job: MidjourneyJob, job_id: str) -> MidjourneyJob:
    if job.job_id != job_id:
        raise MidjourneyMalformedAnswerError(
            f"Asked the {job.backend} API for job {job_id}, it answered about job {job.job_id[:80]}: refused"
        )
    return job


def checked_fetch(fetch: Any) -> Any:
    @functools.wraps(fetch)
    def fetch_job(self: Any, job_id: str) -> MidjourneyJob:
        return same_job(fetch(self, job_id), job_id)

    return fetch_job


def checked_afetch(afetch: Any) -> Any:
    @functools.wraps(afetch)
    async def afetch_job(self: Any, job_id: str) -> MidjourneyJob:
        return same_job(await afetch(self, job_id), job_id)

    return afetch_job
