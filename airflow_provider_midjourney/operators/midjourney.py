"""The job operators: imagine, buttons, blend, describe, seed and settings, on any backend.

Each builds its neutral request; the shared flow (submit or reattach, wait in the triggerer, the
typed result, failover and admission) is :class:`~airflow_provider_midjourney.operators.base.MidjourneyBaseOperator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_midjourney.operators.base import STATE_KEY, MidjourneyBaseOperator, run_bounded, task_reply_ref

# Only what a constructor needs is imported here: a DAG file imports this module on every parse.
if TYPE_CHECKING:
    from airflow_provider_midjourney.image_intake import ImageSource
    from airflow_provider_midjourney.job_requests import JobOptions
    from airflow_provider_midjourney.vocabulary import BlendDimensions, SettingsCommand

__all__ = [
    "STATE_KEY",
    "MidjourneyBaseOperator",
    "MidjourneyBlendOperator",
    "MidjourneyButtonOperator",
    "MidjourneyDescribeOperator",
    "MidjourneyImagineOperator",
    "MidjourneySeedOperator",
    "MidjourneySettingsOperator",
    "run_bounded",
    "task_reply_ref",
]


class MidjourneyImagineOperator(MidjourneyBaseOperator):
    """``/imagine``: a grid of four images (or a video with ``--video``) from a prompt."""

    template_fields: Sequence[str] = ("prompt", *MidjourneyBaseOperator.template_fields)

    def __init__(self, *, prompt: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        from airflow_provider_midjourney.job_requests import ImagineRequest

        return ImagineRequest.build(prompt=self.prompt, **options)


class MidjourneyButtonOperator(MidjourneyBaseOperator):
    """Press a button (U1-U4, V1-V4, zoom, pan, 🔄...) of a completed job.

    U1-U4 run once per parent: pressing one again returns the existing upscale, which is success.
    ``job_id`` may be the parent task's whole result (``imagine.output``): the button is then
    pressed on the connection that ran the parent (its ``conn_id``; docs/failover.md).
    """

    template_fields: Sequence[str] = ("job_id", "button", "prompt", "mask", *MidjourneyBaseOperator.template_fields)

    def __init__(
        self,
        *,
        job_id: str,
        button: str,
        prompt: str | None = None,
        mask: str | None = None,
        allow_unknown_button: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.button = button
        self.prompt = prompt
        self.mask = mask
        self.allow_unknown_button = allow_unknown_button

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        from airflow_provider_midjourney.job_requests import ButtonRequest

        options.pop("channel")  # a button job always runs in its parent's channel
        return ButtonRequest.build(
            job_id=self.job_id,
            button=self.button,
            prompt=self.prompt,
            mask=self.mask,
            allow_unknown_button=self.allow_unknown_button,
            **options,
        )


class MidjourneyBlendOperator(MidjourneyBaseOperator):
    """``/blend``: 2-5 images (URLs or local paths, uploaded as multipart)."""

    template_fields: Sequence[str] = ("images", "dimensions", *MidjourneyBaseOperator.template_fields)

    def __init__(self, *, images: Sequence[ImageSource], dimensions: BlendDimensions = "Square", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.images = images
        self.dimensions = dimensions

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        from airflow_provider_midjourney.job_requests import BlendRequest

        return BlendRequest.from_images(self.images, blend_dimensions=self.dimensions, **options)


class MidjourneyDescribeOperator(MidjourneyBaseOperator):
    """``/describe``: four prompt suggestions for an image (URL or local path)."""

    template_fields: Sequence[str] = ("image", *MidjourneyBaseOperator.template_fields)

    def __init__(self, *, image: ImageSource, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image = image

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        from airflow_provider_midjourney.job_requests import DescribeRequest

        return DescribeRequest.from_image(self.image, **options)


class MidjourneySeedOperator(MidjourneyBaseOperator):
    """``/seed``: the seed of a completed image job (``result["seed"]``).

    ``job_id`` may be the parent task's whole result, as for :class:`MidjourneyButtonOperator`.
    """

    template_fields: Sequence[str] = ("job_id", *MidjourneyBaseOperator.template_fields)

    def __init__(self, *, job_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        from airflow_provider_midjourney.job_requests import SeedRequest

        options.pop("channel")  # seed jobs run in the parent's channel
        return SeedRequest.build(job_id=self.job_id, **options)


class MidjourneySettingsOperator(MidjourneyBaseOperator):
    """The settings family: settings, info, fast, relax, turbo, remix, variability.

    ``result["settings"]`` holds what the command reports (all settings, or the speed modes, or
    the toggled mode).
    """

    template_fields: Sequence[str] = ("command", *MidjourneyBaseOperator.template_fields)

    def __init__(self, *, command: SettingsCommand = "settings", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.command = command

    def build_request(self, options: dict[str, Any]) -> JobOptions:
        from airflow_provider_midjourney.job_requests import SettingsRequest

        return SettingsRequest.build(command=self.command, **options)
