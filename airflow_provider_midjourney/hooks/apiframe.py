"""The Apiframe v2 backend: Midjourney as one model of api.apiframe.ai.

Contract (``docs/backends/apiframe.md``; vendor sources: its Node SDK's ``openapi.json`` and the v2
docs): imagine is ``POST /v2/images/generate`` with ``model: "midjourney"`` (an ``--ar W:H`` of the
prompt goes to ``midjourneyParams.aspect_ratio``); U1-U4/V1-V4 are ``upsample``/``variation`` with an
``index`` on a grid job, and Vary (Region), Zoom Out and the pan arrows are ``inpaint``/``outpaint``/
``pan`` on an upsampled job, all ``POST /v2/images/midjourney/action``; video is
``POST /v2/videos/generate``. Jobs are polled with ``GET /v2/jobs/{id}``; ``GET /v2/jobs`` is the
shared "which jobs still run" call.

Every POST carries an ``Idempotency-Key`` (Apiframe answers a replay within 24 h with the first
job), derived from the task instance and the request's fingerprint: a creation whose answer was
lost is sent again instead of being looked for, and can never make a second job. No blend,
describe, seed, reroll, settings or video extend in v2; no cancel endpoint.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from airflow_provider_midjourney.admission import note_retry_after
from airflow_provider_midjourney.exceptions import (
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyModeratedError,
    MidjourneySubscriptionError,
    error_for_status,
)
from airflow_provider_midjourney.hooks.apiframe_models import VIDEO_MODEL, ApiframeJob, JobAccepted, JobList
from airflow_provider_midjourney.hooks.base import Capability, ConnectionSettings, MidjourneyBackendHook
from airflow_provider_midjourney.hooks.transport import HeaderAuth
from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.job_requests import ButtonRequest, ImagineRequest, JobOptions
from airflow_provider_midjourney.text_patterns import is_moderation, moderation_patterns
from airflow_provider_midjourney.video_requests import VideoRequest, start_frame_url
from airflow_provider_midjourney.vocabulary import JobStatus
from airflow_provider_midjourney.wire import HttpBody

DEFAULT_BASE_URL = "https://api.apiframe.ai"
GENERATE, ACTION, VIDEO, JOBS = "/v2/images/generate", "/v2/images/midjourney/action", "/v2/videos/generate", "/v2/jobs"
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
MAX_PROMPT, MAX_VIDEO_PROMPT = 2000, 4000
# "--ar 16:9" / "--aspect 16:9" anywhere in the prompt (bounded digits: linear time).
ASPECT = re.compile(r"(?:^|\s)--(?:ar|aspect)\s+(\d{1,4}:\d{1,4})(?=\s|$)")
PAN = {"⬅️": "left", "➡️": "right", "⬆️": "up", "⬇️": "down"}
ZOOM = {"Zoom Out 2x": 2, "Zoom Out 1.5x": 1.5}
LIST_LIMIT = "100"


class ApiframeCreditsError(MidjourneySubscriptionError):
    """402 from Apiframe: the team lacks credits."""

    hint = " (the Apiframe team has too few credits: top up at apiframe.ai)"


def _no(what: str, instead: str) -> str:
    return f"Apiframe's v2 API has no {what}. {instead}"


class ApiframeHook(MidjourneyBackendHook):
    """Talks to Apiframe's v2 API.

    Connection: password = API key (``X-API-Key``), host = base URL (empty:
    ``https://api.apiframe.ai``); extras ``moderation_patterns`` (what a FAILED job's error must match
    to count as moderated; default :data:`~.text_patterns.DEFAULT_MODERATION_PATTERNS`) and
    ``timeout`` (seconds per HTTP request).
    """

    conn_name_attr = "midjourney_conn_id"
    default_conn_name = "apiframe_default"
    conn_type = "apiframe"
    hook_name = "Midjourney (Apiframe v2)"

    backend = "apiframe"
    api_name = "Apiframe v2"
    default_base_url = DEFAULT_BASE_URL
    capabilities = frozenset(
        {
            Capability.IMAGINE,
            Capability.BUTTON,
            Capability.VIDEO,
            Capability.LIST_RUNNING,
            Capability.SEPARATE_IMAGES,
        }
    )
    idempotent_submit = True
    alternatives: ClassVar[Mapping[Capability, str]] = {
        Capability.BLEND: _no("blend", "Use a useapi.net or ImaginePro connection."),
        Capability.DESCRIBE: _no("describe", "Use a useapi.net or ImaginePro connection."),
        Capability.SEED: _no("seed endpoint", "Put '--seed <number>' in the prompt to fix a seed."),
        Capability.SETTINGS: _no("settings commands", "Put --fast, --relax or --turbo in the prompt instead."),
        Capability.VIDEO_EXTEND: _no(
            "video extend (its v1 API has one)", "Extend on a useapi.net v3, ImaginePro or midjourney-proxy connection."
        ),
        Capability.CANCEL: _no("cancel endpoint", "A job runs to its end."),
        Capability.UPLOAD_FILES: "Apiframe takes public http(s) image URLs only: upload the file first.",
    }

    # -- connection -----------------------------------------------------------------------------

    def _auth(self, settings: ConnectionSettings) -> httpx.Auth | None:
        return HeaderAuth("X-API-Key", settings.token)

    def patterns(self) -> tuple[re.Pattern[str], ...]:
        return moderation_patterns(self.connection_settings.extra.get("moderation_patterns"), self.midjourney_conn_id)

    async def apatterns(self) -> tuple[re.Pattern[str], ...]:
        settings = await self.aconnection_settings()
        return moderation_patterns(settings.extra.get("moderation_patterns"), self.midjourney_conn_id)

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: one ``GET /v2/jobs?limit=1`` (no retries, at most 8 s, no credits)."""
        from airflow_provider_midjourney.hooks.connection_test import probe

        try:
            settings = self.connection_settings
            self.patterns()
        except MidjourneyError as exc:
            return False, str(exc)
        return probe(
            settings.base_url,
            f"{JOBS}?limit=1",
            {"X-API-Key": settings.token},
            looks_right=lambda data: isinstance(data, dict) and isinstance(data.get("jobs"), list),
            api_name="Apiframe's v2 API",
            timeout=min(settings.timeout, 8.0),
            describe=lambda data: f"Connected to Apiframe's v2 API at {settings.base_url}: the API key is accepted.",
        )

    # -- checks before any request --------------------------------------------------------------

    def check_job_id(self, job_id: Any, field: str = "job_id") -> str:
        if not isinstance(job_id, str) or not UUID.fullmatch(job_id):
            raise MidjourneyInvalidRequestError(
                f"{field}: must be an Apiframe job id (a UUID such as a1b2c3d4-e5f6-7890-abcd-ef1234567890),"
                f" got {str(job_id)[:80]!r}"
            )
        return job_id

    def check_request(self, request: JobOptions) -> JobOptions:
        request = super().check_request(request)
        self.patterns()
        where = f"{self.api_name} (connection {self.midjourney_conn_id!r})"
        if request.channel is not None:
            raise MidjourneyInvalidRequestError(f"channel: {where} has no Discord channels; leave channel empty")
        if request.reply_level is not None:
            raise MidjourneyInvalidRequestError(f"reply_level: {where} has no reply levels; leave reply_level empty")
        if isinstance(request, ImagineRequest) and len(request.prompt) > MAX_PROMPT:
            raise MidjourneyInvalidRequestError(f"prompt: {where} takes at most {MAX_PROMPT} characters")
        if isinstance(request, ButtonRequest):
            self._action(request)  # refuses buttons without an action
        if isinstance(request, VideoRequest):
            self._check_video(request, where)
        return request

    def _check_video(self, request: VideoRequest, where: str) -> None:
        if request.job_id is not None:
            self.check_job_id(request.job_id, "job_id")
        if not request.prompt:
            raise MidjourneyInvalidRequestError(f"prompt: {where} requires a prompt for video (1-{MAX_VIDEO_PROMPT})")
        if len(request.prompt) > MAX_VIDEO_PROMPT:
            raise MidjourneyInvalidRequestError(f"prompt: {where} takes at most {MAX_VIDEO_PROMPT} characters")
        for name in ("end_image", "loop"):
            if getattr(request, name):
                raise MidjourneyInvalidRequestError(f"{name}: {where} has no end frame or loop for video")
        if request.batch_size not in (None, 4):
            raise MidjourneyInvalidRequestError(f"batch_size: {where} always makes 4 clips; leave it empty or 4")

    def _action(self, request: ButtonRequest) -> dict[str, Any]:
        """The action body of a button (U/V on a grid; Vary (Region), Zoom Out, pan on an upsample)."""
        label = request.button.value
        body: dict[str, Any] = {"parentJobId": self.check_job_id(request.job_id, "jobId (job_id)")}
        if re.fullmatch(r"[UV][1-4]", label):
            body.update(action="upsample" if label[0] == "U" else "variation", index=int(label[1]))
        elif label == "Vary (Region)":
            body.update(action="inpaint", mask=request.mask)
        elif label in ZOOM:
            body.update(action="outpaint", zoomRatio=ZOOM[label])
        elif label in PAN:
            body.update(action="pan", direction=PAN[label])
        else:
            offered = ", ".join(["U1-U4", "V1-V4", "Vary (Region)", *ZOOM, *PAN])
            raise MidjourneyInvalidRequestError(
                f"button: {label!r} has no Apiframe v2 action (no reroll, Vary Strong/Subtle, custom zoom or"
                f" quality upscales); it offers {offered}"
            )
        if request.prompt:
            if body["action"] != "inpaint":
                raise MidjourneyInvalidRequestError(
                    f"prompt: Apiframe takes a prompt only with Vary (Region), not with {label!r}"
                )
            body["prompt"] = request.prompt
        return body

    # -- jobs -----------------------------------------------------------------------------------

    def wire_request(self, request: JobOptions) -> tuple[str, str, dict[str, Any]]:
        """(verb, path, JSON body) of a checked request; a start frame by job is read first (one GET)."""
        body: dict[str, Any]
        if isinstance(request, ImagineRequest):
            verb, path = "imagine", GENERATE
            body = {"model": "midjourney", "prompt": request.prompt}
            match = ASPECT.search(request.prompt)
            if match:
                prompt = (request.prompt[: match.start()] + request.prompt[match.end() :]).strip()
                body.update(prompt=prompt or request.prompt, midjourneyParams={"aspect_ratio": match.group(1)})
        elif isinstance(request, ButtonRequest):
            verb, path, body = "button", ACTION, self._action(request)
        elif isinstance(request, VideoRequest):
            start = request.image
            if request.job_id is not None:
                assert request.index is not None
                start = start_frame_url(self.fetch_job(request.job_id), request.index)
            params = {"start_image": start, **{k: v for k in ("motion", "resolution") if (v := getattr(request, k))}}
            verb, path = "video", VIDEO
            body = {"model": VIDEO_MODEL, "prompt": request.prompt, "midjourneyVideoParams": params}
        else:  # check_request refused it already; kept for callers that skip it
            raise MidjourneyInvalidRequestError(f"{type(request).__name__}: not supported by {self.api_name}")
        if request.reply_url:
            body["webhookUrl"] = request.reply_url
        return verb, path, body

    def idempotency_key(self, request: JobOptions) -> str:
        """Stable for one task instance's request (its replyRef names the task; the fingerprint the
        inputs), fresh after a failed job it replaces; random without a replyRef (a direct call)."""
        if not request.reply_ref:
            return f"mj-{uuid.uuid4()}"
        material = "\n".join((request.reply_ref, request.fingerprint(self.backend), self.supersedes or ""))
        return "mj-" + hashlib.sha256(material.encode()).hexdigest()

    def submit_job(self, request: JobOptions) -> MidjourneyJob:
        request = self.check_request(request)
        verb, path, body = self.wire_request(request)
        key = self.idempotency_key(request)
        response = self._request("POST", path, body=HttpBody(json_body=body), creates_job=True, idempotency_key=key)
        answer = self.parse_answer(JobAccepted, self.parse_json(response, "POST", path), "POST", path)
        job_id = self.check_job_id(answer.job_id, "jobId (answer)")
        if (answer.status or "QUEUED").upper() not in ("QUEUED", "PROCESSING"):
            self.log.info("Apiframe answered with the existing job %s for idempotency key %s", job_id, key)
            return self.fetch_job(job_id)
        self.log.info("Created Apiframe %s job %s (idempotency key %s)", verb, job_id, key)
        prompt = getattr(request, "prompt", None)
        return MidjourneyJob(
            job_id=job_id, backend=self.backend, status=JobStatus.CREATED, verb=verb, prompt=prompt,
            reply_ref=request.reply_ref,
        )  # fmt: skip

    def get_apiframe_job(self, job_id: str) -> ApiframeJob:
        path = f"{JOBS}/{self.check_job_id(job_id)}"
        return self.parse_answer(ApiframeJob, self.parse_json(self._request("GET", path), "GET", path), "GET", path)

    def fetch_job(self, job_id: str) -> MidjourneyJob:
        job = self.get_apiframe_job(job_id)
        return _with_expiry(job, job.normalised(self.backend, self.patterns()))

    async def afetch_job(self, job_id: str) -> MidjourneyJob:
        path = f"{JOBS}/{self.check_job_id(job_id)}"
        data = self.parse_json(await self._arequest("GET", path), "GET", path)
        job = self.parse_answer(ApiframeJob, data, "GET", path)
        return _with_expiry(job, job.normalised(self.backend, await self.apatterns()))

    async def alist_running_job_ids(self) -> set[str] | None:
        """The running jobs among the newest 100 (an older running job is absent: its trigger fetches it)."""
        data = self.parse_json(await self._arequest("GET", JOBS, params={"limit": LIST_LIMIT}), "GET", JOBS)
        return self.parse_answer(JobList, data, "GET", JOBS).running_ids()

    # find_job_by_reply_ref stays None: Apiframe stores no reference of ours, and the
    # Idempotency-Key re-send finds the job instead.

    # -- errors ---------------------------------------------------------------------------------

    def _raise_for_response(self, response: httpx.Response, method: str, path: str) -> None:
        """``{"error": text, "details"?}``; 429 carries ``Retry-After``; 402 is credits; 503 transient."""
        if response.status_code < 400:
            return
        text = self.redact(_error_text(response))
        status = response.status_code
        if status in (400, 403) and is_moderation(text, self.patterns()):
            raise MidjourneyModeratedError(status, text, method=method, path=path)
        if status == 402:
            raise ApiframeCreditsError(402, text, method=method, path=path)
        raise note_retry_after(error_for_status(status, text, method=method, path=path), response.headers)


def _with_expiry(wire: ApiframeJob, job: MidjourneyJob) -> MidjourneyJob:
    if not wire.expired:
        return job
    from dataclasses import replace

    return replace(job, expired=True)


def _error_text(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase or "no details"
    if not isinstance(payload, dict):
        return str(payload)[:500]
    text = str(payload.get("error") or payload.get("message") or payload)[:500]
    details = payload.get("details")
    if isinstance(details, dict) and details:
        text += " (" + "; ".join(f"{k}: {v}" for k, v in list(details.items())[:5])[:500] + ")"
    return text
