"""The midjourney-proxy backend: a self-hosted bridge (or a hosted service exposing its routes).

midjourney-proxy (novicezk's open-source original, and trueai-org's maintained superset) drives
Midjourney through your own Discord accounts and exposes ``/mj/submit/*`` and ``/mj/task/*``.
Because it is open source and self-hostable, it is the one backend that survives a vendor's exit;
many hosted services expose the same routes, so one connection type serves both.

Connection (type ``midjourney_proxy``, default id ``midjourney_proxy_default``):

* host: the server's base URL (``http://127.0.0.1:8080``, or a hosted service's address);
* password: the API secret, sent as the ``mj-api-secret`` header only when set (a self-hosted
  server without ``mj.api-secret`` needs none);
* extra ``path_prefix``: ``/mj`` (default); ``/mj-fast``, ``/mj-relax``, ``/mj-turbo`` pick a speed
  mode where the server offers them (the superset routes them as ``/mj-fast/mj/...``, which is
  what these three become); any other path is used as given (``""`` for routes at the root);
* extra ``flavour``: ``auto`` (default: probe the server once), ``original`` or ``superset``;
* extra ``moderation_patterns``: regular expressions (a JSON list, or one per line) that mark a
  ``FAILURE`` as a refused prompt, replacing
  :data:`~airflow_provider_midjourney.hooks.midjourney_proxy_models.DEFAULT_MODERATION_PATTERNS`;
* extra ``timeout``: seconds per HTTP request.

What the server supports is probed once per server and prefix (``GET /task/0/image-seed`` and
``POST /task/0/cancel`` on a task id that cannot exist: only the superset has these routes) and
cached for :data:`PROBE_TTL` seconds; a request needing a missing capability fails before the
job-creating call, naming it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import httpx
from pydantic import ValidationError

from airflow_provider_midjourney.admission import note_retry_after
from airflow_provider_midjourney.exceptions import (
    MidjourneyAPIError,
    MidjourneyBusyError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyMalformedAnswerError,
    MidjourneyModeratedError,
    MidjourneyNotFoundError,
    MidjourneyServerError,
    MidjourneySubmitUncertainError,
    MidjourneyUnsupportedError,
    MidjourneyValidationError,
)
from airflow_provider_midjourney.hooks.answer_limits import load_json
from airflow_provider_midjourney.hooks.base import (
    Capability,
    ConnectionSettings,
    MidjourneyBackendHook,
)
from airflow_provider_midjourney.hooks.inline_images import data_url
from airflow_provider_midjourney.hooks.midjourney_proxy_models import (
    CHANGE_ACTIONS,
    CODE_BANNED,
    CODE_EXISTS,
    CODE_FAILURE,
    CODE_IN_QUEUE,
    CODE_NOT_FOUND,
    CODE_QUEUE_FULL,
    CODE_SUCCESS,
    CODE_VALIDATION,
    CREATED_CODES,
    REROLL_LABEL,
    SubmitResult,
    Task,
    parse_tasks,
)
from airflow_provider_midjourney.hooks.midjourney_proxy_options import (
    ProxyOptions,
    proxy_options,
    state_for,
)
from airflow_provider_midjourney.hooks.transport import HeaderAuth, send
from airflow_provider_midjourney.image_intake import (
    ImageBlob,
    ImageSource,
    image_from_source,
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
from airflow_provider_midjourney.video_requests import VideoExtendRequest, VideoRequest, start_frame_url
from airflow_provider_midjourney.vocabulary import JobStatus
from airflow_provider_midjourney.wire import HttpBody

__all__ = ["MidjourneyProxyHook", "ProxyOptions"]

PROBE_TTL = 600.0
PROBE_TASK_ID = "0"
SEED_SUFFIX = ":seed"
MAX_WATCHED = 5000
_BLEND_DIMENSIONS = {"Portrait": "PORTRAIT", "Square": "SQUARE", "Landscape": "LANDSCAPE"}
_CHANGE_LABEL = re.compile(r"^([UV])([1-4])$")
BASIC_CAPABILITIES = frozenset(
    {Capability.IMAGINE, Capability.BUTTON, Capability.BLEND, Capability.DESCRIBE, Capability.LIST_RUNNING}
)
# The superset's /submit/video (animate, and action "extend") needs its EnableVideo setting; a server
# without it answers code 4 at submit time.
SUPERSET_CAPABILITIES = BASIC_CAPABILITIES | {
    Capability.SEED,
    Capability.CANCEL,
    Capability.SEPARATE_IMAGES,
    Capability.VIDEO,
    Capability.VIDEO_EXTEND,
}


class MidjourneyProxyHook(MidjourneyBackendHook):
    """Talks to a midjourney-proxy server (original or superset); see the module docstring."""

    conn_name_attr = "midjourney_conn_id"
    default_conn_name = "midjourney_proxy_default"
    conn_type = "midjourney_proxy"
    hook_name = "Midjourney (midjourney-proxy)"

    backend = "midjourney_proxy"
    api_name = "midjourney-proxy"
    default_base_url = ""
    capabilities = SUPERSET_CAPABILITIES
    token_required = False
    alternatives: ClassVar[Mapping[Capability, str]] = {
        Capability.SEED: "Use a server that has GET /mj/task/{id}/image-seed (the trueai-org midjourney-proxy).",
        Capability.CANCEL: "Use a server that has POST /mj/task/{id}/cancel (the trueai-org midjourney-proxy).",
        Capability.SETTINGS: "Pick fast/relax/turbo with the connection's path_prefix (/mj-fast, /mj-relax,"
        " /mj-turbo) where the server offers them.",
    }

    _probes: ClassVar[dict[tuple[str, str], tuple[float, frozenset[Capability]]]] = {}
    _probes_lock: ClassVar[threading.Lock] = threading.Lock()
    # Ids of tasks this process saw running, per (base URL, prefix): what alist_running_job_ids asks about.
    _watched: ClassVar[dict[tuple[str, str], dict[str, None]]] = {}

    def __init__(self, midjourney_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(midjourney_conn_id, **kwargs)
        self._options: ProxyOptions | None = None
        self._supported: frozenset[Capability] | None = None

    # -- connection ---------------------------------------------------------------------------

    def _settings_from(self, conn: Any) -> ConnectionSettings:
        if not (conn.host or "").strip():
            raise MidjourneyError(
                f"Connection {self.midjourney_conn_id!r} has no host: put the midjourney-proxy server's base URL"
                " (e.g. http://127.0.0.1:8080, or the hosted service's address) in its host"
            )
        settings = super()._settings_from(conn)
        self._options = proxy_options(settings.extra, self.midjourney_conn_id)
        return settings

    @property
    def options(self) -> ProxyOptions:
        self.connection_settings  # noqa: B018 - parses the extras too
        assert self._options is not None
        return self._options

    async def _asettings(self) -> tuple[ConnectionSettings, ProxyOptions]:
        """The connection and its extras, read without blocking the event loop."""
        settings = await self.aconnection_settings()
        assert self._options is not None  # parsed with the settings
        return settings, self._options

    def _path(self, tail: str, options: ProxyOptions | None = None) -> str:
        return f"{(options or self.options).path_prefix}{tail}"

    def _auth(self, settings: ConnectionSettings) -> httpx.Auth | None:
        return HeaderAuth("mj-api-secret", settings.token) if settings.token else None

    @classmethod
    def forget_probes(cls) -> None:
        """Drop the cached capability probes (a server was upgraded; tests switch flavours)."""
        with cls._probes_lock:
            cls._probes.clear()
            cls._watched.clear()

    def supported_capabilities(self) -> frozenset[Capability]:
        """The server's capabilities: from the ``flavour`` extra, else probed once and cached.

        Inside a running event loop (the triggerer) nothing is probed: the full set is returned
        and :meth:`acancel` copes with a server that turns out to have no cancel route.
        """
        if self._supported is not None:
            return self._supported
        options, base = self.options, self.connection_settings.base_url
        if options.flavour != "auto":
            self._supported = SUPERSET_CAPABILITIES if options.flavour == "superset" else BASIC_CAPABILITIES
            return self._supported
        key = (base, options.path_prefix)
        with self._probes_lock:
            cached = self._probes.get(key)
        if cached is not None and time.monotonic() - cached[0] < PROBE_TTL:
            self._supported = cached[1]
            return cached[1]
        if _in_event_loop():
            return self.capabilities
        found, definite = self._probe()
        if definite:  # a 5xx answer says nothing about the routes: probe again next time
            with self._probes_lock:
                self._probes[key] = (time.monotonic(), found)
        self._supported = found
        return found

    def _probe(self) -> tuple[frozenset[Capability], bool]:
        found = set(BASIC_CAPABILITIES)
        seed = self._probe_send("GET", self._path(f"/task/{PROBE_TASK_ID}/image-seed"))
        seed_json = _json_or_none(seed)
        if isinstance(seed_json, dict) and isinstance(seed_json.get("code"), int):
            found.add(Capability.SEED)
        cancel = self._probe_send("POST", self._path(f"/task/{PROBE_TASK_ID}/cancel"))
        if 200 <= cancel.status_code < 300:
            found.add(Capability.CANCEL)
        if found & {Capability.SEED, Capability.CANCEL}:
            found.add(Capability.SEPARATE_IMAGES)  # the superset fills imageUrls where it can
            found |= {Capability.VIDEO, Capability.VIDEO_EXTEND}
        self.log.info(
            "midjourney-proxy at %s%s offers: %s",
            self.connection_settings.base_url,
            self.options.path_prefix,
            ", ".join(sorted(c.value for c in found)),
        )
        return frozenset(found), seed.status_code < 500 and cancel.status_code < 500

    def _probe_send(self, method: str, path: str) -> httpx.Response:
        """One request, no retries; an auth refusal raises (the job would fail the same way)."""
        client, settings = self.get_conn(), self.connection_settings
        response = send(client, method, path, auth=self._auth(settings), timeout=settings.timeout)
        if response.status_code in (401, 403):
            self._raise_for_response(response, method, path)
        return response

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: one ``POST <prefix>/task/list-by-condition {"ids": ["0"]}``.

        Both servers answer it with a JSON list (empty here), whatever tasks they hold, so a wrong
        prefix, a web page or another API fails instead of reading as "Connected".
        """
        from airflow_provider_midjourney.hooks.connection_test import probe

        try:
            settings = self.connection_settings
            options = self.options
        except MidjourneyError as exc:
            return False, str(exc)
        api = f"midjourney-proxy (path prefix {options.path_prefix or '/'})"
        return probe(
            settings.base_url,
            f"{options.path_prefix}/task/list-by-condition",
            {"mj-api-secret": settings.token} if settings.token else {},
            looks_right=lambda data: isinstance(data, list),
            api_name=api,
            method="POST",
            json_body={"ids": [PROBE_TASK_ID]},
            timeout=min(settings.timeout, 8.0),
            describe=lambda data: f"Connected to {api} at {settings.base_url}.",
        )

    # -- answers ------------------------------------------------------------------------------

    def _raise_for_response(self, response: httpx.Response, method: str, path: str) -> None:
        """HTTP errors as for every backend; a submit's ``code`` mapped onto the same exceptions."""
        super()._raise_for_response(response, method, path)
        if method != "POST" or "/submit/" not in path:
            return
        result = _submit_result(response, method, path)
        if result.code in CREATED_CODES:
            return
        text = self.redact(result.text)
        error: MidjourneyAPIError
        if result.code == CODE_QUEUE_FULL:
            error = note_retry_after(
                MidjourneyBusyError(response.status_code, text, method=method, path=path), response.headers
            )
        elif result.code == CODE_BANNED:
            error = MidjourneyModeratedError(response.status_code, text, method=method, path=path)
            text += ". The prompt is not resubmitted: repeated banned prompts get Discord accounts banned"
        elif result.code == CODE_VALIDATION:
            error = MidjourneyValidationError(response.status_code, text, method=method, path=path)
        elif result.code == CODE_NOT_FOUND:
            error = MidjourneyNotFoundError(response.status_code, text, method=method, path=path)
        elif result.code == CODE_FAILURE:
            error = MidjourneyServerError(response.status_code, text, method=method, path=path)
        else:
            error = MidjourneyAPIError(response.status_code, text, method=method, path=path)
        error.args = (f"midjourney-proxy refused {method} {path}: {text}",)
        raise error

    # -- the normalised interface ---------------------------------------------------------------

    def check_request(self, request: JobOptions) -> JobOptions:
        request = super().check_request(request)
        name = type(request).__name__
        if request.channel is not None:
            raise MidjourneyInvalidRequestError(
                f"{name}: channel is not accepted by the midjourney-proxy backend (the server picks the"
                " Discord account); leave it empty"
            )
        if request.reply_level is not None:
            raise MidjourneyInvalidRequestError(
                f"{name}: replyLevel (reply_level) is not accepted by the midjourney-proxy backend (its"
                " notifyHook gets every change); leave it empty"
            )
        if isinstance(request, ButtonRequest):
            self._check_button(request)
        elif isinstance(request, SeedRequest):
            self.check_job_id(request.job_id, "jobId (job_id)")
        elif isinstance(request, VideoRequest | VideoExtendRequest):
            if request.job_id is not None:
                self.check_job_id(request.job_id, "job_id")
            if not request.prompt:
                raise MidjourneyInvalidRequestError(
                    "prompt: the midjourney-proxy backend requires a prompt for video (to extend too)"
                )
            if isinstance(request, VideoRequest) and request.resolution is not None:
                raise MidjourneyInvalidRequestError(
                    "resolution: the midjourney-proxy backend takes SD or HD from the account's settings;"
                    " leave it empty"
                )
        return request

    def _check_button(self, request: ButtonRequest) -> None:
        self.check_job_id(request.job_id, "jobId (job_id)")
        label = request.button.value
        if request.mask is not None or request.prompt is not None:
            field = "mask" if request.mask is not None else "prompt"
            raise MidjourneyUnsupportedError(
                f"ButtonRequest: {field} is not supported by the midjourney-proxy backend ({label!r} with a"
                f" {field} needs the server's /submit/modal form, which this provider does not drive)"
            )
        simple = _change_body(label) is not None
        if not simple and not (self.supported_capabilities() & {Capability.SEED, Capability.CANCEL}):
            raise MidjourneyUnsupportedError(
                f"ButtonRequest: button {label!r} needs the 'button' capability through /submit/action (the"
                f" trueai-org midjourney-proxy); this server (connection {self.midjourney_conn_id!r}) only"
                f" has /submit/change, which offers U1-U4, V1-V4 and {REROLL_LABEL}"
            )

    def submit_job(self, request: JobOptions) -> MidjourneyJob:
        request = self.check_request(request)
        if isinstance(request, SeedRequest):
            return self.fetch_job(request.job_id + SEED_SUFFIX)
        if isinstance(request, ImagineRequest):
            return self._submit("/submit/imagine", {"prompt": request.prompt}, request, "imagine")
        if isinstance(request, ButtonRequest):
            path, body = self._button_body(request)
            return self._submit(path, body, request, "button")
        if isinstance(request, BlendRequest):
            images = []
            for n in range(1, 6):
                source = getattr(request, f"image_blob_{n}") or getattr(request, f"image_url_{n}")
                if source is not None:
                    images.append(self._data_url(source, f"images[{n - 1}]"))
            dimensions = _BLEND_DIMENSIONS[request.blend_dimensions or "Square"]
            return self._submit("/submit/blend", {"base64Array": images, "dimensions": dimensions}, request, "blend")
        if isinstance(request, VideoRequest | VideoExtendRequest):
            return self._submit("/submit/video", self._video_body(request), request, "video")
        if isinstance(request, DescribeRequest):
            source = request.image_blob if request.image_blob is not None else request.image_url
            assert source is not None  # the model requires exactly one
            return self._submit("/submit/describe", {"base64": self._data_url(source, "image")}, request, "describe")
        raise MidjourneyUnsupportedError(
            f"{type(request).__name__} jobs are not offered by the midjourney-proxy backend"
        )

    def imagine(
        self,
        prompt: str,
        *,
        images: Sequence[ImageSource] = (),
        reply_url: str | None = None,
        reply_ref: str | None = None,
    ) -> MidjourneyJob:
        """``/submit/imagine`` with optional reference images (URLs, local paths or bytes, sent as base64)."""
        request = self.check_request(ImagineRequest.build(prompt=prompt, reply_url=reply_url, reply_ref=reply_ref))
        assert isinstance(request, ImagineRequest)
        if isinstance(images, str | bytes):
            raise MidjourneyInvalidRequestError("images: expected a list of images")
        body: dict[str, Any] = {"prompt": request.prompt}
        if images:
            body["base64Array"] = [
                self._data_url(image_from_source(image, f"images[{n}]"), f"images[{n}]")
                for n, image in enumerate(images)
            ]
        return self._submit("/submit/imagine", body, request, "imagine")

    def _submit(self, tail: str, body: dict[str, Any], request: JobOptions, verb: str) -> MidjourneyJob:
        state = state_for(request.reply_ref)
        if state is not None:
            body["state"] = state
        if request.reply_url is not None:
            body["notifyHook"] = request.reply_url
        path = self._path(tail)
        response = self._request(
            "POST", path, body=HttpBody(json_body=body), creates_job=True, reply_ref=request.reply_ref
        )
        result = _submit_result(response, "POST", path)
        task_id = str(result.result or "").strip()
        if not task_id:
            raise MidjourneySubmitUncertainError(
                f"POST {path} answered code {result.code} without a task id; the task may exist, so the request"
                " is not sent again",
                path=path,
                reply_ref=request.reply_ref,
            )
        self.check_job_id(task_id, "result (task id)")
        if result.code == CODE_EXISTS:
            self.log.info("%s: the server already has this task (code 21): reattaching to %s", path, task_id)
            return self.fetch_job(task_id)
        if result.code == CODE_IN_QUEUE:
            self.log.info("Created midjourney-proxy %s task %s, queued (%s)", verb, task_id, result.description)
        else:
            self.log.info("Created midjourney-proxy %s task %s", verb, task_id)
        prompt = getattr(request, "prompt", None)
        return MidjourneyJob(
            job_id=task_id, backend=self.backend, status=JobStatus.CREATED, verb=verb, prompt=prompt, reply_ref=state
        )

    def _video_body(self, request: VideoRequest | VideoExtendRequest) -> dict[str, Any]:
        """``/submit/video``: ``image`` (+ ``endImage``, ``loop``, ``batchSize``), or ``action: "extend"``
        of clip ``index`` (1-4, as ours) of task ``taskId``; ``motion`` either way."""
        body: dict[str, Any] = {"prompt": request.prompt}
        if request.motion:
            body["motion"] = request.motion
        if isinstance(request, VideoExtendRequest):
            body.update(action="extend", taskId=request.job_id, index=request.index)
            return body
        start = request.image
        if request.job_id is not None:
            assert request.index is not None
            start = start_frame_url(self.fetch_job(request.job_id), request.index)
        body["image"] = start
        if request.end_image:
            body["endImage"] = request.end_image
        if request.loop:
            body["loop"] = True
        if request.batch_size:
            body["batchSize"] = request.batch_size
        return body

    def _button_body(self, request: ButtonRequest) -> tuple[str, dict[str, Any]]:
        """``/submit/action`` with the parent's ``customId`` where it has buttons, else ``/submit/change``."""
        label = request.button.value
        parent = self.get_task(request.job_id)
        custom_id = parent.custom_id_for(label)
        if custom_id:
            return "/submit/action", {"taskId": parent.id, "customId": custom_id}
        if parent.buttons:
            available = ", ".join(parent.button_names) or "none"
            raise MidjourneyInvalidRequestError(
                f"button: task {parent.id} has no {label!r} button (status {parent.status}); its buttons: {available}"
            )
        change = _change_body(label)
        if change is None:
            raise MidjourneyUnsupportedError(
                f"button: {label!r} needs /submit/action with a customId, but task {parent.id} lists no buttons"
                f" (an original midjourney-proxy offers only U1-U4, V1-V4 and {REROLL_LABEL})"
            )
        return "/submit/change", {"taskId": parent.id, **change}

    def _data_url(self, image: str | ImageBlob, field: str) -> str:
        """A ``data:`` URL of an image (a blob read by the models' local-image reader, or a URL fetched)."""
        return data_url(self, image, field)

    def get_task(self, task_id: str) -> Task:
        """``GET <prefix>/task/{id}/fetch``: the task as the server describes it."""
        path = self._path(f"/task/{self.check_job_id(task_id)}/fetch")
        return _task_from(self._request("GET", path), path, task_id)

    def fetch_job(self, job_id: str) -> MidjourneyJob:
        if job_id.endswith(SEED_SUFFIX):
            return self._seed(job_id.removesuffix(SEED_SUFFIX))
        return self.get_task(job_id).normalised(self.backend, self.options.moderation)

    async def afetch_job(self, job_id: str) -> MidjourneyJob:
        if job_id.endswith(SEED_SUFFIX):
            raise MidjourneyUnsupportedError("seed jobs finish when submitted: fetch them with fetch_job")
        settings, options = await self._asettings()
        path = self._path(f"/task/{self.check_job_id(job_id)}/fetch", options)
        task = _task_from(await self._arequest("GET", path), path, job_id)
        job = task.normalised(self.backend, options.moderation)
        self._watch((settings.base_url, options.path_prefix), [] if job.is_terminal else [job.job_id], [job.job_id])
        return job

    @classmethod
    def _watch(cls, key: tuple[str, str], running: Iterable[str], seen: Iterable[str]) -> list[str]:
        """Remember ``running`` ids, forget the other ``seen`` ones; return the ids remembered (bounded)."""
        with cls._probes_lock:
            watched = cls._watched.setdefault(key, {})
            keep = set(running)
            for job_id in seen:
                if job_id not in keep:
                    watched.pop(job_id, None)
            for job_id in keep:
                watched[job_id] = None
            while len(watched) > MAX_WATCHED:
                del watched[next(iter(watched))]  # the oldest: its trigger falls back to its own polls
            return list(watched)

    async def afetch_jobs(self, job_ids: Sequence[str]) -> dict[str, MidjourneyJob]:
        """Many tasks in one ``POST <prefix>/task/list-by-condition``; ids the server does not know are absent."""
        ids = [self.check_job_id(j, f"job_ids[{n}]") for n, j in enumerate(job_ids)]
        _settings, options = await self._asettings()
        path = self._path("/task/list-by-condition", options)
        response = await self._arequest("POST", path, body=HttpBody(json_body={"ids": ids}))
        tasks = _tasks_from(response, path)
        return {t.id: t.normalised(self.backend, options.moderation) for t in tasks if t.id in set(ids)}

    def _seed(self, task_id: str) -> MidjourneyJob:
        """``GET <prefix>/task/{id}/image-seed``: answered at once (the seed in ``result``)."""
        self.require(Capability.SEED, "Seed jobs")
        path = self._path(f"/task/{self.check_job_id(task_id)}/image-seed")
        result = _submit_result(self._request("GET", path), "GET", path)
        seed = str(result.result or "").strip()
        if result.code != CODE_SUCCESS or not seed.isdigit():
            raise MidjourneyAPIError(200, f"GET {path}: no seed in the answer ({self.redact(result.text)})")
        return MidjourneyJob(
            job_id=task_id + SEED_SUFFIX, backend=self.backend, status=JobStatus.COMPLETED, verb="seed", seed=int(seed)
        )

    def cancel(self, job_id: str) -> None:
        self.require(Capability.CANCEL, "Cancelling jobs")
        self._request("POST", self._path(f"/task/{self.check_job_id(job_id)}/cancel"))

    async def acancel(self, job_id: str) -> None:
        _settings, options = await self._asettings()
        if options.flavour == "original":
            self.log.warning("Task %s keeps running: the connection says the server cannot cancel", job_id)
            return
        try:
            await self._arequest("POST", self._path(f"/task/{self.check_job_id(job_id)}/cancel", options))
        except (MidjourneyNotFoundError, MidjourneyValidationError) as exc:
            self.log.warning("Task %s keeps running: the server has no cancel route for it (%s)", job_id, exc)

    def list_tasks(self) -> list[Task]:
        """``GET <prefix>/task/list``: the server's tasks (the superset: the newest 100)."""
        path = self._path("/task/list")
        return _tasks_from(self._request("GET", path), path)

    def find_job_by_reply_ref(self, reply_ref: str) -> MidjourneyJob | None:
        """The newest task whose ``state`` is our replyRef and that did not simply fail (running,
        completed or moderated: a moderated prompt is then never resubmitted)."""
        state = state_for(reply_ref)
        try:
            tasks = self.list_tasks()
        except MidjourneyNotFoundError:
            return None
        for task in sorted(tasks, key=lambda t: t.submitTime or 0, reverse=True):
            if task.state != state:
                continue
            job = task.normalised(self.backend, self.options.moderation)
            if job.status != JobStatus.FAILED:
                return job
        return None

    async def alist_running_job_ids(self) -> set[str] | None:
        """The tasks this process saw running, re-checked in one ``POST <prefix>/task/list-by-condition``.

        midjourney-proxy cannot list only its running tasks (``/task/list`` is every task, or the
        newest 100), so the waiting side asks about the ids it waits for: each trigger's fetch of
        a running task adds its id (at most :data:`MAX_WATCHED` per server), this call drops the
        finished ones. A job not asked about is not in the answer: its trigger fetches it itself.
        """
        settings, options = await self._asettings()
        key = (settings.base_url, options.path_prefix)
        ids = self._watch(key, [], [])
        if not ids:
            return set()
        jobs = await self.afetch_jobs(ids)
        running = {job_id for job_id, job in jobs.items() if not job.is_terminal}
        self._watch(key, running, ids)
        return running


