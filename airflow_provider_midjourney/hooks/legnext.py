"""The Legnext backend: Midjourney through api.legnext.ai, or through Youchuan (悠船), the API it appears to resell.

One hook serves both, picked by the connection's ``api`` extra:

* ``legnext`` (default): base ``https://api.legnext.ai``, routes ``/api/v1/<op>``, header
  ``x-api-key: <password>``; the Test button reads ``GET /api/account/balance``;
* ``youchuan``: base ``https://ali.youchuan.cn``, routes ``/v1/tob/<op>``, headers
  ``x-youchuan-app: <login>`` and ``x-youchuan-secret: <password>``; no blend or describe route is
  listed there, so those are refused before any request.

Every follow-up names its parent by ``jobId`` and a 0-based ``imageNo``; our buttons stay U1-U4,
V1-V4, 🔄, Vary (Subtle/Strong/Region), the pan arrows, Zoom Out and Upscale (Subtle/Creative),
mapped in :data:`BUTTONS`. The parent is read first (one ``GET``): its ``available_actions`` say
which ``imageNo`` each follow-up accepts, so a button it does not offer is refused before the
job-creating call. There is no seed endpoint: a seed request reads ``output.seed`` of the finished
parent and creates no job. There is no list call (triggers poll each job) and no reference field,
so a lost creation answer fails as uncertain and is never re-sent. 403 at submit is moderation or a
whitelist-only feature, told apart by the message; 402 is credits; 429 is busy (retried).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from airflow_provider_midjourney.admission import note_retry_after
from airflow_provider_midjourney.exceptions import (
    MidjourneyAuthError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyModeratedError,
    MidjourneyPermanentError,
    MidjourneySubmitUncertainError,
    MidjourneySubscriptionError,
    MidjourneyUnsupportedError,
    error_for_status,
)
from airflow_provider_midjourney.hooks.base import (
    Capability,
    ConnectionSettings,
    MidjourneyBackendHook,
    error_payload,
)
from airflow_provider_midjourney.hooks.connection_values import check_token
from airflow_provider_midjourney.hooks.legnext_models import (
    LegnextJob,
    LegnextOutput,
    YouchuanJob,
    is_moderation,
    is_whitelist,
)
from airflow_provider_midjourney.hooks.transport import HeaderAuth
from airflow_provider_midjourney.input_checks import VENDOR_ID_PATTERN, check_vendor_id
from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.models import (
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    HttpBody,
    ImagineRequest,
    JobOptions,
    JobStatus,
    SeedRequest,
)
from airflow_provider_midjourney.video_requests import VideoExtendRequest, VideoRequest

__all__ = ["BUTTONS", "LegnextHook"]

SEED_SUFFIX = ":seed"
ASPECT = {"Portrait": "2:3", "Square": "1:1", "Landscape": "3:2"}
PAN_DIRECTIONS = {"⬇️": 0, "➡️": 1, "⬆️": 2, "⬅️": 3}  # Legnext's direction codes
PAN_SCALE = 1.5  # required by /pan (1.1-3.0); Midjourney's pan buttons extend by half
ZOOMS = {"Zoom Out 2x": 2.0, "Zoom Out 1.5x": 1.5}
# label -> (op, fields); grid buttons carry the picture (imageNo = n - 1), the others act on
# picture 0 of a single-picture parent (an upscale).
GRID_BUTTONS: dict[str, tuple[str, dict[str, Any]]] = {
    **{f"U{n}": ("upscale", {"imageNo": n - 1, "type": 0}) for n in range(1, 5)},
    **{f"V{n}": ("variation", {"imageNo": n - 1, "type": 1}) for n in range(1, 5)},
}
SINGLE_BUTTONS: dict[str, tuple[str, dict[str, Any]]] = {
    "Upscale (Subtle)": ("upscale", {"imageNo": 0, "type": 0}),
    "Upscale (Creative)": ("upscale", {"imageNo": 0, "type": 1}),
    "Vary (Subtle)": ("variation", {"imageNo": 0, "type": 0}),
    "Vary (Strong)": ("variation", {"imageNo": 0, "type": 1}),
    "Vary (Region)": ("inpaint", {"imageNo": 0}),
    **{label: ("outpaint", {"imageNo": 0, "scale": scale}) for label, scale in ZOOMS.items()},
    **{label: ("pan", {"imageNo": 0, "direction": code, "scale": PAN_SCALE}) for label, code in PAN_DIRECTIONS.items()},
}
CUSTOM_ZOOM = "Custom Zoom"  # outpaint with the prompt's --zoom (1.1-2.0) and the rest as remixPrompt
SINGLE_BUTTONS[CUSTOM_ZOOM] = ("outpaint", {"imageNo": 0})
_ZOOM_FLAG = re.compile(r"\s*--zoom\s+([0-9]+(?:\.[0-9]+)?)\b")
REROLL = "🔄"
BUTTONS = (*GRID_BUTTONS, REROLL, *SINGLE_BUTTONS)
REMIX_MODE = {"Vary (Strong)": 0, "Vary (Subtle)": 1}  # /remix: 0 = Strong, 1 = Subtle
VIDEO_TYPE = {"sd": 0, "hd": 1}  # 480p, 720p


@dataclass(frozen=True)
class LegnextApi:
    """One of the two APIs: where it lives and what it offers."""

    name: str
    base_url: str
    prefix: str
    probe: str
    capabilities: frozenset[Capability]

    def path(self, op: str) -> str:
        return f"{self.prefix}/{op}"

    def job_path(self, job_id: str) -> str:
        return f"{self.prefix}/job/{job_id}"


_ALL = frozenset(
    {
        Capability.IMAGINE,
        Capability.BUTTON,
        Capability.BLEND,
        Capability.DESCRIBE,
        Capability.SEED,
        Capability.SEPARATE_IMAGES,
        Capability.VIDEO,
        Capability.VIDEO_EXTEND,
    }
)
APIS = {
    "legnext": LegnextApi("legnext", "https://api.legnext.ai", "/api/v1", "/api/account/balance", _ALL),
    "youchuan": LegnextApi(
        "youchuan",
        "https://ali.youchuan.cn",
        "/v1/tob",
        "/v1/tob/costs",
        _ALL - {Capability.BLEND, Capability.DESCRIBE},
    ),
}
DEFAULT_API = "legnext"


class LegnextCreditsError(MidjourneySubscriptionError):
    """402: the account has no credits (or balance) left."""

    hint = " (the account has no credits left: top it up at legnext.ai, or the Youchuan balance)"


class LegnextWhitelistError(MidjourneyPermanentError, MidjourneyUnsupportedError):
    """403 for a feature reserved to whitelisted accounts: not retried, not moderation."""

    hint = " (this account may not use the feature: it is reserved to whitelisted plans; nothing is retried)"


class _HeadersAuth(httpx.Auth):
    """Youchuan's two headers per API request; never shown in reprs."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self._headers)
        yield request

    def __repr__(self) -> str:
        return f"_HeadersAuth({', '.join(self._headers)}: ***)"


