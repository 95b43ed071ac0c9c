"""The TTAPI backend: Midjourney through api.ttapi.io (pay-per-use pool or a hosted account).

Connection (type ``ttapi``, default id ``ttapi_default``): password = the key (sent as the
``TT-API-KEY`` header), host = base URL (empty: ``https://api.ttapi.io``; the "account hosting"
mode uses another host, which TTAPI does not publish), extras ``mode`` (``fast``, the default,
``relax`` or ``turbo``: sent with every imagine and blend), ``job_timeout`` (the vendor's own job
``timeout``, 300-1200 s; empty: TTAPI's default), ``max_jobs`` (the account's jobs in progress, for
the busy-account gate: TTAPI caps it at 10 unless raised), ``moderation_patterns`` and ``timeout``
(seconds per HTTP request, as on every backend).

A button is sent as TTAPI's ``action`` name only when the parent job lists that name in its
``components`` (one free ``GET /fetch`` first): U1-U4 = ``upsample1..4``, V1-V4 = ``variation1..4``,
🔄 = ``reroll``; the zoom/pan/vary/upscale names come from a third-party write-up, so the parent's
list decides. Vary (Region) goes to ``/inpaint`` with its mask. Seed is a job of its own
(``/seed``), video goes to ``/midjourney/video/submit`` and ``/extend`` (fast mode only).

No cancel, no settings family, no reference field: a lost creation answer cannot be matched to
its job (TTAPI stores no id of ours), so the operator fails without resubmitting. An imagine job's
``images`` are TTAPI's crops of the grid (``image_kind: "crops"``), not upscales.
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
    MidjourneyBusyError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyModeratedError,
    MidjourneyNotFoundError,
    MidjourneyPermanentError,
    MidjourneySubmitUncertainError,
    MidjourneySubscriptionError,
    error_for_status,
)
from airflow_provider_midjourney.hooks.base import Capability, ConnectionSettings, MidjourneyBackendHook
from airflow_provider_midjourney.hooks.inline_images import data_url
from airflow_provider_midjourney.hooks.transport import HeaderAuth
from airflow_provider_midjourney.hooks.ttapi_models import (
    ACTIONS,
    LABELS,
    Envelope,
    JobData,
    is_not_found,
    is_quota,
    normalised,
    parse_list,
)
from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.job_requests import (
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    ImagineRequest,
    JobOptions,
    SeedRequest,
)
from airflow_provider_midjourney.text_patterns import is_moderation, moderation_patterns
from airflow_provider_midjourney.video_requests import VideoExtendRequest, VideoRequest
from airflow_provider_midjourney.vocabulary import Button, JobStatus
from airflow_provider_midjourney.wire import HttpBody

DEFAULT_BASE_URL = "https://api.ttapi.io"
MODES = ("fast", "relax", "turbo")
JOB_TIMEOUT_RANGE = (300, 1200)
JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{5,127}")
V1 = "/midjourney/v1"
VIDEO = "/midjourney/video"
#: ``fetch-list`` page size (its documented maximum) and how many pages one list call reads per state.
LIST_LIMIT = 100
LIST_PAGES = 3
_RUNNING_STATES = ("PENDING_QUEUE", "ON_QUEUE")
_BLEND_DIMENSIONS = {"Portrait": "PORTRAIT", "Square": "SQUARE", "Landscape": "LANDSCAPE"}
_VIDEO_BUTTONS = {Button.ANIMATE_LOW, Button.ANIMATE_HIGH, Button.EXTEND_LOW, Button.EXTEND_HIGH}


@dataclass(frozen=True)
class TtapiOptions:
    """What the hook takes from the connection's extras (checked before any request)."""

    mode: str
    job_timeout: int | None
    patterns: tuple[re.Pattern[str], ...]


class TtapiQuotaError(MidjourneySubscriptionError):
    """TTAPI's quota (balance) is used up: 402, or a refusal saying "insufficient quota"."""

    hint = " (the TTAPI account's quota is used up: top it up at ttapi.io; nothing is retried)"


class TtapiBlockedError(MidjourneyPermanentError):
    """403: TTAPI blocked the account (its older status page)."""

    hint = " (TTAPI blocked this account or key: contact TTAPI)"


