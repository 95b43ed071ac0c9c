"""Neutral requests for Midjourney video: animate a picture, extend a clip.

One vocabulary for every backend: pictures and clips are numbered 1-4 (as the grid's U1-U4), motion is
``low``/``high``, resolution ``sd``/``hd``. Each backend's hook translates (0-based indexes,
``manual``/``bs``, prompt flags) and refuses, before any HTTP call, what its API cannot do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError
from airflow_provider_midjourney.input_checks import checked_job_id, checked_optional_url, checked_prompt
from airflow_provider_midjourney.job_requests import JobOptions
from airflow_provider_midjourney.vocabulary import JobStatus

if TYPE_CHECKING:
    from airflow_provider_midjourney.job import MidjourneyJob

Motion = Literal["low", "high"]
Resolution = Literal["sd", "hd"]
#: Midjourney's own ``--bs`` values; vendors accept 1, 2 or 4 (trueai's proxy also 3).
BATCH_SIZES = (1, 2, 4)
MAX_EXTENSIONS = 4


class VideoRequest(JobOptions):
    """Animate one picture into a short clip.

    The start frame is either picture ``index`` (1-4) of the finished image job ``job_id``, or
    ``image``: a public http(s) URL. ``end_image`` (a URL) and ``loop`` are exclusive.
    """

    job_verb: ClassVar[str] = "video"

    job_id: str | None = None
    index: int | None = Field(None, ge=1, le=4)
    image: str | None = None
    prompt: str | None = None
    motion: Motion | None = None
    end_image: str | None = None
    loop: bool = False
    resolution: Resolution | None = None
    batch_size: int | None = None

    @field_validator("job_id")
    @classmethod
    def _job_id(cls, value: str | None) -> str | None:
        return None if value is None else checked_job_id(value)

    @field_validator("image", "end_image")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return checked_optional_url(value)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str | None) -> str | None:
        return checked_prompt(value, required=False)

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, value: int | None) -> int | None:
        if value is not None and value not in BATCH_SIZES:
            raise ValueError(f"must be one of {', '.join(map(str, BATCH_SIZES))}, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_start_frame(self) -> VideoRequest:
        if (self.job_id is None) == (self.image is None):
            raise ValueError("give the start frame either as job_id + index (a finished image job) or as image (a URL)")
        if self.job_id is not None and self.index is None:
            raise ValueError("index (1-4) is required with job_id: which picture of the job to animate")
        if self.image is not None and self.index is not None:
            raise ValueError("index is only used with job_id, not with image")
        if self.loop and self.end_image:
            raise ValueError("loop and end_image are exclusive (a loop ends on its start frame)")
        return self


class VideoExtendRequest(JobOptions):
    """Extend clip ``index`` (1-4) of the finished video job ``job_id`` by about four seconds."""

    job_verb: ClassVar[str] = "video_extend"

    job_id: str
    index: int = Field(ge=1, le=4)
    prompt: str | None = None
    motion: Motion | None = None

    @field_validator("job_id")
    @classmethod
    def _job_id(cls, value: str) -> str:
        return checked_job_id(value)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str | None) -> str | None:
        return checked_prompt(value, required=False)


def finished_parent(job: MidjourneyJob, field: str = "job_id") -> MidjourneyJob:
    """``job`` if it completed; else an error naming ``field`` (nothing is created on an unfinished parent)."""
    if job.status != JobStatus.COMPLETED:
        raise MidjourneyInvalidRequestError(
            f"{field}: job {job.job_id} is {job.status}, not completed; video starts from a finished job"
        )
    return job


def start_frame_url(parent: MidjourneyJob, index: int) -> str:
    """Picture ``index`` (1-4) of a finished image job, as a URL a vendor can fetch.

    A job with one picture (an upscale) has only picture 1. A backend that returns only the grid
    (ImaginePro) names no separate pictures: the caller is told to pass an upscale or a URL.
    """
    finished_parent(parent)
    pictures = parent.image_urls
    if not pictures:
        raise MidjourneyInvalidRequestError(
            f"job_id: job {parent.job_id} names no separate pictures on the {parent.backend} backend (only a"
            " grid); animate an upscale (U1-U4 job, index=1) or pass image= with a picture's URL"
        )
    if index > len(pictures):
        raise MidjourneyInvalidRequestError(
            f"index: job {parent.job_id} has {len(pictures)} picture(s), so index must be 1-{len(pictures)},"
            f" got {index}"
        )
    return pictures[index - 1]


def video_prompt_flags(request: VideoRequest, start_url: str) -> str:
    """Midjourney's own video prompt: ``<start image> <text> --video --motion ... --end ... --loop --bs n``.

    For backends that take video as an ``/imagine`` prompt (useapi v3, and prompt-flag vendors).
    """
    parts = [start_url]
    if request.prompt:
        parts.append(request.prompt.strip())
    parts.append("--video")
    if request.motion:
        parts.append(f"--motion {request.motion}")
    if request.end_image:
        parts.append(f"--end {request.end_image}")
    if request.loop:
        parts.append("--loop")
    if request.batch_size:
        parts.append(f"--bs {request.batch_size}")
    return " ".join(parts)
