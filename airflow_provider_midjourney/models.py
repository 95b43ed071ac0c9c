"""The useapi.net Midjourney API v3 contract: every request and response shape, in one module.

Response models keep fields they do not know (``extra="allow"``) and accept enum values they have
never seen (the vendor adds buttons and verbs), so a vendor change never breaks a running pipeline.
Request models validate everything the API documents *before* any HTTP call and raise
:class:`~airflow_provider_midjourney.exceptions.MidjourneyInvalidRequestError` naming each field.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import unicodedata
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError, register_secret

if TYPE_CHECKING:
    from airflow_provider_midjourney.job import MidjourneyJob

MAX_PROMPT_LENGTH = 5000
MAX_REPLY_LENGTH = 1024
MAX_ACCOUNT_REPLY_URL_LENGTH = 2048
MAX_BLOB_BYTES = 10 * 1024 * 1024
MAX_BLEND_IMAGES = 5
MIN_BLEND_IMAGES = 2
CDN_PREFIX = "https://cdn.midjourney.com/"

# v3 job ids look like j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney. The check
# is loose on purpose (any bot name, optional type letter) but keeps ids safe to put in a URL path.
# ASCII digits only (``\d`` would take Arabic-Indic digits) and matched with fullmatch (``$``
# would take a trailing newline, which then lands in a URL path).
JOB_ID_PATTERN = re.compile(r"j[0-9]+[a-z]?-u[0-9]+-c[0-9]+-bot:[A-Za-z0-9_.-]+")
CHANNEL_PATTERN = re.compile(r"[0-9]{1,32}")
SAFE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")
# Characters that show nothing: a prompt made only of them (and whitespace) is blank.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")


class OpenEnum(str, Enum):
    """A string enum that turns an unknown value into a new member instead of failing."""

    @classmethod
    def _missing_(cls, value: object) -> OpenEnum | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return member

    def __str__(self) -> str:
        return str(self.value)

    @property
    def is_known(self) -> bool:
        return self.name in type(self).__members__


class JobStatus(OpenEnum):
    CREATED = "created"
    STARTED = "started"
    PROGRESS = "progress"
    COMPLETED = "completed"
    FAILED = "failed"
    MODERATED = "moderated"


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.MODERATED})
RUNNING_STATUSES = frozenset({JobStatus.CREATED, JobStatus.STARTED, JobStatus.PROGRESS})


class Verb(OpenEnum):
    IMAGINE = "imagine"
    BUTTON = "button"
    DESCRIBE = "describe"
    BLEND = "blend"
    SEED = "seed"
    SETTINGS = "settings"
    INFO = "info"
    FAST = "fast"
    RELAX = "relax"
    TURBO = "turbo"
    REMIX = "remix"
    VARIABILITY = "variability"


class JobType(OpenEnum):
    IMAGE = "image"
    VIDEO = "video"


class Button(OpenEnum):
    U1 = "U1"
    U2 = "U2"
    U3 = "U3"
    U4 = "U4"
    V1 = "V1"
    V2 = "V2"
    V3 = "V3"
    V4 = "V4"
    PAN_LEFT = "⬅️"
    PAN_RIGHT = "➡️"
    PAN_UP = "⬆️"
    PAN_DOWN = "⬇️"
    VARY_REGION = "Vary (Region)"
    VARY_STRONG = "Vary (Strong)"
    VARY_SUBTLE = "Vary (Subtle)"
    ZOOM_OUT_1_5X = "Zoom Out 1.5x"
    ZOOM_OUT_2X = "Zoom Out 2x"
    UPSCALE_2X = "Upscale (2x)"
    UPSCALE_4X = "Upscale (4x)"
    UPSCALE_SUBTLE = "Upscale (Subtle)"
    UPSCALE_CREATIVE = "Upscale (Creative)"
    REDO_UPSCALE_2X = "Redo Upscale (2x)"
    REDO_UPSCALE_4X = "Redo Upscale (4x)"
    REDO_UPSCALE_SUBTLE = "Redo Upscale (Subtle)"
    REDO_UPSCALE_CREATIVE = "Redo Upscale (Creative)"
    MAKE_SQUARE = "Make Square"
    MAKE_VARIATIONS = "Make Variations"
    REMASTER = "Remaster"
    CUSTOM_ZOOM = "Custom Zoom"
    REROLL = "🔄"
    ANIMATE_LOW = "Animate (Low motion)"
    ANIMATE_HIGH = "Animate (High motion)"
    EXTEND_LOW = "Extend (Low motion)"
    EXTEND_HIGH = "Extend (High motion)"


EXECUTE_ONCE_BUTTONS = frozenset({Button.U1, Button.U2, Button.U3, Button.U4})
# Buttons that take a prompt (Custom Zoom always; the others when Remix mode is on).
PROMPT_BUTTONS = frozenset(
    {
        Button.CUSTOM_ZOOM,
        Button.V1,
        Button.V2,
        Button.V3,
        Button.V4,
        Button.VARY_REGION,
        Button.VARY_STRONG,
        Button.VARY_SUBTLE,
        Button.PAN_LEFT,
        Button.PAN_RIGHT,
        Button.PAN_UP,
        Button.PAN_DOWN,
        Button.REROLL,
    }
)
SETTINGS_COMMANDS = ("settings", "info", "fast", "relax", "turbo", "remix", "variability")
SettingsCommand = Literal["settings", "info", "fast", "relax", "turbo", "remix", "variability"]
ReplyLevel = Literal["all", "standard", "minimal"]
BlendDimensions = Literal["Portrait", "Square", "Landscape"]


# --------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------


class OpenModel(BaseModel):
    """Base of every vendor's answer models: unknown fields are kept, never an error.

    ``defer_build``: the validators are built on first use, not when a DAG file imports the
    provider (that would add tens of milliseconds to every parse of every such file).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


