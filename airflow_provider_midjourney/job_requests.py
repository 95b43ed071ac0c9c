"""The job requests a task makes, the same on every backend; each wing turns them into its own wire.

Request models validate everything *before* any HTTP call and raise
:class:`~airflow_provider_midjourney.exceptions.MidjourneyInvalidRequestError` naming each field
(by its documented camelCase name, as the README lists them). They hold no vendor path or body:
``hooks/<backend>.py`` builds those.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from enum import Enum
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError
from airflow_provider_midjourney.image_intake import ImageBlob, ImageSource, image_from_source
from airflow_provider_midjourney.input_checks import (
    checked_channel,
    checked_http_url,
    checked_job_id,
    checked_optional_url,
    checked_prompt,
    has_control,
    is_blank,
)
from airflow_provider_midjourney.vocabulary import PROMPT_BUTTONS, BlendDimensions, Button, ReplyLevel, SettingsCommand

MAX_REPLY_LENGTH = 1024
MAX_BLEND_IMAGES = 5
MIN_BLEND_IMAGES = 2

_R = TypeVar("_R", bound="RequestModel")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class RequestModel(BaseModel):
    """Base of request models: camelCase on the wire, snake_case in Python, strict fields."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bytes_for_text(cls, data: Any) -> Any:
        # pydantic would decode b"a cat" into a prompt; bytes are only ever images (ImageBlob).
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(value, bytes | bytearray):
                    raise ValueError(f"{key}: expected text, got bytes")
                for text in value if isinstance(value, list | tuple) else [value]:
                    if isinstance(text, str) and not _is_utf8(text):
                        raise ValueError(
                            f"{key}: contains a lone surrogate (an invalid character such as \\ud800);"
                            " expected valid Unicode text"
                        )
        return data

    @classmethod
    def build(cls: type[_R], **fields: Any) -> _R:
        """Validate ``fields`` and raise one readable error naming every bad field."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise MidjourneyInvalidRequestError(_describe_errors(cls, exc)) from None

    def wire_fields(self, exclude: set[str] | None = None) -> dict[str, Any]:
        """The fields as the API names them, JSON-ready, without unset ones."""
        return self.model_dump(by_alias=True, exclude_none=True, exclude=exclude, mode="json")

    def field_values(self) -> dict[str, Any]:
        """Every field by its Python name (excluded ones too), ready for :meth:`build`."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def model_copy(self: _R, *, update: Any = None, deep: bool = False) -> _R:
        """A copy with ``update`` applied, validated again (pydantic's own copy skips validation,
        so a hook adding a connection's default channel could slip an unchecked value in)."""
        if not update:
            return super().model_copy(deep=deep)
        return type(self).build(**{**self.field_values(), **dict(update)})

    def fingerprint(self, backend: str = "") -> str:
        """A stable digest of what this request asks for (everything but ``replyRef``).

        Stored with a job's id, it tells a later try whether the stored job answers the request
        it is about to make: a cleared task whose prompt changed must not get the old job back.
        """
        fields: dict[str, Any] = {"type": type(self).__name__, "backend": backend}
        for name, value in sorted(self.field_values().items()):
            if name == "reply_ref" or value is None:
                continue
            if isinstance(value, ImageBlob):
                value = "sha256:" + hashlib.sha256(value.content).hexdigest()
            elif isinstance(value, Enum):
                value = value.value
            fields[name] = value
        encoded = json.dumps(fields, sort_keys=True, default=str, ensure_ascii=True).encode()
        return hashlib.sha256(encoded).hexdigest()