def _change_body(label: str) -> dict[str, Any] | None:
    """``/submit/change`` fields for U1-U4, V1-V4 and 🔄; None for any other button."""
    if label == REROLL_LABEL:
        return {"action": "REROLL"}
    match = _CHANGE_LABEL.match(label)
    if match is None:
        return None
    return {"action": CHANGE_ACTIONS[match.group(1)], "index": int(match.group(2))}


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return load_json(response.content)
    except ValueError:
        return None


def _submit_result(response: httpx.Response, method: str, path: str) -> SubmitResult:
    data = _json_or_none(response)
    try:
        return SubmitResult.model_validate(data)
    except ValidationError:
        snippet = response.text.strip()[:200] or "an empty body"
        raise MidjourneySubmitUncertainError(
            f"{method} {path} answered {response.status_code} with {snippet!r}, not a midjourney-proxy result."
            " Check the connection's base URL and path_prefix; the request is not sent again.",
            path=path,
            reply_ref=None,
        ) from None


def _task_from(response: httpx.Response, path: str, task_id: str) -> Task:
    if response.status_code == 204 or not response.content.strip():
        # Both servers answer an unknown id with an empty body (Java: null → 200; C#: null → 204).
        raise MidjourneyNotFoundError(404, f"task {task_id} not found (empty answer)", method="GET", path=path)
    data = _json_or_none(response)
    try:
        return Task.model_validate(data)
    except ValidationError:
        raise MidjourneyMalformedAnswerError(f"GET {path} answered something that is not a task") from None


def _tasks_from(response: httpx.Response, path: str) -> list[Task]:
    try:
        return parse_tasks(_json_or_none(response))
    except (ValueError, ValidationError):
        raise MidjourneyMalformedAnswerError(f"{path} answered something that is not a list of tasks") from None


def _in_event_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