_Open = OpenModel


class MediaUx(_Open):
    """One cell of a grid (``imageUx``/``videoUx``): ``id`` 1-4 and a cdn.midjourney.com URL."""

    id: int
    url: str


class Attachment(_Open):
    url: str
    proxy_url: str | None = None
    filename: str | None = None
    width: int | None = None
    height: int | None = None
    size: int | None = None
    content_type: str | None = None
    id: str | None = None


class Embed(_Open):
    title: str | None = None
    description: str | None = None
    color: int | None = None


class Settings(_Open):
    """``response.settings`` of the settings family; each command fills its own subset."""

    version: str | None = None
    stylize: int | None = None
    raw: bool | None = None
    personalization: bool | None = None
    public: bool | None = None
    remix: bool | None = None
    variability: bool | None = None
    relax: bool | None = None
    fast: bool | None = None
    turbo: bool | None = None
    suffix: str | None = None


class JobRequestEcho(_Open):
    """The original request parameters, as the API returns them in ``job.request``."""

    prompt: str | None = None
    button: Button | None = None
    mask: str | None = None
    describeUrl: str | None = None
    blendUrls: list[str] | None = None
    blendDimensions: str | None = None
    jobId: str | None = None
    channel: str | None = None
    maxJobs: int | None = None
    replyUrl: str | None = None
    replyRef: str | None = None
    stream: bool | None = None


class JobResponse(_Open):
    """``job.response``: Midjourney's Discord message plus the API's own fields."""

    id: str | None = None
    content: str | None = None
    timestamp: str | None = None
    progress_percent: int | None = None
    buttons: list[Button] = Field(default_factory=list)
    imageUx: list[MediaUx] = Field(default_factory=list)
    videoUx: list[MediaUx] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    embeds: list[Embed] = Field(default_factory=list)
    components: list[dict[str, Any]] = Field(default_factory=list)
    settings: Settings | None = None
    children: dict[str, Any] = Field(default_factory=dict)
    executeOnce: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None


_PROMPT_IN_CONTENT = re.compile(r"^\*\*(.+?)\*\*", re.DOTALL)
_SEED_IN_CONTENT = re.compile(r"\*\*seed\*\*\s*:?\s*(\d+)", re.IGNORECASE)
# Describe suggestions are numbered with keycap emojis: 1️⃣ ... 2️⃣ ... (the variation selector
# U+FE0F is optional in the wild).
_DESCRIBE_ITEM = re.compile(r"([1-4])\ufe0f?\u20e3\s*(.*?)(?=\s*[1-4]\ufe0f?\u20e3|\Z)", re.DOTALL)


