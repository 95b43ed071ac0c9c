"""The public :class:`MidjourneyEmulator` (FastAPI/uvicorn are only imported by ``start()``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from airflow_provider_midjourney.testing.jobs import JobView
from airflow_provider_midjourney.testing.models import EmulatorKnobs, JobTimings, RecordedRequest
from airflow_provider_midjourney.testing.state import EmulatorState
from airflow_provider_midjourney.testing.useapi_v3_jobs import job_id, snapshot

if TYPE_CHECKING:
    from airflow_provider_midjourney.testing.server import ServerThread


class MidjourneyEmulator(EmulatorKnobs):
    """A local stand-in for every registered Midjourney API, served over real loopback HTTP.

    Knobs (``timings``, ``moderation_words``, ``fail_next`` ...) come from :class:`EmulatorKnobs`
    and act on every dialect's routes. ``latency`` applies to API routes, never to the ``/cdn/`` route.

    Its job engine is neutral (:meth:`job_records`); this facade predates the other dialects and
    still speaks useapi.net's words: jobs carry useapi.net's ids (both useapi dialects hand the
    engine's ids out as they are), :attr:`jobs` and :meth:`created_jobs` show v3's job JSON, and an
    account is a "channel".
    """

    def __init__(
        self,
        *,
        token: str | None = "emulator-token",
        host: str = "127.0.0.1",
        port: int = 0,
        channels: int | list[str] = 1,
        max_jobs: int = 3,
        max_image_jobs: int = 3,
        max_video_jobs: int = 3,
        timings: JobTimings | None = None,
        seed: int = 0,
        public_url: str | None = None,
    ) -> None:
        super().__init__(timings, seed)
        self.token = token
        self.host = host
        self.port = port
        self._public_url = public_url.rstrip("/") if public_url else None
        self.state = EmulatorState(self, channels, max_jobs, max_image_jobs, max_video_jobs, seed, new_id=job_id)
        self._requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._server: ServerThread | None = None
        #: Called by :meth:`reset`: a dialect's own records (Apiframe's idempotency keys) go too.
        self.on_reset: list[Callable[[], None]] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> MidjourneyEmulator:
        if self._server is not None:
            return self
        from airflow_provider_midjourney.testing.app import create_app
        from airflow_provider_midjourney.testing.server import ServerThread

        self.state.closing = False
        server = ServerThread(create_app(self), self.host, self.port)
        self.port = server.port
        self._server = server
        self.state.cdn_base = self.cdn_base_url
        try:
            server.start()
        except BaseException:
            self._server = None
            raise
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            self.state.closing = True
            server.stop()

    def __enter__(self) -> MidjourneyEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash); the port is known once started."""
        if self._public_url:
            return self._public_url
        if self._server is None and self.port == 0:
            raise RuntimeError("start() the emulator first: its port is not chosen yet")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def cdn_base_url(self) -> str:
        """Base of the emulator's CDN route: ``imageUx`` URLs look like ``{this}/<uuid>/0_0.png``."""
        return f"{self.base_url}/cdn"

    # -- observation -----------------------------------------------------------------------
    def _record(self, request: RecordedRequest) -> None:
        with self._requests_lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy of the list)."""
        with self._requests_lock:
            return list(self._requests)

    def requests_to(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method.upper() == method.upper() and r.path.startswith(path_prefix)]

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        """jobid -> the job JSON as v3's ``GET /jobs/<jobid>`` returns it now (expired ones too)."""
        return {view.id: snapshot(view) for view in self.state.views()}

    def created_jobs(self, verb: str | None = None) -> list[dict[str, Any]]:
        """v3's job JSON of the jobs created, in creation order (whichever dialect created them)."""
        return [snapshot(view) for view in self.state.views(verb)]

    def job_records(self, verb: str | None = None) -> list[JobView]:
        """The jobs created, in creation order, as the engine sees them (in no vendor's shape)."""
        return self.state.views(verb)

    # -- control ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget jobs and requests, restore accounts and knobs; the server keeps running."""
        self.state.reset()
        self.reset_knobs()
        for forget in self.on_reset:
            forget()
        with self._requests_lock:
            self._requests.clear()

    def lock_channel(self, channel: str, error: str = "Pending mod message") -> None:
        """Jobs routed to ``channel`` answer 596 until ``POST /accounts/reset/<channel>``."""
        self.state.lock_account(channel, error)

    def unlock_channel(self, channel: str) -> None:
        """What ``POST /accounts/reset/<channel>`` does."""
        self.state.unlock_account(channel)

    def set_channel_limits(
        self,
        channel: str,
        *,
        max_jobs: int | None = None,
        max_image_jobs: int | None = None,
        max_video_jobs: int | None = None,
    ) -> None:
        """Change a channel's concurrent-job limits (e.g. 1 to provoke 429 answers)."""
        limits = {"max_jobs": max_jobs, "max_image_jobs": max_image_jobs, "max_video_jobs": max_video_jobs}
        self.state.set_limits(channel, {k: v for k, v in limits.items() if v is not None})

    def expire_job(self, jobid: str) -> None:
        """The job answers 410 from now on (also when used as a parent)."""
        self.state.expire(jobid)

    def complete_job(self, jobid: str) -> None:
        """Force the job to ``completed`` now (no-op when it already is)."""
        self.state.force_complete(jobid)

    @property
    def channels(self) -> list[str]:
        """Currently configured channel ids."""
        return list(self.state.accounts)
