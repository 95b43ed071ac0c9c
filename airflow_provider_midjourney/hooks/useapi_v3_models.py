"""useapi.net Midjourney API v3 on the wire: its answers (turned into the neutral job), paths and bodies.

Answer models keep fields they do not know (``extra="allow"``) and accept enum values they have
never seen (the vendor adds buttons and verbs), so a vendor change never breaks a running pipeline.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError, register_secret
from airflow_provider_midjourney.input_checks import checked_http_url, checked_job_id, has_control
from airflow_provider_midjourney.job_requests import (
    MAX_BLEND_IMAGES,
    BlendRequest,
    DescribeRequest,
    JobOptions,
    RequestModel,
)
from airflow_provider_midjourney.text_patterns import keycap_items, labelled_number, leading_bold
from airflow_provider_midjourney.vocabulary import (
    SETTINGS_COMMANDS,
    TERMINAL_STATUSES,
    Button,
    JobStatus,
    JobType,
    Verb,
)
from airflow_provider_midjourney.wire import HttpBody, OpenModel, multipart_body

if TYPE_CHECKING:
    from airflow_provider_midjourney.job import MidjourneyJob

MAX_ACCOUNT_REPLY_URL_LENGTH = 2048
CDN_PREFIX = "https://cdn.midjourney.com/"
JOBS_PATH = "/v3/midjourney/jobs"

# v3 job ids look like j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney. The check
# is loose on purpose (any bot name, optional type letter) but keeps ids safe to put in a URL path.
# ASCII digits only (``\d`` would take Arabic-Indic digits) and matched with fullmatch (``$``
# would take a trailing newline, which then lands in a URL path).
JOB_ID_PATTERN = re.compile(r"j[0-9]+[a-z]?-u[0-9]+-c[0-9]+-bot:[A-Za-z0-9_.-]+")


class MediaUx(OpenModel):
    """One cell of a grid (``imageUx``/``videoUx``): ``id`` 1-4 and a cdn.midjourney.com URL."""

    id: int
    url: str


class Attachment(OpenModel):
    url: str
    proxy_url: str | None = None
    filename: str | None = None
    width: int | None = None
    height: int | None = None
    size: int | None = None
    content_type: str | None = None
    id: str | None = None


class Embed(OpenModel):
    title: str | None = None
    description: str | None = None
    color: int | None = None


class Settings(OpenModel):
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


class JobRequestEcho(OpenModel):
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


class JobResponse(OpenModel):
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


class Job(OpenModel):
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
        return labelled_number(self.response.content, "seed")

    @property
    def prompts(self) -> list[str]:
        """The numbered /describe suggestions, from the embed (complete) or else the content."""
        if not self.response:
            return []
        sources = [e.description for e in self.response.embeds] + [self.response.content]
        for text in sources:
            found = keycap_items(text)
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
        bold = leading_bold(self.response.content) if self.response else None
        return bold.strip() if bold else None

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
            cost=self.cost,
        )

    @property
    def cost(self) -> dict[str, float | int] | None:
        """What is left on the account, where the job reports it (an ``info`` job's fast hours)."""
        if str(self.verb) != "info" or not self.response:
            return None
        from airflow_provider_midjourney.cost import fast_hours_of_info

        return fast_hours_of_info(*(e.description for e in self.response.embeds), self.response.content)

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


class RunningJob(OpenModel):
    jobId: str
    channel: str | None = None
    jobType: JobType | None = None
    created: str | None = None
    elapsed: str | None = None


class ChannelJobs(OpenModel):
    total: int = 0
    images: int = 0
    videos: int = 0
    maxJobs: int | None = None
    maxImageJobs: int | None = None
    maxVideoJobs: int | None = None
    jobs: list[RunningJob] = Field(default_factory=list)


class RunningJobs(OpenModel):
    """``GET /jobs``: only jobs still created, started or in progress."""

    total: int = 0
    images: int = 0
    videos: int = 0
    channels: dict[str, ChannelJobs] = Field(default_factory=dict)

    @property
    def job_ids(self) -> list[str]:
        return [job.jobId for channel in self.channels.values() for job in channel.jobs]


class Account(OpenModel):
    """A configured channel. ``discord`` is the API's redacted form (first and last 3 characters)."""

    channel: str
    discord: str | None = None
    maxJobs: int | None = None
    maxImageJobs: int | None = None
    maxVideoJobs: int | None = None
    replyUrl: str | None = None
    error: str | None = None


class SSEEvent(OpenModel):
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


class AccountRequest(RequestModel):
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
        if not token.isascii() or has_control(token):
            raise ValueError("contains control or non-ASCII characters (copy the token again)")
        register_secret(token)  # an API error echoing it is redacted
        return SecretStr(token)

    @field_validator("reply_url")
    @classmethod
    def _account_reply_url(cls, value: str | None) -> str | None:
        return None if value is None else checked_http_url(value)

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


def checked_v3_job_id(value: str) -> str:
    checked_job_id(value)
    if not JOB_ID_PATTERN.fullmatch(value):
        raise ValueError(
            f"must be a v3 job id like j1024181105489769750i-u12345-c1234567890987654321-bot:midjourney, got {value!r}"
        )
    return value


def check_job_id(job_id: str, field: str = "jobid") -> str:
    """Validate a useapi.net v3 job id before it goes into a URL path."""
    try:
        return checked_v3_job_id(job_id if isinstance(job_id, str) else "")
    except ValueError as exc:
        raise MidjourneyInvalidRequestError(f"{field}: {exc}") from None


# -- requests on the wire ---------------------------------------------------------------------------

_BLOB_FIELDS = {f"image_blob_{n}" for n in range(1, MAX_BLEND_IMAGES + 1)} | {"image_blob"}


def job_path(request: JobOptions) -> str:
    """Where a job request is POSTed: ``/v3/midjourney/jobs/<verb>`` (settings commands by name)."""
    return f"{JOBS_PATH}/{request.verb}"


def job_body(request: JobOptions) -> HttpBody:
    """The body to POST. ``stream`` is always false: the provider polls instead of streaming.

    Blend and describe images given as files go up as ``multipart/form-data`` (``imageBlob_N``,
    ``imageBlob``); everything else is JSON under the request's documented field names.
    """
    fields = {**request.wire_fields(exclude=_BLOB_FIELDS), "stream": False}
    if isinstance(request, BlendRequest):
        blobs = {f"imageBlob_{n}": b for n in range(1, 6) if (b := getattr(request, f"image_blob_{n}")) is not None}
        return multipart_body(fields, blobs)
    if isinstance(request, DescribeRequest):
        return multipart_body(fields, {"imageBlob": request.image_blob} if request.image_blob else {})
    return HttpBody(json_body=fields)