class Job(_Open):
    """A job as returned by every job endpoint (POST 201/200, GET /jobs/<jobid>, SSE events)."""

    jobid: str
    verb: Verb
    jobType: JobType | None = None
    status: JobStatus
    created: str | None = None
    updated: str | None = None
    error: str | None = None
    errorDetails: str | None = None
    code: int | None = None
    request: JobRequestEcho = Field(default_factory=JobRequestEcho)
    response: JobResponse | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the job is completed, failed or moderated. Unknown statuses are not terminal."""
        return self.status in TERMINAL_STATUSES

    @property
    def progress_percent(self) -> int | None:
        return self.response.progress_percent if self.response else None

    @property
    def image_urls(self) -> list[str]:
        """``imageUx`` URLs in id order (the four grid cells, or one upscaled image)."""
        return _urls(self.response.imageUx) if self.response else []

    @property
    def video_urls(self) -> list[str]:
        return _urls(self.response.videoUx) if self.response else []

    @property
    def grid_url(self) -> str | None:
        """The complete grid image: ``attachments[0]``."""
        if self.response and self.response.attachments:
            return self.response.attachments[0].url
        return None

    @property
    def buttons(self) -> list[str]:
        return [str(b) for b in self.response.buttons] if self.response else []

    @property
    def seed(self) -> int | None:
        """``response.seed`` when present, else parsed from content such as ``**seed** 3937070146``."""
        if not self.response:
            return None
        if self.response.seed is not None:
            return self.response.seed
        match = _SEED_IN_CONTENT.search(self.response.content or "")
        return int(match.group(1)) if match else None

    @property
    def prompts(self) -> list[str]:
        """The numbered /describe suggestions, from the embed (complete) or else the content."""
        if not self.response:
            return []
        sources = [e.description for e in self.response.embeds] + [self.response.content]
        for text in sources:
            found = [m.group(2).strip() for m in _DESCRIBE_ITEM.finditer(text or "")]
            if found:
                return found
        return []

    @property
    def settings(self) -> dict[str, Any]:
        """``response.settings`` as a plain dict, without the keys the command did not return."""
        if not self.response or self.response.settings is None:
            return {}
        return self.response.settings.model_dump(exclude_none=True)

    @property
    def children(self) -> dict[str, Any]:
        return dict(self.response.children) if self.response else {}

    def to_xcom(self) -> dict[str, Any]:
        """The task's result: small JSON values only, never the raw Discord message."""
        result: dict[str, Any] = {
            "job_id": self.jobid,
            "status": str(self.status),
            "verb": str(self.verb),
            "prompt": self.request.prompt,
            "image_urls": self.image_urls,
            "video_urls": self.video_urls,
            "grid_url": self.grid_url,
            "buttons": self.buttons,
            "children": self.children,
        }
        if self.verb == Verb.SEED:
            result["seed"] = self.seed
        elif self.verb == Verb.DESCRIBE:
            result["prompts"] = self.prompts
        elif str(self.verb) in SETTINGS_COMMANDS:
            result["settings"] = self.settings
        return result

    def to_event(self) -> dict[str, Any]:
        """The trigger event for a terminal job (``completed``, ``failed`` or ``moderated``)."""
        if self.status == JobStatus.COMPLETED:
            return {"status": "completed", "job_id": self.jobid, "result": self.to_xcom()}
        return {
            "status": str(self.status),
            "job_id": self.jobid,
            "error": self.error,
            "error_details": self.errorDetails,
            "code": self.code,
            "message": self.outcome_message,
        }

    @property
    def echoed_prompt(self) -> str | None:
        """The prompt Midjourney echoes in bold at the start of its message (button jobs send none)."""
        match = _PROMPT_IN_CONTENT.match((self.response.content or "") if self.response else "")
        return match.group(1).strip() if match else None

    def normalised(self, backend: str = "useapi_v3") -> MidjourneyJob:
        """This job in the one shape every backend produces (a ``MidjourneyJob``)."""
        from airflow_provider_midjourney.job import MidjourneyJob

        embeds = [e.description or e.title or "" for e in self.response.embeds] if self.response else []
        details = [d for d in (self.errorDetails, *embeds) if d]
        return MidjourneyJob(
            job_id=self.jobid,
            backend=backend,
            status=self.status,
            verb=str(self.verb),
            prompt=self.request.prompt or self.echoed_prompt,
            image_urls=self.image_urls,
            video_urls=self.video_urls,
            grid_url=self.grid_url,
            buttons=self.buttons,
            children=self.children,
            seed=self.seed,
            prompts=self.prompts,
            settings=self.settings,
            progress_percent=self.progress_percent,
            error=self.error,
            error_details="; ".join(dict.fromkeys(details)) or None,
            code=self.code,
            reply_ref=self.request.replyRef,
        )

    @property
    def outcome_message(self) -> str:
        """Why a job failed or was moderated, in one line (Midjourney's own words where given)."""
        details = [d for d in (self.error, self.errorDetails) if d]
        if self.response:
            details += [e.description or e.title or "" for e in self.response.embeds if e.description or e.title]
        text = "; ".join(dict.fromkeys(details)) or "no details given"
        return f"Midjourney job {self.jobid} {self.status}: {text}"