class TtapiHook(MidjourneyBackendHook):
    """Talks to TTAPI's Midjourney API; see the module docstring for the connection."""

    conn_name_attr = "midjourney_conn_id"
    default_conn_name = "ttapi_default"
    conn_type = "ttapi"
    hook_name = "Midjourney (TTAPI)"

    backend = "ttapi"
    api_name = "TTAPI"
    default_base_url = DEFAULT_BASE_URL
    capabilities = frozenset(
        {
            Capability.IMAGINE,
            Capability.BUTTON,
            Capability.BLEND,
            Capability.DESCRIBE,
            Capability.SEED,
            Capability.LIST_RUNNING,
            Capability.SEPARATE_IMAGES,
            Capability.VIDEO,
            Capability.VIDEO_EXTEND,
        }
    )
    alternatives: ClassVar[Mapping[Capability, str]] = {
        Capability.SETTINGS: (
            "TTAPI picks the speed per request: set the connection's extra 'mode' to fast, relax or turbo"
            " (one connection per mode)."
        ),
        Capability.CANCEL: "TTAPI has no cancel endpoint: a job runs until its 'job_timeout' (300-1200 s).",
        Capability.UPLOAD_FILES: "TTAPI takes images as base64 in JSON: local files are sent that way.",
    }

    def _auth(self, settings: ConnectionSettings) -> httpx.Auth | None:
        return HeaderAuth("TT-API-KEY", settings.token) if settings.token else None

    # -- connection extras ----------------------------------------------------------------------

    def options(self) -> TtapiOptions:
        return self._options_from(self.connection_settings)

    async def aoptions(self) -> TtapiOptions:
        return self._options_from(await self.aconnection_settings())

    def _options_from(self, settings: ConnectionSettings) -> TtapiOptions:
        extra, conn = settings.extra, self.midjourney_conn_id
        mode = str(extra.get("mode") or "fast").strip().lower()
        if mode not in MODES:
            raise MidjourneyError(
                f"Connection {conn!r}: extra 'mode' must be one of {', '.join(MODES)}, got {extra.get('mode')!r}"
            )
        return TtapiOptions(
            mode=mode,
            job_timeout=_job_timeout(extra.get("job_timeout"), conn),
            patterns=moderation_patterns(extra.get("moderation_patterns"), conn),
        )

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: one free ``GET /midjourney/v1/info`` (no retries, at most 8 s)."""
        from airflow_provider_midjourney.hooks.connection_test import probe

        try:
            settings, _ = self.connection_settings, self.options()
        except MidjourneyError as exc:
            return False, str(exc)

        def looks_right(data: Any) -> bool:
            return isinstance(data, dict) and isinstance(data.get("data"), dict) and "status" in data

        def describe(data: Any) -> str:
            balance = data["data"].get("balance")
            shown = f" (balance {balance})" if isinstance(balance, int | float | str) and str(balance)[:20] else ""
            return f"Connected to TTAPI at {settings.base_url}: the key is accepted{shown}."

        return probe(
            settings.base_url,
            f"{V1}/info",
            {"TT-API-KEY": settings.token},
            looks_right=looks_right,
            api_name="TTAPI's Midjourney API",
            timeout=min(settings.timeout, 8.0),
            describe=describe,
        )

    # -- checks before any request --------------------------------------------------------------

    def check_job_id(self, job_id: Any, field: str = "job_id") -> str:
        if not isinstance(job_id, str) or not JOB_ID_PATTERN.fullmatch(job_id):
            raise MidjourneyInvalidRequestError(
                f"{field}: must be a TTAPI jobId such as afa774a3-1aee-5aba-4510-14818d6875e4"
                f" (letters, digits, - and _), got {str(job_id)[:80]!r}"
            )
        return job_id

    def check_request(self, request: JobOptions) -> JobOptions:
        request = super().check_request(request)
        options = self.options()  # the connection's extras are checked before any request too
        where = f"the TTAPI backend (connection {self.midjourney_conn_id!r})"
        if request.channel is not None:
            raise MidjourneyInvalidRequestError(f"channel: {where} chooses the account itself; leave channel empty")
        if request.reply_level is not None:
            raise MidjourneyInvalidRequestError(f"replyLevel (reply_level): {where} has none; leave it empty")
        if isinstance(request, ButtonRequest):
            self._check_button(request, where)
        elif isinstance(request, SeedRequest | VideoExtendRequest):
            self.check_job_id(request.job_id)
        elif isinstance(request, VideoRequest):
            self._check_video(request, options, where)
        return request

    def _check_button(self, request: ButtonRequest, where: str) -> None:
        self.check_job_id(request.job_id, "jobId (job_id)")
        button, label = request.button, request.button.value
        if button in _VIDEO_BUTTONS:
            raise MidjourneyInvalidRequestError(
                f"button: {label!r} is a video button; on {where} use MidjourneyVideoOperator"
                " (VideoRequest) or MidjourneyVideoExtendOperator (VideoExtendRequest) instead"
            )
        if button == Button.VARY_REGION:
            return  # /inpaint: its mask and optional prompt
        if request.prompt:
            raise MidjourneyInvalidRequestError(
                f"prompt: {where} takes no prompt with a button (its /action has no prompt field);"
                f" only 'Vary (Region)' takes one. Leave prompt empty for {label!r}"
            )
        if label not in ACTIONS and button.is_known:
            raise MidjourneyInvalidRequestError(
                f"button: {label!r} is not a button of {where}; it offers {', '.join(ACTIONS)} and Vary (Region)"
                " (each only where the parent job lists it)"
            )

    def _check_video(self, request: VideoRequest, options: TtapiOptions, where: str) -> None:
        if request.job_id is not None:
            self.check_job_id(request.job_id)
        if not request.prompt:
            raise MidjourneyInvalidRequestError(
                f"prompt: {where} requires a prompt for video (TTAPI marks it required)"
            )
        if request.loop:
            raise MidjourneyInvalidRequestError(
                f"loop: {where} has no loop option (TTAPI's video submit documents none); give end_image instead"
            )
        if options.mode != "fast":
            raise MidjourneyInvalidRequestError(
                f"mode: TTAPI renders video in fast mode only, and connection {self.midjourney_conn_id!r} has"
                f" mode {options.mode!r}; use a connection with mode 'fast' for video"
            )

    # -- jobs -----------------------------------------------------------------------------------

    def wire_request(self, request: JobOptions, options: TtapiOptions) -> tuple[str, str, dict[str, Any]]:
        """(verb, path, JSON body) of a checked request; a button or video may read its parent first."""
        body: dict[str, Any]
        if isinstance(request, ImagineRequest):
            verb, path, body = "imagine", f"{V1}/imagine", {"prompt": request.prompt, "mode": options.mode}
        elif isinstance(request, ButtonRequest):
            verb = "button"
            path, body = self._button_body(request)
        elif isinstance(request, BlendRequest):
            images = [
                data_url(self, source, f"images[{n - 1}]")
                for n in range(1, 6)
                if (source := getattr(request, f"image_blob_{n}") or getattr(request, f"image_url_{n}")) is not None
            ]
            dimensions = _BLEND_DIMENSIONS[request.blend_dimensions or "Square"]
            verb, path = "blend", f"{V1}/blend"
            body = {"imgBase64Array": images, "dimensions": dimensions, "mode": options.mode}
        elif isinstance(request, DescribeRequest):
            verb, path = "describe", f"{V1}/describe"
            if request.image_blob is not None:
                body = {"base64": data_url(self, request.image_blob, "image")}
            else:
                body = {"url": request.image_url}
        elif isinstance(request, SeedRequest):
            verb, path, body = "seed", f"{V1}/seed", {"jobId": request.job_id}
        elif isinstance(request, VideoRequest):
            verb, path, body = "video", f"{VIDEO}/submit", self._video_body(request)
        elif isinstance(request, VideoExtendRequest):
            verb, path, body = "video_extend", f"{VIDEO}/extend", _extend_body(request)
        else:  # check_request refused it already; kept for callers that skip it
            raise MidjourneyInvalidRequestError(f"{type(request).__name__}: not supported by {self.api_name}")
        if options.job_timeout is not None and not path.startswith(VIDEO):
            body["timeout"] = options.job_timeout
        if request.reply_url:
            body["hookUrl"] = request.reply_url
        return verb, path, body

    def _button_body(self, request: ButtonRequest) -> tuple[str, dict[str, Any]]:
        label = request.button.value
        if request.button == Button.VARY_REGION:
            assert request.mask is not None  # ButtonRequest requires it
            body = {"jobId": request.job_id, "mask": _bare_base64(request.mask)}
            return f"{V1}/inpaint", {**body, **({"prompt": request.prompt} if request.prompt else {})}
        action = ACTIONS.get(label, label)
        parent = self.fetch_data(request.job_id)[1]
        if action not in parent.components:
            offered = ", ".join(f"{LABELS.get(c, c)} ({c})" for c in parent.components) or "none"
            raise MidjourneyInvalidRequestError(
                f"button: job {request.job_id} does not offer {label!r} (TTAPI action {action!r}); it offers: {offered}"
            )
        return f"{V1}/action", {"jobId": request.job_id, "action": action}

    def _video_body(self, request: VideoRequest) -> dict[str, Any]:
        image = request.image
        if image is None:
            assert request.job_id is not None and request.index is not None  # the model requires them
            image = self._start_frame(request.job_id, request.index)
        body: dict[str, Any] = {"prompt": request.prompt, "imageUrl": image, "mode": "fast"}
        optional = {
            "endingUrl": request.end_image,
            "manual": request.motion,
            "resolution": request.resolution,
            "bs": request.batch_size,
        }
        return {**body, **{k: v for k, v in optional.items() if v is not None}}

    def _start_frame(self, job_id: str, index: int) -> str:
        """Picture ``index`` (1-4) of a finished image job, as TTAPI takes start frames by URL only."""
        envelope, data = self.fetch_data(job_id)
        if envelope.raw_status != "SUCCESS":
            raise MidjourneyInvalidRequestError(f"job_id: job {job_id} is not finished ({envelope.status})")
        if len(data.pictures) == 4:
            return data.pictures[index - 1]
        if data.picture and index == 1:
            return data.picture
        raise MidjourneyInvalidRequestError(
            f"index: job {job_id} has {len(data.pictures) or int(bool(data.picture))} picture(s), no picture {index}"
        )

    def submit_job(self, request: JobOptions) -> MidjourneyJob:
        request = self.check_request(request)
        options = self.options()
        verb, path, body = self.wire_request(request, options)
        response = self._request("POST", path, body=HttpBody(json_body=body), creates_job=True)
        data = self.parse_json(response, "POST", path, creates_job=True, reply_ref=request.reply_ref)
        answer = self.parse_answer(Envelope, data, "POST", path, creates_job=True, reply_ref=request.reply_ref)
        if answer.refused:
            if answer.raw_status == "SUCCESS":  # taken, but no id to follow: it may exist
                raise MidjourneySubmitUncertainError(
                    f"POST {path} answered SUCCESS without a jobId: the request is not sent again",
                    path=path,
                    reply_ref=request.reply_ref,
                )
            raise self._refusal(response.status_code, answer.message or "refused without a reason", "POST", path)
        job_id = self.check_job_id(answer.new_job_id, "data.job_id")
        self.log.info("Created TTAPI %s job %s", verb, job_id)
        return MidjourneyJob(
            job_id=job_id,
            backend=self.backend,
            status=JobStatus.CREATED,
            verb=verb,
            prompt=getattr(request, "prompt", None),
            reply_ref=request.reply_ref,
        )

    def fetch_data(self, job_id: str) -> tuple[Envelope, JobData]:
        """``GET /midjourney/v1/fetch?jobId=``: the envelope and its ``data``, parsed leniently."""
        path = f"{V1}/fetch"
        response = self._request("GET", path, params={"jobId": self.check_job_id(job_id)})
        envelope = self._envelope(response, path, job_id)
        return envelope, JobData.model_validate(envelope.data if isinstance(envelope.data, dict) else {})

    def fetch_job(self, job_id: str) -> MidjourneyJob:
        envelope, _ = self.fetch_data(job_id)
        return normalised(envelope, self.backend, self.options().patterns, job_id)

    async def afetch_job(self, job_id: str) -> MidjourneyJob:
        options, path = await self.aoptions(), f"{V1}/fetch"
        response = await self._arequest("GET", path, params={"jobId": self.check_job_id(job_id)})
        return normalised(self._envelope(response, path, job_id), self.backend, options.patterns, job_id)

    def _envelope(self, response: httpx.Response, path: str, job_id: str) -> Envelope:
        envelope = self.parse_answer(Envelope, self.parse_json(response, "GET", path), "GET", path)
        if envelope.data is None and is_not_found(envelope.message):
            raise MidjourneyNotFoundError(404, self.redact(envelope.message or ""), method="GET", path=path)
        if not isinstance(envelope.data, dict) and envelope.raw_status not in ("FAILED", "FAIL"):
            raise self._malformed(f"GET {path} answered no job data for {job_id}", path, False)
        return envelope

    def find_job_by_reply_ref(self, reply_ref: str) -> MidjourneyJob | None:
        """Always None: TTAPI stores no reference of ours (no custom id; its list shows no hookUrl).

        After a lost creation answer the operator therefore fails without resubmitting, so no
        duplicate job and no repeated moderated prompt can come of it.
        """
        self.log.warning("TTAPI keeps no reference of ours: job with ref %s cannot be looked up", reply_ref)
        return None

    async def alist_running_job_ids(self) -> set[str] | None:
        """Every queued or running job: ``GET fetch-list?status=PENDING_QUEUE`` and ``ON_QUEUE``.

        At most :data:`LIST_PAGES` pages of :data:`LIST_LIMIT` per state; a job beyond them is
        simply not listed (its trigger then fetches it itself). An entry whose integer status
        reads as finished is left out, so its trigger looks. No list route (404/405): None.
        """
        path, running = f"{V1}/fetch-list", set[str]()
        for state in _RUNNING_STATES:
            for page in range(1, LIST_PAGES + 1):
                params = {"page": str(page), "limit": str(LIST_LIMIT), "status": state, "order": "desc"}
                try:
                    response = await self._arequest("GET", path, params=params)
                except MidjourneyNotFoundError:
                    return None
                envelope = self.parse_answer(Envelope, self.parse_json(response, "GET", path), "GET", path)
                items = parse_list(envelope.data)
                running.update(i.job_id for i in items if i.job_id and i.state not in ("SUCCESS", "FAILED"))
                if len(items) < LIST_LIMIT:
                    break
        return running

    # -- errors ---------------------------------------------------------------------------------

    def _refusal(self, status_code: int, text: str, method: str, path: str) -> MidjourneyPermanentError:
        """A refused request: out of quota, a moderated prompt, or another permanent refusal."""
        text = self.redact(text)
        if status_code == 402 or is_quota(text):
            return TtapiQuotaError(status_code, text, method=method, path=path)
        if is_moderation(text, self.options().patterns):
            return MidjourneyModeratedError(
                status_code, text + ". The prompt is not resubmitted", method=method, path=path
            )
        if status_code == 403:
            return TtapiBlockedError(status_code, text, method=method, path=path)
        return MidjourneyPermanentError(status_code, text, method=method, path=path)

    def _raise_for_response(self, response: httpx.Response, method: str, path: str) -> None:
        """TTAPI errors are ``{status: "FAILED", message, data}``; 499 = queue exhausted (busy)."""
        if response.status_code < 400:
            return
        text = self.redact(_error_text(response))
        if response.status_code in (429, 499):
            busy = MidjourneyBusyError(response.status_code, text, method=method, path=path)
            raise note_retry_after(busy, response.headers)
        if response.status_code in (400, 402, 403, 422) or is_quota(text):
            refusal = self._refusal(response.status_code, text, method, path)
            if type(refusal) is not MidjourneyPermanentError:
                raise refusal
        raise note_retry_after(error_for_status(response.status_code, text, method=method, path=path), response.headers)


def _extend_body(request: VideoExtendRequest) -> dict[str, Any]:
    """TTAPI's clips are 0-3; a prompt makes it a "manual" extension (field name not documented)."""
    body: dict[str, Any] = {"jobId": request.job_id, "index": request.index - 1}
    if request.motion:
        body["manual"] = request.motion
    if request.prompt:
        body.update(animateMode="manual", prompt=request.prompt)
    return body


def _bare_base64(mask: str) -> str:
    """TTAPI wants the mask without a ``data:`` prefix."""
    return mask.split(",", 1)[1] if mask.startswith("data:") and "," in mask else mask


def _error_text(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase or "no details"
    if isinstance(payload, dict):
        for key in ("message", "error", "msg", "detail"):
            if isinstance(payload.get(key), str) and payload[key].strip():
                return str(payload[key])[:1000]
    return str(payload)[:500]


def _job_timeout(value: Any, conn_id: str) -> int | None:
    low, high = JOB_TIMEOUT_RANGE
    return check_job_timeout_extra(value, conn_id, minimum=low, maximum=high, api="TTAPI")
