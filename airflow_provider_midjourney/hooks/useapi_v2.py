"""The useapi.net Midjourney API v2 (and its v1 paths) as a backend.

v2 (``/v2/jobs/...``) sends the Discord account with each job (``discord``, ``server``,
``channel``, ``maxJobs``) or uses the account configured at the vendor, polls
``GET /v2/jobs/?jobid=`` and cancels with ``GET /v2/jobs/cancel/?jobid=``. The connection extra
``api_version: v1`` sends the same jobs to the paths of the vendor's v1 pages (``/v1/jobs/...``),
which the vendor routes to v2 since March 2024; v1 has no seed and no settings commands.

The answers this hook treats specially (the vendor's OpenAPI files):

* 422 on submit — "Moderated or invalid prompt": the job is ``moderated``, terminal, and the
  prompt is never sent again.
* 429 — the account is busy: retried after 10-30 s like every backend's 429 (nothing was created).
* 504 on submit — "Job queued. The API will not be able to track the progress of this job,
  although it will still be processed by Midjourney": the job exists but has no id to poll, so the
  task fails at once (no retry: a retry would create a second job) and says so.
* 596 — a pending moderation message blocks the Discord account: the error names the fix.

The Discord token of the ``discord`` extra is a secret like the API token: it is only ever put in
request bodies, never logged, and scrubbed from every error message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from airflow_provider_midjourney.admission import note_retry_after
from airflow_provider_midjourney.exceptions import (
    MidjourneyChannelLockedError,
    MidjourneyConfigurationError,
    MidjourneyConflictError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyModeratedError,
    MidjourneyNotFoundError,
    MidjourneyPermanentError,
    error_for_status,
    register_secret,
)
from airflow_provider_midjourney.hooks.base import (
    Capability,
    ConnectionSettings,
    MidjourneyBackendHook,
)
from airflow_provider_midjourney.hooks.useapi_v2_models import SETTINGS_VERBS, V2Job
from airflow_provider_midjourney.input_checks import check_channel
from airflow_provider_midjourney.job import MidjourneyJob
from airflow_provider_midjourney.job_requests import (
    BlendRequest,
    ButtonRequest,
    DescribeRequest,
    ImagineRequest,
    JobOptions,
    SeedRequest,
    SettingsRequest,
)
from airflow_provider_midjourney.vocabulary import Button
from airflow_provider_midjourney.wire import HttpBody

__all__ = ["UseapiV2Hook", "UseapiV2PendingModerationError", "UseapiV2QueuedUntrackedError"]

DEFAULT_BASE_URL = "https://api.useapi.net"
API_VERSIONS = ("v2", "v1")
#: Prompt length limits: the v1 page and both OpenAPI files say 1024; the later v2 page says 2048.
MAX_PROMPT = {"v1": 1024, "v2": 2048}
MAX_JOBS_RANGE = (1, 15)
# The button enums of the OpenAPI files (v1 is the older, shorter list).
V1_BUTTONS = frozenset(
    {"U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4", "⬅️", "➡️", "⬆️", "⬇️", "🔄"}
    | {"Vary (Strong)", "Vary (Subtle)", "Zoom Out 1.5x", "Zoom Out 2x", "Upscale (2x)", "Upscale (4x)"}
    | {"Redo Upscale (2x)", "Redo Upscale (4x)", "Make Square", "Make Variations", "Remaster"}
)
V2_BUTTONS = V1_BUTTONS | {
    "Upscale (Subtle)",
    "Upscale (Creative)",
    "Redo Upscale (Subtle)",
    "Redo Upscale (Creative)",
    "Custom Zoom",
}
_JOB_VERBS = ("imagine", "button", "blend", "describe", "seed_async", *SETTINGS_VERBS)
_V3 = "use a useapi.net v3 connection (type 'midjourney') instead."
_V2 = "set the connection extra api_version to 'v2' (the v1 paths have no such endpoint)."


class UseapiV2QueuedUntrackedError(MidjourneyPermanentError):
    """504 on submit: Midjourney will still run the job, but the API cannot track it.

    Permanent on purpose: the job exists (without an id to poll), so another try of the task would
    submit a second one.
    """

    hint = (
        ". useapi.net queued the job and Midjourney will still run it, but the API cannot track it, so"
        " there is no job id to wait for. It is not resubmitted (that would create a duplicate): look for"
        " the result in the Discord channel, and lower the connection's max_jobs for the next minutes."
    )


class UseapiV2PendingModerationError(MidjourneyChannelLockedError):
    """596: a pending moderation message from Midjourney blocks the Discord account."""

    hint = (
        ". The Discord account has a pending moderation message from Midjourney: acknowledge it in the"
        " Discord channel, then reset it with POST /v2/account/midjourney/<channel>/reset"
        " (UseapiV2Hook.reset_pending_mod_message(channel)) before sending more jobs."
    )


class UseapiV2Hook(MidjourneyBackendHook):
    """Talks to the useapi.net Midjourney API v2, or to its v1 paths.

    Connection: password = useapi.net API token; host = base URL (empty: https://api.useapi.net);
    extras ``api_version`` (``v2`` default, or ``v1``), ``discord_token`` (the Discord token, a secret;
    ``discord`` is accepted too),
    ``server`` and ``channel`` (Discord ids), ``max_jobs`` (1-15, the Midjourney plan's concurrent
    jobs), ``timeout`` (seconds per request). Without ``discord``/``server``/``channel`` v2 uses the
    account configured at useapi.net (``POST /v2/account/midjourney/<channel>``); v1 needs all three.
    """

    conn_name_attr = "midjourney_conn_id"
    default_conn_name = "midjourney_useapi_v2_default"
    conn_type = "midjourney_useapi_v2"
    hook_name = "Midjourney (useapi.net v2/v1)"

    backend = "useapi_v2"
    api_name = "useapi.net Midjourney API v2"
    default_base_url = DEFAULT_BASE_URL
    capabilities = frozenset(
        {
            Capability.IMAGINE,
            Capability.BUTTON,
            Capability.BLEND,
            Capability.DESCRIBE,
            Capability.SEED,
            Capability.SETTINGS,
            Capability.CANCEL,
            Capability.LIST_RUNNING,
        }
    )
    alternatives: ClassVar[Mapping[Capability, str]] = {
        Capability.VIDEO: _V3,
        Capability.UPLOAD_FILES: "Pass image URLs instead (blendUrls/describeUrl), or " + _V3,
        Capability.SEPARATE_IMAGES: "Run a seed job (seed_async gives the four images), or " + _V3,
        Capability.SEED: "For the seed, " + _V2,
        Capability.SETTINGS: "For info/fast/relax/turbo/variability, " + _V2,
    }

    _discord: str = ""

    # -- connection ---------------------------------------------------------------------------

    def _settings_from(self, conn: Any) -> ConnectionSettings:
        settings = super()._settings_from(conn)
        extra = dict(settings.extra)
        where = f"Connection {self.midjourney_conn_id!r}"
        # ``discord_token``: a name Airflow's secrets masker hides wherever the extras are shown;
        # ``discord`` (the API's own field name) is accepted too.
        discord = _discord_token(extra.pop("discord_token", None) or extra.pop("discord", None), where)
        extra.pop("discord", None)
        version = str(extra.get("api_version") or "v2").strip().lower()
        if version not in API_VERSIONS:
            raise MidjourneyConfigurationError(
                f"{where}: extra 'api_version' must be 'v2' or 'v1', got {str(extra.get('api_version'))[:20]!r}"
            )
        extra["api_version"] = version
        server = extra.get("server")
        if server not in (None, ""):
            if isinstance(server, int) and not isinstance(server, bool):
                server = str(server)
            if not isinstance(server, str) or not server.strip().isdigit() or not server.strip().isascii():
                raise MidjourneyConfigurationError(
                    f"{where}: extra 'server' must be a Discord id (digits only), got {str(server)[:40]!r}"
                )
            extra["server"] = server.strip()
        if settings.channel:
            extra["channel"] = settings.channel
        extra["max_jobs"] = _max_jobs(extra.get("max_jobs"), where)
        self._discord = discord
        # The Discord token stays out of ConnectionSettings (its repr shows the extras).
        return ConnectionSettings(
            base_url=settings.base_url,
            token=settings.token,
            timeout=settings.timeout,
            extra=extra,
            channel=settings.channel,
        )

    @property
    def api_version(self) -> str:
        """``v2`` or ``v1`` (the connection's ``api_version`` extra)."""
        return str(self.connection_settings.extra["api_version"])

    def supported_capabilities(self) -> frozenset[Capability]:
        if self.api_version == "v1":
            return self.capabilities - {Capability.SEED, Capability.SETTINGS}
        return self.capabilities

    def redact(self, text: str) -> str:
        """``text`` without the API token and without the Discord token."""
        text = super().redact(text)
        return text.replace(self._discord, "***") if self._discord else text

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: one ``GET /<version>/jobs`` (no retries, at most 8 s).

        That endpoint answers a JSON list of running job ids (200) or 401/402 for the real API,
        never 404, so a wrong base URL, a web page or another API fails instead of reading as
        "Connected".
        """
        from airflow_provider_midjourney.hooks.connection_test import probe

        try:
            settings = self.connection_settings
        except MidjourneyError as exc:
            return False, self.redact(str(exc))
        version = self.api_version
        api = f"the useapi.net Midjourney API {version}"

        def describe(data: list[str]) -> str:
            return f"Connected to {api} at {settings.base_url}: {len(data)} job(s) running."

        return probe(
            settings.base_url,
            f"/{version}/jobs",
            {"Authorization": f"Bearer {settings.token}"},
            looks_right=lambda data: isinstance(data, list) and all(isinstance(i, str) for i in data),
            api_name=api,
            timeout=min(settings.timeout, 8.0),
            describe=describe,
        )

    # -- checks before any HTTP call ----------------------------------------------------------

    def check_request(self, request: JobOptions) -> JobOptions:
        request = super().check_request(request)
        version, who = self.api_version, f"The {self.api_name} backend (api_version {self.api_version})"
        if request.reply_level is not None:
            raise MidjourneyInvalidRequestError(f"replyLevel (reply_level): {who} has no replyLevel; leave it unset")
        if isinstance(request, ImagineRequest) and len(request.prompt) > MAX_PROMPT[version]:
            raise MidjourneyInvalidRequestError(
                f"prompt: {who} takes at most {MAX_PROMPT[version]} characters, got {len(request.prompt)}"
            )
        if isinstance(request, ButtonRequest):
            self._check_button(request, who)
        if isinstance(request, BlendRequest | DescribeRequest) and _has_blob(request):
            self.require(Capability.UPLOAD_FILES, "Uploaded images (imageBlob, a local path or bytes)")
        if isinstance(request, SettingsRequest) and request.command not in SETTINGS_VERBS:
            raise MidjourneyInvalidRequestError(
                f"command: {who} has no /jobs/{request.command}; it offers {', '.join(SETTINGS_VERBS)}."
                f" For {request.command!r}, {_V3}"
            )
        if version == "v1" and isinstance(request, ImagineRequest | BlendRequest | DescribeRequest):
            missing = [name for name in ("discord", "server", "channel") if not self._account_value(name, request)]
            if missing:
                raise MidjourneyInvalidRequestError(
                    f"{', '.join(missing)}: the v1 API needs discord, server and channel on every job; put them"
                    " in the connection's extras (channel may also come from the task)"
                )
        return request

    def _check_button(self, request: ButtonRequest, who: str) -> None:
        label = request.button.value
        allowed = V2_BUTTONS if self.api_version == "v2" else V1_BUTTONS
        if label not in allowed and not request.allow_unknown_button:
            hint = f" For {label!r}, {_V3}" if label in {b.value for b in Button} else ""
            raise MidjourneyInvalidRequestError(
                f"button: {who} does not document {label!r}; it takes {', '.join(sorted(allowed))}.{hint}"
            )
        if request.mask:
            raise MidjourneyInvalidRequestError(f"mask: {who} takes no mask (it has no Vary (Region)). {_V3}")
        if request.prompt and label != Button.CUSTOM_ZOOM.value:
            raise MidjourneyInvalidRequestError(
                f"prompt: {who} takes a prompt only with the 'Custom Zoom' button, not with {label!r}"
            )

    def check_job_id(self, job_id: Any, field: str = "job_id") -> str:
        """Any id of letters, digits and ``. _ : -`` (the v2 format is not documented; it goes in a query)."""
        return super().check_job_id(job_id, field)

    # -- jobs ---------------------------------------------------------------------------------

    def submit_job(self, request: JobOptions) -> MidjourneyJob:
        request = self.check_request(request)
        path, body = self._wire(request)
        try:
            response = self._request(
                "POST", path, body=HttpBody(json_body=body), creates_job=True, reply_ref=request.reply_ref
            )
        except MidjourneyConflictError:
            if isinstance(request, ButtonRequest):
                existing = self._existing_child(request)
                if existing is not None:
                    return existing
            raise
        job = self._parse(response, creates_job=True, reply_ref=request.reply_ref)
        if job.status == "moderated":
            self.log.warning("useapi.net moderated the %s job %s; it is not resubmitted", job.verb, job.job_id)
        else:
            self.log.info("Created Midjourney %s job %s", job.verb, job.job_id)
        return job

    def _existing_child(self, request: ButtonRequest) -> MidjourneyJob | None:
        """409 "button already executed": the earlier child job of the parent (U1-U4 run once)."""
        parent = self.fetch_job(request.job_id)
        child = parent.children.get(request.button.value)
        if not child:
            return None
        self.log.info("%s of %s was already executed: reusing its job %s", request.button.value, request.job_id, child)
        return self.fetch_job(str(child))

    def fetch_job(self, job_id: str) -> MidjourneyJob:
        response = self._request("GET", self._path("jobs/"), params={"jobid": self.check_job_id(job_id)})
        return self._parse(response)

    async def afetch_job(self, job_id: str) -> MidjourneyJob:
        await self.aconnection_settings()
        response = await self._arequest("GET", self._path("jobs/"), params={"jobid": self.check_job_id(job_id)})
        return self._parse(response)

    def cancel(self, job_id: str) -> None:
        self._request("GET", self._path("jobs/cancel/"), params={"jobid": self.check_job_id(job_id)})

    async def acancel(self, job_id: str) -> None:
        await self.aconnection_settings()
        await self._arequest("GET", self._path("jobs/cancel/"), params={"jobid": self.check_job_id(job_id)})

    def list_running_job_ids(self) -> list[str]:
        """``GET /jobs``: ids of the jobs still executing."""
        path = self._path("jobs")
        return _job_ids(self.parse_json(self._request("GET", path), "GET", path))

    async def alist_running_job_ids(self) -> set[str] | None:
        await self.aconnection_settings()
        path = self._path("jobs")
        return set(_job_ids(self.parse_json(await self._arequest("GET", path), "GET", path)))

    def find_job_by_reply_ref(self, reply_ref: str) -> MidjourneyJob | None:
        """The running list has ids only: fetch each running job and compare its ``replyRef``."""
        for job_id in self.list_running_job_ids():
            try:
                job = self.fetch_job(job_id)
            except MidjourneyNotFoundError:
                continue
            if job.reply_ref == reply_ref and not job.is_terminal:
                return job
        return None

    def reset_pending_mod_message(self, channel: str) -> None:
        """``POST /v2/account/midjourney/<channel>/reset``: clear a 596 lock after resolving it in Discord."""
        self._request("POST", f"/v2/account/midjourney/{check_channel(channel)}/reset")

    # -- wire mapping ---------------------------------------------------------------------------

    def _path(self, tail: str) -> str:
        return f"/{self.api_version}/{tail}"

    def _account_value(self, name: str, request: JobOptions) -> str | None:
        if name == "discord":
            self.connection_settings  # noqa: B018 - reads the connection (and the Discord token) once
            return self._discord or None
        if name == "channel" and request.channel:
            return request.channel
        value = self.connection_settings.extra.get(name)
        return str(value) if value else None

    def _account_fields(self, request: JobOptions, *, names: tuple[str, ...]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name in names:
            value = self._account_value(name, request)
            if value:
                fields[name] = value
        if self.connection_settings.extra.get("max_jobs") is not None:
            fields["maxJobs"] = self.connection_settings.extra["max_jobs"]
        return fields

    def _wire(self, request: JobOptions) -> tuple[str, dict[str, Any]]:
        """The path and JSON body of the v2 (or v1) endpoint for ``request``."""
        account = ("discord", "server", "channel")
        body: dict[str, Any]
        if isinstance(request, ImagineRequest):
            verb, body = "imagine", {"prompt": request.prompt, **self._account_fields(request, names=account)}
        elif isinstance(request, ButtonRequest):
            verb, body = "button", {"jobid": request.job_id, "button": request.button.value}
            if request.prompt:
                body["prompt"] = request.prompt
            body.update(self._account_fields(request, names=("discord",)))
        elif isinstance(request, BlendRequest):
            urls = [u for n in range(1, 6) if (u := getattr(request, f"image_url_{n}")) is not None]
            verb, body = "blend", {"blendUrls": urls, **self._account_fields(request, names=account)}
            if request.blend_dimensions:
                body["blendDimensions"] = request.blend_dimensions
        elif isinstance(request, DescribeRequest):
            verb = "describe"
            body = {"describeUrl": request.image_url, **self._account_fields(request, names=account)}
        elif isinstance(request, SeedRequest):
            verb, body = "seed_async", {"jobid": request.job_id}
        elif isinstance(request, SettingsRequest):
            verb, body = request.command, self._account_fields(request, names=account)
            body.pop("maxJobs", None)  # the settings commands take no maxJobs
        else:  # pragma: no cover - check_request refused it already
            raise MidjourneyInvalidRequestError(f"{type(request).__name__}: not a job the v2 API runs")
        for key, value in (("replyUrl", request.reply_url), ("replyRef", request.reply_ref)):
            if value:
                body[key] = value
        return self._path(f"jobs/{verb}"), body

    def _parse(
        self, response: httpx.Response, *, creates_job: bool = False, reply_ref: str | None = None
    ) -> MidjourneyJob:
        """The answer as a job; a body that is not a v2 job is a malformed answer (after a submit:
        an uncertain one, since the job may exist)."""
        method, path = response.request.method, response.request.url.path
        data = self.parse_json(response, method, path, creates_job=creates_job)
        job = self.parse_answer(V2Job, data, method, path, creates_job=creates_job, reply_ref=reply_ref)
        return job.normalised(self.backend, http_status=response.status_code)

    # -- error answers --------------------------------------------------------------------------

    def _raise_for_response(self, response: httpx.Response, method: str, path: str) -> None:
        status = response.status_code
        if status < 400:
            return
        submit = method == "POST" and path.rsplit("/", 1)[-1] in _JOB_VERBS
        payload = _json_object(response)
        if submit and status == 422 and isinstance(payload.get("jobid"), str):
            return  # a moderated job with its id: submit_job returns it as "moderated"
        error = self.redact(_error_text(payload, response))
        if submit and status == 504:
            raise UseapiV2QueuedUntrackedError(status, error, method=method, path=path)
        if status == 596:
            raise UseapiV2PendingModerationError(status, error, method=method, path=path)
        if status == 422:
            raise MidjourneyModeratedError(status, error, method=method, path=path)
        raise note_retry_after(error_for_status(status, error, method=method, path=path), response.headers)


def _discord_token(value: Any, where: str) -> str:
    """The ``discord`` extra, trimmed, checked for characters HTTP bodies should not carry, registered
    for redaction. Messages never contain it."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise MidjourneyConfigurationError(f"{where}: extra 'discord' (the Discord token) must be text")
    token = value.strip()
    if not token.isascii() or any(ord(char) < 32 or ord(char) == 127 for char in token):
        raise MidjourneyConfigurationError(
            f"{where}: extra 'discord' (the Discord token) contains a control or non-ASCII character"
            f" ({len(token)} characters in all); copy the token again"
        )
    register_secret(token)
    return token


def _max_jobs(value: Any, where: str) -> int | None:
    if value in (None, ""):
        return None
    low, high = MAX_JOBS_RANGE
    try:
        number = int(value)
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
    except (TypeError, ValueError):
        number = 0
    if not low <= number <= high:
        raise MidjourneyConfigurationError(
            f"{where}: extra 'max_jobs' must be a whole number from {low} to {high} (the Midjourney plan's"
            f" concurrent jobs: 3 on Basic/Standard, up to 15 on Pro/Mega), got {value!r}"
        )
    return number


def _has_blob(request: BlendRequest | DescribeRequest) -> bool:
    if isinstance(request, DescribeRequest):
        return request.image_blob is not None
    return any(getattr(request, f"image_blob_{n}") is not None for n in range(1, 6))


def _job_ids(data: Any) -> list[str]:
    """``GET /jobs``: a list of job ids (leniently: objects with a ``jobid`` too)."""
    if not isinstance(data, list):
        raise MidjourneyError(f"GET /jobs: expected a list of job ids, got {type(data).__name__}")
    ids = []
    for item in data:
        if isinstance(item, str):
            ids.append(item)
        elif isinstance(item, dict) and isinstance(item.get("jobid"), str):
            ids.append(item["jobid"])
    return ids


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _error_text(payload: dict[str, Any], response: httpx.Response) -> str:
    parts = [str(payload[k]) for k in ("error", "errorDetails") if payload.get(k)]
    if parts:
        return "; ".join(dict.fromkeys(parts))
    return response.text.strip()[:500] or response.reason_phrase or "no details"