def _urls(items: list[MediaUx]) -> list[str]:
    return [item.url for item in sorted(items, key=lambda item: item.id)]


class RunningJob(_Open):
    jobId: str
    channel: str | None = None
    jobType: JobType | None = None
    created: str | None = None
    elapsed: str | None = None


class ChannelJobs(_Open):
    total: int = 0
    images: int = 0
    videos: int = 0
    maxJobs: int | None = None
    maxImageJobs: int | None = None
    maxVideoJobs: int | None = None
    jobs: list[RunningJob] = Field(default_factory=list)


class RunningJobs(_Open):
    """``GET /jobs``: only jobs still created, started or in progress."""

    total: int = 0
    images: int = 0
    videos: int = 0
    channels: dict[str, ChannelJobs] = Field(default_factory=dict)

    @property
    def job_ids(self) -> list[str]:
        return [job.jobId for channel in self.channels.values() for job in channel.jobs]


class Account(_Open):
    """A configured channel. ``discord`` is the API's redacted form (first and last 3 characters)."""

    channel: str
    discord: str | None = None
    maxJobs: int | None = None
    maxImageJobs: int | None = None
    maxVideoJobs: int | None = None
    replyUrl: str | None = None
    error: str | None = None


class SSEEvent(_Open):
    """One ``data:`` event of a ``stream: true`` answer."""

    event: str
    seq: int | None = None
    ts: str | None = None
    message: str | None = None
    jobId: str | None = None
    job: Job | None = None


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------

_R = TypeVar("_R", bound="_Request")


# Magic numbers of the image formats Midjourney takes. A local path is read only when its bytes
# start with one of these: a templated path pointing at /proc/self/environ, /etc/passwd or a text
# file must never be uploaded to a third-party API.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


def image_type(content: bytes) -> str | None:
    """The MIME type of PNG, JPEG, WebP or GIF bytes (from their signature), else None."""
    for signature, mime in _SIGNATURES:
        if content.startswith(signature):
            return mime
    if len(content) >= 12 and content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


def _image_problem(content: bytes) -> str | None:
    if not content:
        return "the image is empty"
    if len(content) > MAX_BLOB_BYTES:
        return f"is {len(content)} bytes or more; the API allows at most {MAX_BLOB_BYTES} bytes (10 MB)"
    if image_type(content) is None:
        return "is not a PNG, JPEG, WebP or GIF image (its first bytes are no image signature)"
    return None


