"""The ImaginePro backend: Midjourney through api.imaginepro.ai, in either of its API generations.

ImaginePro documents two generations of the same service: ``nova`` (its current pages and its
official SDKs: ``POST /api/v1/nova/{imagine,button,describe}``, polled with
``GET /api/v1/message/fetch/{messageId}``) and the older ``midjourney`` family
(``/api/v1/midjourney/{imagine,button,blend,describe}``, polled with
``GET /api/v1/midjourney/message/{messageId}``). The connection's ``api`` extra picks one.

What it cannot do is refused before any HTTP call, naming the backend and what to use instead: no
seed, no settings family, no uploads of local files (it takes public image URLs only), no Discord
channel choice. A job's result is one grid picture (``uri``): ``grid_url``; ``image_urls`` stays
empty unless the API gives separate pictures, and :class:`MidjourneyDownloadOperator` then cuts
the grid into its four pictures. Moderation is a ``FAIL`` whose error text matches the
connection's ``moderation_patterns`` (see :mod:`~airflow_provider_midjourney.text_patterns`); it is never resubmitted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from airflow_provider_midjourney.admission import note_retry_after
from airflow_provider_midjourney.checks import check_job_timeout_extra
from airflow_provider_midjourney.exceptions import (
    MidjourneyAPIError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyModeratedError,
    MidjourneyNotFoundError,
    MidjourneyPermanentError,
    MidjourneySubscriptionError,
    error_for_status,
)
from airflow_provider_midjourney.hooks.base import (
    Capability,
    ConnectionSettings,
    MidjourneyBackendHook,
    error_payload,
)
from airflow_provider_midjourney.hooks.imaginepro_models import (
    History,
    Message,
    SubmitAnswer,
    VideoMessage,
)
from airflow_provider_midjourney.input_checks import VENDOR_ID_PATTERN, check_vendor_id
from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.job_requests import (
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    ImagineRequest,
    JobOptions,
)
from airflow_provider_midjourney.text_patterns import is_moderation, moderation_patterns
from airflow_provider_midjourney.video_requests import VideoExtendRequest, VideoRequest, start_frame_url
from airflow_provider_midjourney.vocabulary import JobStatus
from airflow_provider_midjourney.wire import HttpBody

DEFAULT_BASE_URL = "https://api.imaginepro.ai"
DEFAULT_API = "nova"
# Every label ImaginePro documents (its button pages and the SDK's ``enum Button``).
IMAGINEPRO_BUTTONS = (
    *(f"U{n}" for n in range(1, 5)),
    *(f"V{n}" for n in range(1, 5)),
    "🔄",
    "Zoom Out 2x",
    "Zoom Out 1.5x",
    "Vary (Strong)",
    "Vary (Subtle)",
    "Vary (Region)",
    "⬅️",
    "➡️",
    "⬆️",
    "⬇️",
    "Make Square",
    "Upscale (2x)",
    "Upscale (4x)",
    "Redo Upscale (2x)",
    "Redo Upscale (4x)",
    "Upscale (Creative)",
    "Upscale (Subtle)",
)
CANCEL_BUTTON = "Cancel Job"
# A remix prompt goes with V1-V4 and 🔄 ("only with your own Discord account in Remix mode") and
# with Vary (Region) (the SDK's inpainting).
REMIX_BUTTONS = frozenset({"V1", "V2", "V3", "V4", "🔄", "Vary (Region)"})
JOB_TIMEOUT_RANGE = (10, 900)
ACCOUNT_INFO_PATH = "/api/v1/subscription/account-info"
CREDIT_KEYS = ("credits", "remainingCredits", "remaining_credits", "balance")
# Entries of the 24-hour history read to find a job by its ref after a lost creation answer.
HISTORY_SCAN = 20
# Video has its own routes (the same for both generations) and is polled on its own fetch route, so a
# video job's id carries this prefix: the hook then knows where to poll it.
VIDEO_GENERATE, VIDEO_EXTEND, VIDEO_FETCH = (
    "/api/v1/video/mj/generate",
    "/api/v1/video/mj/extend",
    "/api/v1/video/mj/fetch/{}",
)
VIDEO_PREFIX = "mjvideo-"


@dataclass(frozen=True)
class ApiPaths:
    """The paths of one API generation (``message`` and ``describe`` take the messageId/format)."""

    imagine: str
    button: str
    blend: str
    describe: str
    message: str
    history: str


API_PATHS: dict[str, ApiPaths] = {
    "nova": ApiPaths(
        imagine="/api/v1/nova/imagine",
        button="/api/v1/nova/button",
        # Only the older page documents blend's path and body; the nova page's body is not public.
        blend="/api/v1/midjourney/blend",
        describe="/api/v1/nova/describe",
        message="/api/v1/message/fetch/{}",
        history="/api/v1/nova/images",
    ),
    "midjourney": ApiPaths(
        imagine="/api/v1/midjourney/imagine",
        button="/api/v1/midjourney/button",
        blend="/api/v1/midjourney/blend",
        describe="/api/v1/midjourney/describe",
        message="/api/v1/midjourney/message/{}",
        history="/api/v1/midjourney/images",
    ),
}


@dataclass(frozen=True)
class ImagineProOptions:
    """What the hook takes from the connection's extras (checked before any request)."""

    api: str
    paths: ApiPaths
    job_timeout: int | None
    patterns: tuple[re.Pattern[str], ...]


