"""Video operators: animate a picture into a short clip, extend a clip, on any backend that can.

Both build the neutral requests of :mod:`airflow_provider_midjourney.video_requests`; each
backend's hook translates them (index bases, field names, prompt flags) and refuses, before any
HTTP call, what its API cannot do. Everything else (reattaching retries, deferral, cancelling on
timeout, ``if_unsupported``) is :class:`~.midjourney.MidjourneyBaseOperator`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_midjourney.operators.base import MidjourneyBaseOperator

if TYPE_CHECKING:
    from airflow_provider_midjourney.job_requests import JobOptions

__all__ = ["MidjourneyVideoExtendOperator", "MidjourneyVideoOperator"]


class MidjourneyVideoOperator(MidjourneyBaseOperator):
    """Animate one picture into a short clip (Midjourney's "Animate"); ``result["video_urls"]`` holds the clips.

    The start frame is either picture ``index`` (1-4, as U1-U4) of the finished image job ``job_id``,
    or ``image``: a public http(s) URL.

    :param prompt: what should happen in the clip (some backends require one).
    :param motion: ``low`` (Midjourney's default) or ``high``.
    :param end_image: URL of the last frame; exclusive with ``loop``.
    :param loop: end on the start frame.
    :param resolution: ``sd`` (480p) or ``hd`` (720p).
    :param batch_size: clips per job: 1, 2 or 4.
    """

    template_fields: Sequence[str] = (
        "job_id",
        "index",
        "image",
        "prompt",
        "motion",
        "end_image",
        "resolution",
        *MidjourneyBaseOperator.template_fields,
    )

    def __init__(
        self,
        *,
        job_id: str | None = None,
        index: int | str | None = None,
        image: str | None = None,
        prompt: str | None = None,
        motion: str | None = None,
        end_image: str | None = None,
        loop: bool = False,
        resolution: str | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.index = index
        self.image = image
        self.prompt = prompt
        self.motion = motion
        self.end_image = end_image
        self.loop = loop
        self.resolution = resolution
        self.batch_size = batch_size

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        from airflow_provider_midjourney.video_requests import VideoRequest

        return VideoRequest.build(
            job_id=self.job_id or None,
            index=self.index if self.index not in ("", None) else None,
            image=self.image or None,
            prompt=self.prompt,
            motion=self.motion or None,
            end_image=self.end_image or None,
            loop=self.loop,
            resolution=self.resolution or None,
            batch_size=self.batch_size,
            **options,
        )


class MidjourneyVideoExtendOperator(MidjourneyBaseOperator):
    """Extend clip ``index`` (1-4) of the finished video job ``job_id`` by about four seconds.

    :param prompt: a new prompt for the extension (Midjourney's "manual" extend); none: the clip's own.
    :param motion: ``low`` or ``high``.
    """

    template_fields: Sequence[str] = ("job_id", "index", "prompt", "motion", *MidjourneyBaseOperator.template_fields)

    def __init__(
        self,
        *,
        job_id: str,
        index: int | str = 1,
        prompt: str | None = None,
        motion: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.index = index
        self.prompt = prompt
        self.motion = motion

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        from airflow_provider_midjourney.video_requests import VideoExtendRequest

        return VideoExtendRequest.build(
            job_id=self.job_id, index=self.index, prompt=self.prompt, motion=self.motion or None, **options
        )