def _describe_errors(model: type[BaseModel], exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = [str(part) for part in error["loc"]]
        name = loc[0] if loc else model.__name__
        field = model.model_fields.get(name)
        if field is None:  # the location is already the wire name (validated by alias)
            wire = name
            python = next((n for n, f in model.model_fields.items() if f.alias == name), name)
        else:
            wire = field.alias or name
            python = name
        label = wire if wire == python else f"{wire} ({python})"
        if len(loc) > 1:
            label += "[" + "][".join(loc[1:]) + "]"
        message = str(error["msg"]).removeprefix("Value error, ")
        if not loc:
            label = model.__name__
        problems.append(f"{label}: {message}")
    return f"Invalid {model.__name__}: " + "; ".join(problems)


class JobOptions(RequestModel):
    """Options every job-creating endpoint accepts."""

    channel: str | None = None
    reply_url: str | None = Field(None, alias="replyUrl", max_length=MAX_REPLY_LENGTH)
    reply_ref: str | None = Field(None, alias="replyRef", max_length=MAX_REPLY_LENGTH)
    reply_level: ReplyLevel | None = Field(None, alias="replyLevel")

    job_verb: ClassVar[str] = ""

    @field_validator("channel")
    @classmethod
    def _channel_is_an_id(cls, value: str | None) -> str | None:
        return None if value is None else checked_channel(value)

    @field_validator("reply_url")
    @classmethod
    def _reply_url_is_http(cls, value: str | None) -> str | None:
        return None if value is None else checked_http_url(value)

    @field_validator("reply_ref")
    @classmethod
    def _reply_ref_is_text(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or has_control(value)):
            raise ValueError("must be non-blank text without control characters")
        return value

    @property
    def verb(self) -> str:
        """What the job does: ``imagine``, ``button``, ``blend``, ``describe``, ``seed`` or a settings command."""
        return self.job_verb


class ImagineRequest(JobOptions):
    job_verb: ClassVar[str] = "imagine"

    prompt: str

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        return checked_prompt(value, required=True) or value


class ButtonRequest(JobOptions):
    """Press a button of a completed job. Unknown labels need ``allow_unknown_button=True``."""

    job_verb: ClassVar[str] = "button"

    job_id: str = Field(alias="jobId")
    button: Button
    mask: str | None = None
    prompt: str | None = None
    allow_unknown_button: bool = Field(False, exclude=True)

    @field_validator("job_id")
    @classmethod
    def _job_id(cls, value: str) -> str:
        return checked_job_id(value)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str | None) -> str | None:
        return checked_prompt(value, required=False)

    @field_validator("mask")
    @classmethod
    def _mask(cls, value: str | None) -> str | None:
        if value is not None and (is_blank(value) or has_control(value)):
            raise ValueError("must be a base64 black-and-white mask, not blank text")
        return value

    @model_validator(mode="after")
    def _button_rules(self) -> ButtonRequest:
        if not self.button.is_known and not self.allow_unknown_button:
            known = ", ".join(b.value for b in Button)
            raise ValueError(
                f"button {self.button.value!r} is not a documented button (one of: {known});"
                " pass allow_unknown_button=True to send it anyway"
            )
        if self.button == Button.VARY_REGION and not self.mask:
            raise ValueError("mask is required for the 'Vary (Region)' button (a base64 black-and-white mask)")
        if self.mask and self.button != Button.VARY_REGION and self.button.is_known:
            raise ValueError(f"mask is only used by 'Vary (Region)', not by {self.button.value!r}")
        if self.button == Button.CUSTOM_ZOOM and not self.prompt:
            raise ValueError("prompt is required for the 'Custom Zoom' button (e.g. 'a cat --zoom 1.8')")
        if self.prompt and self.button.is_known and self.button not in PROMPT_BUTTONS:
            raise ValueError(
                f"prompt is not accepted by {self.button.value!r}; only Custom Zoom and, in Remix mode,"
                " V1-V4, Vary (Region/Strong/Subtle), the pan arrows and 🔄 take one"
            )
        return self


class SeedRequest(JobOptions):
    job_verb: ClassVar[str] = "seed"

    job_id: str = Field(alias="jobId")

    @field_validator("job_id")
    @classmethod
    def _job_id(cls, value: str) -> str:
        return checked_job_id(value)