class ImageBlob(BaseModel):
    """An image uploaded as ``multipart/form-data``. The bytes stay out of reprs and logs."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    content: bytes = Field(repr=False)
    filename: str = "image.png"
    content_type: str = "application/octet-stream"

    @classmethod
    def from_path(cls, path: str | Path, field: str = "image") -> ImageBlob:
        """Read a local image (see :func:`read_local_image`)."""
        return read_local_image(path, field)

    @classmethod
    def from_bytes(cls, content: bytes, field: str = "image", filename: str | None = None) -> ImageBlob:
        """Wrap image bytes given in code, refusing empty or oversized content naming ``field``.

        Bytes the DAG author hands over are sent as given (the API judges them); only bytes read
        from a path must carry an image signature (:func:`read_local_image`).
        """
        if not content:
            raise MidjourneyInvalidRequestError(f"{field}: the image is empty")
        if len(content) > MAX_BLOB_BYTES:
            raise MidjourneyInvalidRequestError(
                f"{field}: is {len(content)} bytes; the API allows at most {MAX_BLOB_BYTES} bytes (10 MB)"
            )
        mime = image_type(content)
        if mime is None:
            return cls(content=content, filename=filename or "image.png")
        return cls(content=content, filename=filename or f"image.{_EXTENSIONS[mime]}", content_type=mime)

    @field_validator("content")
    @classmethod
    def _at_most_10_mb(cls, value: bytes) -> bytes:
        if not value:
            raise ValueError("the image is empty")
        if len(value) > MAX_BLOB_BYTES:
            raise ValueError(f"is {len(value)} bytes; the API allows at most {MAX_BLOB_BYTES} bytes (10 MB)")
        return value


def read_local_image(path: str | Path, field: str = "image") -> ImageBlob:
    """Read a local image for upload, or raise naming ``field``; nothing is sent either way.

    Only a regular file (after symlinks) whose bytes are a PNG, JPEG, WebP or GIF image, not
    empty and at most 10 MB, is read, and never more than 10 MB + 1 bytes of it (``/proc`` files
    report a size of 0). Every backend that uploads files uses this one reader.
    """
    shown = str(path)[:120]
    try:
        if isinstance(path, str) and (not path.strip() or "\x00" in path):
            raise FileNotFoundError
        file = Path(path)
        info = os.stat(file)
    except (OSError, ValueError):
        raise MidjourneyInvalidRequestError(
            f"{field}: expected an http(s) URL or a readable local image file, got {shown!r}: no such local file"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise MidjourneyInvalidRequestError(f"{field}: {shown!r} is not a regular file (only image files are read)")
    if info.st_size > MAX_BLOB_BYTES:
        raise MidjourneyInvalidRequestError(
            f"{field}: {file.name} is {info.st_size} bytes; the API allows at most {MAX_BLOB_BYTES} bytes (10 MB)"
        )
    try:
        with open(file, "rb") as handle:
            content = handle.read(MAX_BLOB_BYTES + 1)
    except OSError as exc:
        raise MidjourneyInvalidRequestError(f"{field}: cannot read {shown!r}: {exc.strerror}") from None
    problem = _image_problem(content)
    if problem:
        raise MidjourneyInvalidRequestError(f"{field}: {file.name} {problem}")
    return ImageBlob(content=content, filename=file.name, content_type=image_type(content) or "image/png")


ImageSource = str | Path | bytes | ImageBlob
"""An image given by URL (``http(s)://...``), local path, raw bytes or :class:`ImageBlob`."""


def image_from_source(source: ImageSource, field: str) -> str | ImageBlob:
    """Resolve an image argument to a URL (checked, kept as is) or a blob (local image or bytes)."""
    if isinstance(source, ImageBlob):
        return source
    if isinstance(source, bytes | bytearray):
        return ImageBlob.from_bytes(bytes(source), field=field)
    if isinstance(source, str) and "://" in source[:16]:
        return check_http_url(source, field)
    if isinstance(source, str | Path):
        return read_local_image(source, field=field)
    raise MidjourneyInvalidRequestError(
        f"{field}: expected an http(s) URL, a local image path or image bytes, got {type(source).__name__}"
    )


class HttpBody(BaseModel):
    """What a request model sends: a JSON object, or form fields plus files (multipart)."""

    model_config = ConfigDict(defer_build=True)

    json_body: dict[str, Any] | None = None
    data: dict[str, str] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None


class _Request(BaseModel):
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


class JobOptions(_Request):
    """Options every job-creating endpoint accepts."""

    channel: str | None = None
    reply_url: str | None = Field(None, alias="replyUrl", max_length=MAX_REPLY_LENGTH)
    reply_ref: str | None = Field(None, alias="replyRef", max_length=MAX_REPLY_LENGTH)
    reply_level: ReplyLevel | None = Field(None, alias="replyLevel")

    endpoint: ClassVar[str] = ""

    @field_validator("channel")
    @classmethod
    def _channel_is_an_id(cls, value: str | None) -> str | None:
        return None if value is None else _check_channel(value)

    @field_validator("reply_url")
    @classmethod
    def _reply_url_is_http(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("reply_ref")
    @classmethod
    def _reply_ref_is_text(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or _has_control(value)):
            raise ValueError("must be non-blank text without control characters")
        return value

    @property
    def path(self) -> str:
        return f"/v3/midjourney/jobs/{self.endpoint}"

    def http_body(self) -> HttpBody:
        """The body to POST. ``stream`` is always false: the provider polls instead of streaming."""
        fields = {**self.wire_fields(), "stream": False}
        return HttpBody(json_body=fields)


def _has_control(value: str, allowed: str = "") -> bool:
    return any(unicodedata.category(char) == "Cc" and char not in allowed for char in value)


def is_blank(value: str) -> bool:
    """True when ``value`` shows nothing: whitespace, zero-width characters, NUL and the like."""
    return all(char.isspace() or char in _INVISIBLE or unicodedata.category(char) in ("Cc", "Cf") for char in value)


def _check_prompt(value: str | None, required: bool) -> str | None:
    if value is None:
        if required:
            raise ValueError("is required and must not be empty")
        return None
    if is_blank(value):
        needed = "is required and " if required else "if given, "
        raise ValueError(f"{needed}must contain visible text (it is empty, or only spaces / invisible characters)")
    if _has_control(value, allowed="\t\n\r"):
        raise ValueError("must not contain control characters such as NUL")
    if len(value) > MAX_PROMPT_LENGTH:
        raise ValueError(f"must be at most {MAX_PROMPT_LENGTH} characters (got {len(value)})")
    return value


def _http_url(value: str) -> str:
    """An absolute http(s) URL with a host, without spaces or control characters."""
    if not isinstance(value, str):
        raise ValueError("must be an http(s) URL")
    shown = value[:80]
    if value != value.strip() or any(char.isspace() for char in value) or _has_control(value):
        raise ValueError(f"must be an http(s) URL without spaces or control characters, got {shown!r}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValueError(f"must be a valid http(s) URL, got {shown!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL with a host (https://example.com/...), got {shown!r}")
    return value


def check_http_url(value: Any, field: str) -> str:
    """Validate a URL the provider sends or fetches; raise naming ``field``."""
    try:
        return _http_url(value)
    except ValueError as exc:
        raise MidjourneyInvalidRequestError(f"{field}: {exc}") from None


def _check_job_id(value: str) -> str:
    """Any backend's job id: safe in a URL path. Each backend's hook checks its own format."""
    if not isinstance(value, str) or not value or not value.strip():
        raise ValueError("is required")
    if not SAFE_ID_PATTERN.fullmatch(value):
        raise ValueError(
            "must be a job id of letters, digits and . _ : - only (at most 200 characters), e.g."
            f" j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney, got {value[:80]!r}"
        )
    return value


def _check_v3_job_id(value: str) -> str:
    _check_job_id(value)
    if not JOB_ID_PATTERN.fullmatch(value):
        raise ValueError(
            f"must be a v3 job id like j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney, got {value!r}"
        )
    return value


def _check_channel(value: str) -> str:
    if not isinstance(value, str) or not CHANNEL_PATTERN.fullmatch(value):
        raise ValueError(f"must be a Discord channel id (1-32 ASCII digits), got {str(value)[:40]!r}")
    return value


def check_channel(channel: str, field: str = "channel") -> str:
    """Validate a channel id before it goes into a URL path."""
    try:
        return _check_channel(channel)
    except ValueError as exc:
        raise MidjourneyInvalidRequestError(f"{field}: {exc}") from None


def check_job_id(job_id: str, field: str = "jobid") -> str:
    """Validate a useapi.net v3 job id before it goes into a URL path."""
    try:
        return _check_v3_job_id(job_id if isinstance(job_id, str) else "")
    except ValueError as exc:
        raise MidjourneyInvalidRequestError(f"{field}: {exc}") from None


def check_safe_id(job_id: Any, field: str = "job_id") -> str:
    """Validate any backend's job id before it goes into a URL path."""
    try:
        return _check_job_id(job_id if isinstance(job_id, str) else "")
    except ValueError as exc:
        raise MidjourneyInvalidRequestError(f"{field}: {exc}") from None


class ImagineRequest(JobOptions):
    endpoint: ClassVar[str] = "imagine"

    prompt: str

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        return _check_prompt(value, required=True) or value


class ButtonRequest(JobOptions):
    """Press a button of a completed job. Unknown labels need ``allow_unknown_button=True``."""

    endpoint: ClassVar[str] = "button"

    job_id: str = Field(alias="jobId")
    button: Button
    mask: str | None = None
    prompt: str | None = None
    allow_unknown_button: bool = Field(False, exclude=True)

    @field_validator("job_id")
    @classmethod
    def _job_id(cls, value: str) -> str:
        return _check_job_id(value)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str | None) -> str | None:
        return _check_prompt(value, required=False)

    @field_validator("mask")
    @classmethod
    def _mask(cls, value: str | None) -> str | None:
        if value is not None and (is_blank(value) or _has_control(value)):
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
    endpoint: ClassVar[str] = "seed"

    job_id: str = Field(alias="jobId")

    @field_validator("job_id")
    @classmethod
    def _job_id(cls, value: str) -> str:
        return _check_job_id(value)


def _check_url(value: str | None) -> str | None:
    return None if value is None else _http_url(value)


def _multipart(fields: dict[str, Any], blobs: dict[str, ImageBlob]) -> HttpBody:
    if not blobs:
        return HttpBody(json_body=fields)
    data = {
        key: ("true" if value is True else "false" if value is False else str(value)) for key, value in fields.items()
    }
    files = [(key, (blob.filename, blob.content, blob.content_type)) for key, blob in blobs.items()]
    return HttpBody(data=data, files=files)


class BlendRequest(JobOptions):
    """Blend 2-5 images; each position is a URL (``imageUrl_N``) or an upload (``imageBlob_N``)."""

    endpoint: ClassVar[str] = "blend"

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
        return _check_url(value)

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

    def http_body(self) -> HttpBody:
        fields = {**self.wire_fields(exclude=_BLOB_FIELDS), "stream": False}
        blobs = {f"imageBlob_{n}": b for n in range(1, 6) if (b := getattr(self, f"image_blob_{n}")) is not None}
        return _multipart(fields, blobs)


_BLOB_FIELDS = {f"image_blob_{n}" for n in range(1, MAX_BLEND_IMAGES + 1)} | {"image_blob"}


class DescribeRequest(JobOptions):
    """Describe one image, given by URL (``imageUrl``) or upload (``imageBlob``)."""

    endpoint: ClassVar[str] = "describe"

    image_url: str | None = Field(None, alias="imageUrl")
    image_blob: ImageBlob | None = Field(None, alias="imageBlob")

    @field_validator("image_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)

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

    def http_body(self) -> HttpBody:
        fields = {**self.wire_fields(exclude=_BLOB_FIELDS), "stream": False}
        return _multipart(fields, {"imageBlob": self.image_blob} if self.image_blob else {})


class SettingsRequest(JobOptions):
    """One of the settings family: settings, info, fast, relax, turbo, remix, variability."""

    command: SettingsCommand = Field(exclude=True)

    @property
    def path(self) -> str:
        return f"/v3/midjourney/jobs/{self.command}"


class AccountRequest(_Request):
    """``POST /accounts``: add or update a channel. The Discord token is a secret, never logged."""

    discord: SecretStr
    max_jobs: int | None = Field(None, alias="maxJobs", ge=1, le=15)
    max_image_jobs: int | None = Field(None, alias="maxImageJobs", ge=1, le=12)
    max_video_jobs: int | None = Field(None, alias="maxVideoJobs", ge=1, le=12)
    reply_url: str | None = Field(None, alias="replyUrl", max_length=MAX_ACCOUNT_REPLY_URL_LENGTH)

    DEFAULT_MAX_JOBS: ClassVar[int] = 3

    @field_validator("discord")
    @classmethod
    def _discord(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        if not token:
            raise ValueError("is required (the Discord token of the Midjourney account)")
        if not token.isascii() or _has_control(token):
            raise ValueError("contains control or non-ASCII characters (copy the token again)")
        register_secret(token)  # an API error echoing it is redacted
        return SecretStr(token)

    @field_validator("reply_url")
    @classmethod
    def _account_reply_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @model_validator(mode="after")
    def _limits(self) -> AccountRequest:
        ceiling = self.max_jobs or self.DEFAULT_MAX_JOBS
        for name, value in (("maxImageJobs", self.max_image_jobs), ("maxVideoJobs", self.max_video_jobs)):
            if value is not None and value > ceiling:
                raise ValueError(f"{name} ({value}) must be at most maxJobs ({ceiling})")
        return self

    def http_body(self) -> HttpBody:
        fields = self.wire_fields()
        fields["discord"] = self.discord.get_secret_value()
        return HttpBody(json_body=fields)


JOB_REQUEST_TYPES: tuple[type[JobOptions], ...] = (
    ImagineRequest,
    ButtonRequest,
    BlendRequest,
    DescribeRequest,
    SeedRequest,
    SettingsRequest,
)