class LegnextHook(MidjourneyBackendHook):
    """Talks to Legnext's Midjourney API, or to Youchuan's (extra ``api``); see the module docstring.

    Connection: password = API key (Legnext) or app secret (Youchuan), login = Youchuan app id,
    host = base URL (empty: the API's own), extras ``api`` (``legnext`` or ``youchuan``) and
    ``timeout`` (seconds per HTTP request).
    """

    conn_name_attr = "midjourney_conn_id"
    default_conn_name = "legnext_default"
    conn_type = "legnext"
    hook_name = "Midjourney (Legnext / Youchuan)"

    backend = "legnext"
    api_name = "Legnext"
    default_base_url = APIS[DEFAULT_API].base_url
    capabilities = _ALL
    alternatives: ClassVar[Mapping[Capability, str]] = {
        Capability.SETTINGS: "Legnext has no settings commands: put --fast, --relax or --turbo in the prompt.",
        Capability.CANCEL: "Legnext has no cancel endpoint: the job runs to its end.",
        Capability.BLEND: "Youchuan lists no blend route: use api 'legnext', or an image prompt in imagine.",
        Capability.DESCRIBE: "Youchuan lists no describe route: use api 'legnext'.",
        Capability.UPLOAD_FILES: "Legnext takes public http(s) image URLs only: upload the file first.",
    }

    def __init__(self, midjourney_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(midjourney_conn_id, **kwargs)
        self._api: LegnextApi | None = None
        self._app = ""

    # -- connection -----------------------------------------------------------------------------

    def _settings_from(self, conn: Any) -> ConnectionSettings:
        settings = super()._settings_from(conn)
        raw = settings.extra.get("api")
        name = str(raw or DEFAULT_API).strip().lower()
        if name not in APIS:
            raise MidjourneyError(
                f"Connection {self.midjourney_conn_id!r}: extra 'api' must be one of {', '.join(APIS)}, got {raw!r}"
            )
        api = APIS[name]
        if name == "youchuan":
            self._app = check_token(conn.login, self.midjourney_conn_id, "Youchuan app id (login)")
            if not (conn.host or "").strip():
                settings = dataclasses.replace(settings, base_url=api.base_url)
        self._api = api
        return settings

    @property
    def api(self) -> LegnextApi:
        self.connection_settings  # noqa: B018 - parses the extras too
        assert self._api is not None
        return self._api

    async def aapi(self) -> LegnextApi:
        await self.aconnection_settings()
        assert self._api is not None
        return self._api

    def supported_capabilities(self) -> frozenset[Capability]:
        return self.api.capabilities

    def _auth(self, settings: ConnectionSettings) -> httpx.Auth | None:
        if self._api is not None and self._api.name == "youchuan":
            return _HeadersAuth({"x-youchuan-app": self._app, "x-youchuan-secret": settings.token})
        return HeaderAuth("x-api-key", settings.token)

    def _probe_headers(self, settings: ConnectionSettings) -> dict[str, str]:
        if self.api.name == "youchuan":
            return {"x-youchuan-app": self._app, "x-youchuan-secret": settings.token}
        return {"x-api-key": settings.token}

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: one cheap read (Legnext's balance; Youchuan's cost list), no retries."""
        from airflow_provider_midjourney.hooks.connection_test import probe

        try:
            settings, api = self.connection_settings, self.api
        except MidjourneyError as exc:
            return False, str(exc)
        name = "Legnext" if api.name == "legnext" else "Youchuan"

        def looks_right(data: Any) -> bool:
            if api.name == "legnext":
                return isinstance(data, dict) and isinstance(data.get("data"), dict)
            return isinstance(data, dict | list)

        def describe(data: Any) -> str:
            found = data.get("data") if isinstance(data, dict) else None
            credits = ""
            if api.name == "legnext" and isinstance(found, dict):
                credits = f" ({found.get('available_credits')} credits, {found.get('available_points')} points left)"
            return f"Connected to {name} at {settings.base_url}: the key is accepted{credits}."

        return probe(
            settings.base_url,
            api.probe,
            self._probe_headers(settings),
            looks_right=looks_right,
            api_name=f"the {name} API",
            timeout=min(settings.timeout, 8.0),
            describe=describe,
        )

    # -- checks before any request ----------------------------------------------------------------

    def check_job_id(self, job_id: Any, field: str = "job_id") -> str:
        return check_vendor_id(job_id, field, "a Legnext job id such as a616de55-6130-4e1f-b8cd-531ed0599353")

    def check_request(self, request: JobOptions) -> JobOptions:
        request = super().check_request(request)
        where = f"the {self.api_name} backend (connection {self.midjourney_conn_id!r})"
        if request.channel is not None:
            raise MidjourneyInvalidRequestError(f"channel: {where} has no Discord channels; leave channel empty")
        if request.reply_level is not None:
            raise MidjourneyInvalidRequestError(f"replyLevel (reply_level): {where} has no reply levels")
        if isinstance(request, ButtonRequest):
            self._check_button(request, where)
        elif isinstance(request, SeedRequest):
            self.check_job_id(request.job_id, "jobId (job_id)")
        elif isinstance(request, BlendRequest):
            if any(getattr(request, f"image_blob_{n}") is not None for n in range(1, 6)):
                raise MidjourneyUnsupportedError(
                    f"images: {where} blends public http(s) image URLs only, not local files or bytes."
                    f" {self.alternatives[Capability.UPLOAD_FILES]}"
                )
        elif isinstance(request, DescribeRequest) and request.image_blob is not None:
            raise MidjourneyUnsupportedError(
                f"image: {where} describes public http(s) image URLs only. {self.alternatives[Capability.UPLOAD_FILES]}"
            )
        elif isinstance(request, VideoRequest):
            if request.job_id is not None:
                self.check_job_id(request.job_id, "job_id")
            if request.batch_size is not None:
                raise MidjourneyUnsupportedError(
                    f"batch_size: {where} takes no batch size for video (its video-diffusion has no such field);"
                    " leave batch_size empty"
                )
        elif isinstance(request, VideoExtendRequest):
            self.check_job_id(request.job_id, "job_id")
        return request

    def _check_button(self, request: ButtonRequest, where: str) -> None:
        self.check_job_id(request.job_id, "jobId (job_id)")
        label = request.button.value
        if label not in BUTTONS:
            raise MidjourneyUnsupportedError(
                f"button: {label!r} is not a button of {where}; it offers {', '.join(BUTTONS)}"
            )
        if request.prompt is not None and label == REROLL:
            raise MidjourneyInvalidRequestError(f"prompt: {where} rerolls without a new prompt; leave prompt empty")
        if label == "Vary (Region)":
            mask_body(request.mask or "")

    # -- jobs -----------------------------------------------------------------------------------

    def submit_job(self, request: JobOptions) -> MidjourneyJob:
        request = self.check_request(request)
        if isinstance(request, SeedRequest):
            return self._seed(request.job_id)
        op, body = self.wire_request(request)
        if request.reply_url:
            body["callback"] = request.reply_url
        path = self.api.path(op)
        response = self._request("POST", path, body=HttpBody(json_body=body), creates_job=True)
        data = self.parse_json(response, "POST", path, creates_job=True)
        job_id = _job_id_in(data)
        if not job_id or not VENDOR_ID_PATTERN.fullmatch(job_id):
            raise MidjourneySubmitUncertainError(
                f"POST {path} answered {response.status_code} without a job id: the job may exist, so the request"
                " is not sent again",
                path=path,
                reply_ref=request.reply_ref,
            )
        job = self._normalised(data, job_id, op)
        if job.status in (JobStatus.FAILED, JobStatus.MODERATED):  # a failed Job in a 2xx answer
            self._raise_refusal(response.status_code, job.error or "refused", "POST", path)
        self.log.info("Created %s %s job %s", self.api.name, op, job_id)
        return dataclasses.replace(job, prompt=getattr(request, "prompt", None), reply_ref=request.reply_ref)

    def wire_request(self, request: JobOptions) -> tuple[str, dict[str, Any]]:
        """(op, JSON body) of a checked request (buttons read their parent first)."""
        if isinstance(request, ImagineRequest):
            return "diffusion", {"text": request.prompt}
        if isinstance(request, ButtonRequest):
            return self._button_call(request)
        if isinstance(request, BlendRequest):
            urls = [u for n in range(1, 6) if (u := getattr(request, f"image_url_{n}")) is not None]
            # The vendor's two OpenAPI files agree on this shape; its docs page shows base64Array +
            # dimension instead (docs/backends/legnext.md).
            return "blend", {"imgUrls": urls, "aspect_ratio": ASPECT[request.blend_dimensions or "Square"]}
        if isinstance(request, DescribeRequest):
            return "describe", {"imgUrl": request.image_url}
        if isinstance(request, VideoRequest):
            return "video-diffusion", video_body(request)
        if isinstance(request, VideoExtendRequest):
            body: dict[str, Any] = {"jobId": request.job_id, "videoNo": request.index - 1}
            prompt = " ".join(
                p for p in (request.prompt, f"--motion {request.motion}" if request.motion else None) if p
            )
            return "extend-video", {**body, "prompt": prompt} if prompt else body
        raise MidjourneyUnsupportedError(
            f"{type(request).__name__} jobs are not offered by the {self.api_name} backend"
        )

    def _button_call(self, request: ButtonRequest) -> tuple[str, dict[str, Any]]:
        label, prompt = request.button.value, request.prompt
        parent = self._parent(request.job_id, "button")
        pictures = len(parent.image_urls) if parent.image_urls else (1 if parent.image_url else 0)
        body: dict[str, Any] = {"jobId": request.job_id}
        if label == REROLL:
            self._gate(parent, "reroll", 0, label, request.job_id)
            return "reroll", body
        if label in GRID_BUTTONS:
            op, fields = GRID_BUTTONS[label]
            if pictures < 2:
                raise MidjourneyInvalidRequestError(
                    f"button: {label!r} picks one of a grid's four pictures, but job {request.job_id} has"
                    f" {pictures} picture(s); use {', '.join(SINGLE_BUTTONS)} on it"
                )
        else:
            op, fields = SINGLE_BUTTONS[label]
            if pictures > 1:
                raise MidjourneyInvalidRequestError(
                    f"button: {label!r} acts on one picture, but job {request.job_id} is a grid of {pictures}:"
                    " press U1-U4 first (an upscale), then this button on that job"
                )
        body.update(fields)
        if label in REMIX_MODE and prompt:
            op, body = "remix", {"jobId": request.job_id, "imageNo": 0, "mode": REMIX_MODE[label]}
        if label == "Vary (Region)":
            body["mask"] = mask_body(request.mask or "")
        if label == CUSTOM_ZOOM:
            body["scale"], prompt = custom_zoom(prompt or "")
        if prompt:
            body["remixPrompt"] = prompt
        self._gate(parent, op, int(body.get("imageNo", 0)), label, request.job_id)
        return op, body

    def _gate(self, parent: LegnextOutput, op: str, image_no: int, label: str, job_id: str) -> None:
        """Refuse what the parent's ``available_actions`` does not list (where it lists anything)."""
        allowed = parent.allowed(op)
        if allowed is None or image_no in allowed:
            return
        from airflow_provider_midjourney.hooks.legnext_models import buttons_from

        offered = ", ".join(buttons_from(parent, "")) or "none"
        raise MidjourneyInvalidRequestError(
            f"button: job {job_id} does not offer {label!r} ({op} of picture {image_no + 1}); it offers: {offered}"
        )

    def _parent(self, job_id: str, what: str) -> LegnextOutput:
        """The finished parent's output (pictures, actions, seed); refused unless it completed."""
        data = _unwrap(self._get_job_data(job_id))
        job = self._normalised(data, job_id, "")
        if job.status != JobStatus.COMPLETED:
            raise MidjourneyInvalidRequestError(
                f"jobId (job_id): job {job_id} is {job.status}; a {what} needs a completed job"
            )
        if isinstance(data, dict) and "output" not in data:  # Youchuan: urls[] and seed at the top
            you = YouchuanJob.model_validate(data)
            return LegnextOutput(image_urls=you.urls, seed=you.seed)
        return (LegnextJob.model_validate(data).output if isinstance(data, dict) else None) or LegnextOutput()

    def _seed(self, job_id: str) -> MidjourneyJob:
        """The seed of a finished job, read from the job itself: no endpoint, no new job."""
        seed = self._parent(job_id, "seed").seed or ""
        if not seed.isdigit() or len(seed) > 10:
            raise MidjourneyPermanentError(
                200,
                f"job {job_id} carries no numeric seed ({self.api_name} gave {seed[:40]!r}; blend jobs carry an"
                " opaque id instead)",
                method="GET",
                path=self.api.job_path(job_id),
            )
        return MidjourneyJob(
            job_id=job_id + SEED_SUFFIX, backend=self.backend, status=JobStatus.COMPLETED, verb="seed", seed=int(seed)
        )

    def _get_job_data(self, job_id: str) -> Any:
        path = self.api.job_path(self.check_job_id(job_id))
        return self.parse_json(self._request("GET", path), "GET", path)

    def fetch_job(self, job_id: str) -> MidjourneyJob:
        if job_id.endswith(SEED_SUFFIX):
            return self._seed(job_id.removesuffix(SEED_SUFFIX))
        return self._normalised(self._get_job_data(job_id), job_id, "")

    async def afetch_job(self, job_id: str) -> MidjourneyJob:
        if job_id.endswith(SEED_SUFFIX):
            raise MidjourneyUnsupportedError("seed jobs finish when submitted: fetch them with fetch_job")
        path = (await self.aapi()).job_path(self.check_job_id(job_id))
        response = await self._arequest("GET", path)
        return self._normalised(self.parse_json(response, "GET", path), job_id, "")

    def _normalised(self, data: Any, job_id: str, op: str) -> MidjourneyJob:
        data = _unwrap(data)
        if not isinstance(data, dict):
            from airflow_provider_midjourney.exceptions import MidjourneyMalformedAnswerError

            raise MidjourneyMalformedAnswerError(f"{self.api_name} answered a job that is not a JSON object")
        if self._api is not None and self._api.name == "youchuan" and "job_id" not in data:
            return YouchuanJob.model_validate(data).normalised(self.backend, job_id, op.replace("-", "_"))
        job = LegnextJob.model_validate(data)
        if not job.task_type and op:
            job = job.model_copy(update={"task_type": op})
        return job.normalised(self.backend, job_id)

    # -- errors ---------------------------------------------------------------------------------

    def _raise_for_response(self, response: httpx.Response, method: str, path: str) -> None:
        if response.status_code < 400:
            return
        self._raise_refusal(response.status_code, self.redact(_error_text(response)), method, path, response.headers)

    def _raise_refusal(
        self, status: int, text: str, method: str, path: str, headers: httpx.Headers | None = None
    ) -> None:
        if status == 402:
            raise LegnextCreditsError(402, text, method=method, path=path)
        if status == 401:
            raise MidjourneyAuthError(401, text, method=method, path=path)
        if is_whitelist(text):
            raise LegnextWhitelistError(status, text, method=method, path=path)
        if status in (403, 200) and is_moderation(text):
            raise MidjourneyModeratedError(
                status, f"{text} (moderated: the prompt is never resubmitted automatically)", method=method, path=path
            )
        if status == 403:
            raise MidjourneyPermanentError(403, text, method=method, path=path)
        if status < 400:
            raise MidjourneyPermanentError(status, text, method=method, path=path)
        raise note_retry_after(error_for_status(status, text, method=method, path=path), headers or httpx.Headers())


def video_body(request: VideoRequest) -> dict[str, Any]:
    """``video-diffusion``: ``jobId`` + ``imageNo`` (0-3), or the start image's URL first in ``prompt``;
    motion, loop and end frame as prompt flags (Legnext documents ``--motion`` and ``--end``)."""
    flags = [
        f"--motion {request.motion}" if request.motion else None,
        "--loop" if request.loop else None,
        f"--end {request.end_image}" if request.end_image else None,
    ]
    text = " ".join(p for p in (request.prompt, *flags) if p)
    body: dict[str, Any] = {}
    if request.job_id is not None and request.index is not None:
        body.update(jobId=request.job_id, imageNo=request.index - 1)
        if text:
            body["prompt"] = text
    else:
        body["prompt"] = " ".join(p for p in (request.image, text) if p)
    if request.resolution is not None:
        body["videoType"] = VIDEO_TYPE[request.resolution]
    return body


def custom_zoom(prompt: str) -> tuple[float, str]:
    """(scale, remix prompt) of Custom Zoom's ``... --zoom 1.5``: Legnext's outpaint takes 1.1-2.0."""
    match = _ZOOM_FLAG.search(prompt)
    scale = float(match.group(1)) if match else 0.0
    if not 1.1 <= scale <= 2.0:
        raise MidjourneyInvalidRequestError(
            f"prompt: Custom Zoom needs '--zoom <1.1-2.0>' in its prompt on Legnext (outpaint's scale), got {prompt!r}"
        )
    assert match is not None
    return scale, (prompt[: match.start()] + prompt[match.end() :]).strip()


def mask_body(mask: str) -> dict[str, Any]:
    """Vary (Region)'s mask for /inpaint: an http(s) URL of a black-and-white mask, or a JSON
    ``{"areas": [{"width", "height", "points": [...]}]}``; Legnext takes no base64 bytes."""
    text = mask.strip()
    if text.startswith(("http://", "https://")):
        from airflow_provider_midjourney.models import check_http_url

        return {"url": check_http_url(text, "mask")}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict) and isinstance(value.get("areas"), list) and value["areas"]:
            return {"areas": value["areas"]}
    raise MidjourneyInvalidRequestError(
        "mask: Legnext's inpaint takes an http(s) URL of a black-and-white mask, or a JSON object"
        ' {"areas": [{"width": 500, "height": 500, "points": [x1, y1, x2, y2, ...]}]}; not base64 bytes'
    )


def _unwrap(data: Any) -> Any:
    """``{"code", "data": {...}}`` envelopes (Youchuan's answers are not documented) unwrapped."""
    if isinstance(data, dict) and not ({"job_id", "id", "status"} & set(data)) and isinstance(data.get("data"), dict):
        return data["data"]
    return data


def _job_id_in(data: Any) -> str | None:
    data = _unwrap(data)
    if not isinstance(data, dict):
        return None
    for key in ("job_id", "id", "jobId"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _error_text(response: httpx.Response) -> str:
    """``error.message`` of a failed Job, ``message`` of the flat shape, else the body as text."""
    payload = error_payload(response)
    if isinstance(payload, str):
        return payload
    error = payload.get("error")
    if isinstance(error, dict):
        for key in ("message", "raw_message"):
            value = error.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:1000]
    for key in ("message", "msg", "error", "detail"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:1000]
    return str(payload)[:500]