class BlendRequest(JobOptions):
    """Blend 2-5 images; each position is a URL (``imageUrl_N``) or an upload (``imageBlob_N``)."""

    job_verb: ClassVar[str] = "blend"

    image_url_1: str | None = Field(None, alias="imageUrl_1")
    image_url_2: str | None = Field(None, alias="imageUrl_2")
    image_url_3: str | None = Field(None, alias="imageUrl_3")
    image_url_4: str | None = Field(None, alias="imageUrl_4")
    image_url_5: str | None = Field(None, alias="imageUrl_5")
    image_blob_1: ImageBlob | None = Field(None, alias="imageBlob_1")
    image_blob_2: ImageBlob | None = Field(None, alias="imageBlob_2")
    image_blob_3: ImageBlob | None = Field(None, alias="imageBlob_3")
    image_blob_4: ImageBlob | None = Field(None, alias="imageBlob_4")
    image_blob_5: ImageBlob | None = Field(None, alias="imageBlob_5")
    blend_dimensions: BlendDimensions | None = Field(None, alias="blendDimensions")

    @field_validator("image_url_1", "image_url_2", "image_url_3", "image_url_4", "image_url_5")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return checked_optional_url(value)

    @model_validator(mode="after")
    def _positions(self) -> BlendRequest:
        filled = []
        for n in range(1, MAX_BLEND_IMAGES + 1):
            url, blob = getattr(self, f"image_url_{n}"), getattr(self, f"image_blob_{n}")
            if url is not None and blob is not None:
                raise ValueError(f"image {n}: give imageUrl_{n} or imageBlob_{n}, not both")
            if url is not None or blob is not None:
                filled.append(n)
        if len(filled) < MIN_BLEND_IMAGES:
            raise ValueError(f"blend needs {MIN_BLEND_IMAGES} to {MAX_BLEND_IMAGES} images, got {len(filled)}")
        if filled != list(range(1, len(filled) + 1)):
            raise ValueError(f"images must fill positions 1..{len(filled)} without gaps, got positions {filled}")
        return self

    @classmethod
    def from_images(cls, images: Sequence[ImageSource], **options: Any) -> BlendRequest:
        """Build from a list of 2-5 URLs, local paths or bytes (in order)."""
        if isinstance(images, str | bytes) or not isinstance(images, Sequence):
            raise MidjourneyInvalidRequestError("images: expected a list of 2 to 5 images")
        if not MIN_BLEND_IMAGES <= len(images) <= MAX_BLEND_IMAGES:
            raise MidjourneyInvalidRequestError(
                f"images: blend needs {MIN_BLEND_IMAGES} to {MAX_BLEND_IMAGES} images, got {len(images)}"
            )
        fields: dict[str, Any] = {}
        for n, source in enumerate(images, start=1):
            image = image_from_source(source, field=f"images[{n - 1}]")
            fields[f"image_url_{n}" if isinstance(image, str) else f"image_blob_{n}"] = image
        return cls.build(**fields, **options)


class DescribeRequest(JobOptions):
    """Describe one image, given by URL (``imageUrl``) or upload (``imageBlob``)."""

    job_verb: ClassVar[str] = "describe"

    image_url: str | None = Field(None, alias="imageUrl")
    image_blob: ImageBlob | None = Field(None, alias="imageBlob")

    @field_validator("image_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return checked_optional_url(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> DescribeRequest:
        if (self.image_url is None) == (self.image_blob is None):
            raise ValueError("give exactly one of imageUrl (a URL) or imageBlob (a file or bytes)")
        return self

    @classmethod
    def from_image(cls, image: ImageSource, **options: Any) -> DescribeRequest:
        resolved = image_from_source(image, field="image")
        key = "image_url" if isinstance(resolved, str) else "image_blob"
        return cls.build(**{key: resolved}, **options)


class SettingsRequest(JobOptions):
    """One of the settings family: settings, info, fast, relax, turbo, remix, variability."""

    command: SettingsCommand = Field(exclude=True)

    @property
    def verb(self) -> str:
        return str(self.command)


JOB_REQUEST_TYPES: tuple[type[JobOptions], ...] = (
    ImagineRequest,
    ButtonRequest,
    BlendRequest,
    DescribeRequest,
    SeedRequest,
    SettingsRequest,
)