class ImagineProCreditsError(MidjourneySubscriptionError):
    """402 from ImaginePro: no credits or plan left."""

    hint = " (the ImaginePro account has no credits or plan left: top it up at imaginepro.ai)"


class ImagineProHook(MidjourneyBackendHook):
    """Talks to ImaginePro's Midjourney API.

    Connection: password = API key (``Authorization: Bearer``), host = base URL (empty:
    ``https://api.imaginepro.ai``); extras ``api`` (``nova``, the default, or ``midjourney``),
    ``job_timeout`` (seconds ImaginePro lets a job run, 10-900, sent as ``timeout``; empty: its
    default of 900), ``moderation_patterns`` (what a ``FAIL`` text must match to count as
    moderation; default :data:`~.text_patterns.DEFAULT_MODERATION_PATTERNS`) and ``timeout``
    (seconds per HTTP request).
    """

    conn_name_attr = "midjourney_conn_id"
    default_conn_name = "imaginepro_default"
    conn_type = "imaginepro"
    hook_name = "Midjourney (ImaginePro)"

    backend = "imaginepro"
    api_name = "ImaginePro"
    default_base_url = DEFAULT_BASE_URL
    capabilities = frozenset(
        {
            Capability.IMAGINE,
            Capability.BUTTON,
            Capability.BLEND,
            Capability.DESCRIBE,
            Capability.CANCEL,
            Capability.VIDEO,
            Capability.VIDEO_EXTEND,
        }
    )
    alternatives: ClassVar[Mapping[Capability, str]] = {
        Capability.SEED: (
            "ImaginePro has no seed endpoint: put '--seed <number>' in the prompt of"
            " MidjourneyImagineOperator to fix a seed, or run MidjourneySeedOperator on a useapi.net"
            " connection (type 'midjourney' or 'midjourney_useapi_v2')."
        ),
        Capability.SETTINGS: (
            "ImaginePro runs info/fast/relax/turbo only for DIY-plan accounts with a linked Discord"
            " token (POST /api/v1/nova/commands, not supported here): put --fast, --relax or --turbo"
            " in the prompt instead, or use a useapi.net connection (type 'midjourney' or"
            " 'midjourney_useapi_v2')."
        ),
        Capability.UPLOAD_FILES: "ImaginePro takes public http(s) image URLs only: upload the file first.",
    }

    # -- connection extras ----------------------------------------------------------------------

    def options(self) -> ImagineProOptions:
        return self._options_from(self.connection_settings)

    async def aoptions(self) -> ImagineProOptions:
        return self._options_from(await self.aconnection_settings())

    def _options_from(self, settings: ConnectionSettings) -> ImagineProOptions:
        extra, conn = settings.extra, self.midjourney_conn_id
        api = str(extra.get("api") or DEFAULT_API).strip().lower()
        if api not in API_PATHS:
            raise MidjourneyError(
                f"Connection {conn!r}: extra 'api' must be one of {', '.join(API_PATHS)}, got {extra.get('api')!r}"
            )
        return ImagineProOptions(
            api=api,
            paths=API_PATHS[api],
            job_timeout=_job_timeout(extra.get("job_timeout"), conn),
            patterns=moderation_patterns(extra.get("moderation_patterns"), conn),
        )

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: one ``GET`` of the 24-hour history (no retries, at most 8 s).

        The history answers ``{"images": [...]}`` or 401 on ImaginePro; any other page, API or
        wrong base path fails instead of reading as "Connected".
        """
        from airflow_provider_midjourney.hooks.connection_test import probe

        try:
            settings, options = self.connection_settings, self.options()
        except MidjourneyError as exc:
            return False, str(exc)
        api = f"ImaginePro's {options.api} API"
        return probe(
            settings.base_url,
            f"{options.paths.history}?page=1&size=1",
            {"Authorization": f"Bearer {settings.token}"},
            looks_right=lambda data: isinstance(data, dict) and isinstance(data.get("images"), list),
            api_name=api,
            timeout=min(settings.timeout, 8.0),
            describe=lambda data: f"Connected to {api} at {settings.base_url}: the API key is accepted.",
        )

    # -- checks before any request --------------------------------------------------------------

    def check_job_id(self, job_id: Any, field: str = "job_id") -> str:
        message_id = job_id.removeprefix(VIDEO_PREFIX) if isinstance(job_id, str) else job_id
        check_vendor_id(message_id, field, "an ImaginePro messageId such as d15c1541-229a-442b-9873-d3494dede12a")
        return str(job_id)

    def check_request(self, request: JobOptions) -> JobOptions:
        request = super().check_request(request)
        self.options()  # the connection's extras are checked before any request too
        where = f"the {self.api_name} backend (connection {self.midjourney_conn_id!r})"
        if request.channel is not None:
            raise MidjourneyInvalidRequestError(
                f"channel: {where} chooses the Discord channel itself; leave channel empty"
            )
        if request.reply_level is not None:
            raise MidjourneyInvalidRequestError(
                f"replyLevel (reply_level): {where} has no reply levels (its webhook always gets the full"
                " message); leave reply_level empty"
            )
        if isinstance(request, ButtonRequest):
            self._check_button(request, where)
        elif isinstance(request, BlendRequest):
            self._check_blend(request, where)
        elif isinstance(request, VideoRequest | VideoExtendRequest):
            self._check_video(request, where)
        elif isinstance(request, DescribeRequest) and request.image_blob is not None:
            raise MidjourneyInvalidRequestError(
                f"image: {where} describes public http(s) image URLs only, not local files or bytes."
                f" {self.alternatives[Capability.UPLOAD_FILES]}"
            )
        return request

    def _check_button(self, request: ButtonRequest, where: str) -> None:
        self.check_job_id(request.job_id, "jobId (job_id)")
        label = request.button.value
        if label == CANCEL_BUTTON:
            raise MidjourneyInvalidRequestError(
                f"button: {CANCEL_BUTTON!r} creates no job; the operators press it themselves when a job"
                " times out or its task is killed (cancel_on_kill)"
            )
        if label not in IMAGINEPRO_BUTTONS and not (request.allow_unknown_button and not request.button.is_known):
            raise MidjourneyInvalidRequestError(
                f"button: {label!r} is not a button of {where}; it offers {', '.join(IMAGINEPRO_BUTTONS)}"
            )
        if request.prompt and label in IMAGINEPRO_BUTTONS and label not in REMIX_BUTTONS:
            raise MidjourneyInvalidRequestError(
                f"prompt: {where} takes a remix prompt only with {', '.join(sorted(REMIX_BUTTONS))}, not with {label!r}"
            )

    def _check_video(self, request: VideoRequest | VideoExtendRequest, where: str) -> None:
        """ImaginePro's video takes a prompt, a start and an end frame (its SDK types all three as
        required); extend takes a clip of a video job. No motion, resolution or batch size."""
        if request.job_id:
            self.check_job_id(request.job_id, "job_id")
        unsupported = ("motion",) if isinstance(request, VideoExtendRequest) else ("motion", "resolution", "batch_size")
        for name in unsupported:
            if getattr(request, name) is not None:
                raise MidjourneyInvalidRequestError(f"{name}: {where} takes no {name} for video; leave it empty")
        if isinstance(request, VideoExtendRequest):
            if request.prompt:
                raise MidjourneyInvalidRequestError(f"prompt: {where} extends a clip without a new prompt")
            if not request.job_id.startswith(VIDEO_PREFIX):
                raise MidjourneyInvalidRequestError(
                    f"job_id: {request.job_id!r} is not a video job of {where} (their ids start with {VIDEO_PREFIX!r})"
                )
            return
        if not request.prompt:
            raise MidjourneyInvalidRequestError(f"prompt: {where} requires a prompt for video")
        if not (request.end_image or request.loop):
            raise MidjourneyInvalidRequestError(
                f"end_image: {where} takes an end frame with every video (its SDK types endFrameUrl as required):"
                " give end_image, or loop=True to end on the start frame"
            )

    def _check_blend(self, request: BlendRequest, where: str) -> None:
        for n in range(1, 6):
            if getattr(request, f"image_blob_{n}") is not None:
                raise MidjourneyInvalidRequestError(
                    f"images[{n - 1}]: {where} blends public http(s) image URLs only, not local files or bytes."
                    f" {self.alternatives[Capability.UPLOAD_FILES]}"
                )
        if request.blend_dimensions not in (None, "Square"):
            raise MidjourneyInvalidRequestError(
                f"blendDimensions (dimensions): {where} takes no blend dimensions (its blend is square);"
                f" leave dimensions at 'Square', got {request.blend_dimensions!r}"
            )

    # -- jobs -----------------------------------------------------------------------------------

    def wire_request(self, request: JobOptions, options: ImagineProOptions) -> tuple[str, str, dict[str, Any]]:
        """(verb, path, JSON body) of a checked request."""
        paths = options.paths
        body: dict[str, Any]
        if isinstance(request, ImagineRequest):
            verb, path, body = "imagine", paths.imagine, {"prompt": request.prompt}
        elif isinstance(request, ButtonRequest):
            verb, path = "button", paths.button
            body = {"messageId": request.job_id, "button": request.button.value}
            body.update({k: v for k, v in (("prompt", request.prompt), ("mask", request.mask)) if v})
        elif isinstance(request, BlendRequest):
            urls = [u for n in range(1, 6) if (u := getattr(request, f"image_url_{n}")) is not None]
            verb, path, body = "blend", paths.blend, {"urls": urls}
        elif isinstance(request, DescribeRequest):
            verb, path, body = "describe", paths.describe, {"url": request.image_url}
        elif isinstance(request, VideoRequest):
            start = request.image
            if request.job_id is not None:
                assert request.index is not None
                start = start_frame_url(self.fetch_job(request.job_id), request.index)
            verb, path = "video", VIDEO_GENERATE
            body = {"prompt": request.prompt, "startFrameUrl": start, "endFrameUrl": request.end_image or start}
        elif isinstance(request, VideoExtendRequest):  # ImaginePro counts clips from 0
            verb, path = "video", VIDEO_EXTEND
            body = {"messageId": request.job_id.removeprefix(VIDEO_PREFIX), "index": request.index - 1}
        else:  # check_request refused it already; kept for callers that skip it
            raise MidjourneyInvalidRequestError(f"{type(request).__name__}: not supported by {self.api_name}")
        if request.reply_ref:
            body["ref"] = request.reply_ref
        if request.reply_url:
            body["webhookOverride"] = request.reply_url
        if options.job_timeout is not None:
            body["timeout"] = options.job_timeout
        return verb, path, body

    def submit_job(self, request: JobOptions) -> MidjourneyJob:
        request = self.check_request(request)
        options = self.options()
        verb, path, body = self.wire_request(request, options)
        response = self._request(
            "POST", path, body=HttpBody(json_body=body), creates_job=True, reply_ref=request.reply_ref
        )
        data = self.parse_json(response, "POST", path, creates_job=True, reply_ref=request.reply_ref)
        answer = self.parse_answer(SubmitAnswer, data, "POST", path, creates_job=True, reply_ref=request.reply_ref)
        if answer.refused:
            error = self.redact(answer.error or f"no messageId in the answer (success={answer.success!r})")
            cls = MidjourneyModeratedError if is_moderation(error, options.patterns) else MidjourneyPermanentError
            raise cls(response.status_code, error, method="POST", path=path)
        assert answer.message_id is not None
        self.log.info("Created ImaginePro %s job %s", verb, answer.message_id)
        prompt = getattr(request, "prompt", None)
        return MidjourneyJob(
            job_id=(VIDEO_PREFIX if verb == "video" else "") + answer.message_id,
            backend=self.backend,
            status=JobStatus.CREATED,
            verb=verb,
            prompt=prompt,
            reply_ref=request.reply_ref,
        )

    def fetch_message(self, job_id: str) -> Message:
        """The raw message (``GET .../message/...``), parsed leniently."""
        path = self.options().paths.message.format(self.check_job_id(job_id))
        return self.parse_answer(Message, self.parse_json(self._request("GET", path), "GET", path), "GET", path)

    def fetch_job(self, job_id: str) -> MidjourneyJob:
        if self.check_job_id(job_id).startswith(VIDEO_PREFIX):
            path = VIDEO_FETCH.format(job_id.removeprefix(VIDEO_PREFIX))
            video = VideoMessage.model_validate(self._request("GET", path).json())
            return video.normalised_video(self.backend, self.options().patterns, job_id)
        return self.fetch_message(job_id).normalised(self.backend, self.options().patterns, job_id)

    async def afetch_job(self, job_id: str) -> MidjourneyJob:
        options = await self.aoptions()
        if self.check_job_id(job_id).startswith(VIDEO_PREFIX):
            path = VIDEO_FETCH.format(job_id.removeprefix(VIDEO_PREFIX))
            video = VideoMessage.model_validate((await self._arequest("GET", path)).json())
            return video.normalised_video(self.backend, options.patterns, job_id)
        path = options.paths.message.format(self.check_job_id(job_id))
        data = self.parse_json(await self._arequest("GET", path), "GET", path)
        message = self.parse_answer(Message, data, "GET", path)
        return message.normalised(self.backend, options.patterns, job_id)

    def _cancel_body(self, job_id: str) -> HttpBody:
        message_id = self.check_job_id(job_id).removeprefix(VIDEO_PREFIX)
        return HttpBody(json_body={"messageId": message_id, "button": CANCEL_BUTTON})

    def cancel(self, job_id: str) -> None:
        """Press ``Cancel Job`` (only while the job runs; it creates no job, so a repeat is harmless)."""
        path = self.options().paths.button
        self._check_cancelled(self._request("POST", path, body=self._cancel_body(job_id)), path)

    async def acancel(self, job_id: str) -> None:
        path = (await self.aoptions()).paths.button
        self._check_cancelled(await self._arequest("POST", path, body=self._cancel_body(job_id)), path)

    def _check_cancelled(self, response: httpx.Response, path: str) -> None:
        try:
            answer = SubmitAnswer.model_validate(response.json())
        except ValueError:
            return
        if answer.success is False:
            raise MidjourneyAPIError(response.status_code, self.redact(answer.error or "cancel refused"), path=path)

    def find_job_by_reply_ref(self, reply_ref: str) -> MidjourneyJob | None:
        """The job of our ``ref`` among the last :data:`HISTORY_SCAN` entries of the 24-hour history.

        ImaginePro lists no running jobs; its history (``GET /api/v1/nova/images``) names each
        message but not its ``ref``, so each is fetched to compare. A failed job is not returned
        (a new one may be submitted); a moderated one is (it must not be resubmitted).
        """
        options = self.options()
        try:
            response = self._request("GET", options.paths.history, params={"page": "1", "size": str(HISTORY_SCAN)})
        except MidjourneyNotFoundError:
            self.log.warning("%s has no history endpoint: cannot look for job with ref %s", self.api_name, reply_ref)
            return None
        history = self.parse_answer(History, self.parse_json(response, "GET", options.paths.history), "GET", "history")
        for entry in history.images[:HISTORY_SCAN]:
            if not entry.id or not VENDOR_ID_PATTERN.fullmatch(entry.id):
                continue
            try:
                job = self.fetch_job(entry.id)
            except MidjourneyNotFoundError:
                continue
            if job.reply_ref == reply_ref and job.status != JobStatus.FAILED:
                return job
        return None

    # -- cost ------------------------------------------------------------------------------------

    def fetch_balance(self) -> Mapping[str, float | int] | None:
        """The account's credits, from ``GET /api/v1/subscription/account-info``.

        The contract names the route and that it reports credits, not its answer's shape: the first
        number found under ``credits`` (or ``remainingCredits``/``balance``), at the top or in
        ``data``, is taken; anything else reports nothing.
        """
        from airflow_provider_midjourney.cost import cost_entry

        payload = self.parse_json(self._request("GET", ACCOUNT_INFO_PATH), "GET", ACCOUNT_INFO_PATH)
        for scope in (payload, payload.get("data") if isinstance(payload, dict) else None):
            if not isinstance(scope, dict):
                continue
            for key in CREDIT_KEYS:
                entry = cost_entry("credits", left=scope.get(key))
                if entry:
                    return entry
        return None

    # -- errors ---------------------------------------------------------------------------------

    def _raise_for_response(self, response: httpx.Response, method: str, path: str) -> None:
        """ImaginePro answers errors as ``{message, error, statusCode}`` (the detail is in ``message``)."""
        if response.status_code < 400:
            return
        text = self.redact(_error_text(response))
        if response.status_code in (400, 403, 422) and is_moderation(text, self.options().patterns):
            raise MidjourneyModeratedError(response.status_code, text, method=method, path=path)
        if response.status_code == 402:
            raise ImagineProCreditsError(402, text, method=method, path=path)
        raise note_retry_after(error_for_status(response.status_code, text, method=method, path=path), response.headers)


def _error_text(response: httpx.Response) -> str:
    """``message (error)`` of ``{message, error, statusCode}``; any other body as text."""
    payload = error_payload(response)
    if isinstance(payload, str):
        return payload
    texts = []
    for key in ("message", "error", "detail"):
        value = payload.get(key)
        if isinstance(value, list):  # NestJS validation errors: a list of messages
            value = "; ".join(str(v) for v in value)
        if value and str(value) not in texts:
            texts.append(str(value))
    if not texts:
        return str(payload)[:500]
    return (texts[0] + (f" ({', '.join(texts[1:])})" if texts[1:] else ""))[:1000]


def _job_timeout(value: Any, conn_id: str) -> int | None:
    low, high = JOB_TIMEOUT_RANGE
    return check_job_timeout_extra(value, conn_id, minimum=low, maximum=high, api="ImaginePro")
