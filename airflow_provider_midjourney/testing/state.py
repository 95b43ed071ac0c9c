r"""The emulator's job engine: accounts and jobs. A job's status is a pure function of the time since its creation.

Nothing runs in the background: every read computes the job's phase from ``time.monotonic()``
and the job's *plan* (fixed at creation), so thousands of jobs cost nothing while idle.
The engine speaks no vendor's wire: it hands out :class:`JobView`\ s and raises
:class:`EngineError`\ s, and each dialect (``testing/<backend>.py``) shapes them for its vendor.
Job ids come from ``new_id`` (the emulator names them; the engine only keeps them unique).
"""

from __future__ import annotations

import copy
import hashlib
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from airflow_provider_midjourney.testing import images
from airflow_provider_midjourney.testing.jobs import (
    CANCELLED,
    RUNNING,
    TERMINAL,
    TIMED_OUT,
    UPSCALES,
    Account,
    EngineError,
    Failure,
    Job,
    JobSpec,
    JobView,
    Plan,
    buttons_for,
    failed,
    kind_and_type,
    moderated,
)
from airflow_provider_midjourney.testing.models import EmulatorKnobs
from airflow_provider_midjourney.testing.settings import SETTINGS_VERBS, run_command

#: (account id, whether the job makes media, creation wall time, the engine's RNG) -> a job id
NewJobId = Callable[[str, bool, float, random.Random], str]


def plain_job_id(account: str, media: bool, wall: float, rng: random.Random) -> str:
    return f"job-{rng.randrange(10**12):012d}"


_ADJECTIVES = ["vintage", "luminous", "minimalist", "surreal", "weathered", "vivid", "serene"]
_SUBJECTS = ["lighthouse", "motorcycle", "tea house", "fox", "greenhouse", "sailing boat"]
_STYLES = ["studio lighting", "film photography", "watercolor", "isometric render", "oil paint"]


def describe_prompts(source: str) -> tuple[str, ...]:
    """Four prompts 'read' from an image (deterministic in ``source``)."""
    digest = hashlib.sha256(source.encode()).digest()
    prompts = []
    for n in range(4):
        adj = _ADJECTIVES[digest[n] % len(_ADJECTIVES)]
        subject = _SUBJECTS[digest[n + 4] % len(_SUBJECTS)]
        style = _STYLES[digest[n + 8] % len(_STYLES)]
        prompts.append(f"a {adj} {subject} on a plain background, {style} --ar 1:1")
    return tuple(prompts)


def media_urls(kind: str, cdn: str, uid: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(primary, images, videos) of a finished media job on the emulator's CDN (see :meth:`asset`)."""
    if kind == "grid":
        return f"{cdn}/attachments/{uid}/grid_0.png", tuple(f"{cdn}/{uid}/0_{k}.png" for k in range(4)), ()
    if kind == "video_grid":
        return f"{cdn}/attachments/{uid}/grid_0.png", (), tuple(f"{cdn}/video/{uid}/{k}.mp4" for k in range(4))
    if kind == "video":
        return f"{cdn}/video/{uid}/0.mp4", (), (f"{cdn}/video/{uid}/0.mp4",)
    return f"{cdn}/attachments/{uid}/0_0.png", (f"{cdn}/{uid}/0_0.png",), ()


class EmulatorState:
    """Accounts and jobs, guarded by one lock (the HTTP thread and test code both use it)."""

    def __init__(
        self,
        knobs: EmulatorKnobs,
        accounts: int | list[str],
        max_jobs: int,
        max_image_jobs: int,
        max_video_jobs: int,
        seed: int,
        new_id: NewJobId = plain_job_id,
    ) -> None:
        self.knobs = knobs
        self.cdn_base = "http://127.0.0.1/cdn"
        self.closing = False  # set while the server stops: open streams end
        self._lock = threading.RLock()
        self._seed = seed
        self._new_id_of = new_id
        ids = accounts if isinstance(accounts, list) else [str(10**18 + i + 1) for i in range(accounts)]
        self._initial = [Account(i, max_jobs, max_image_jobs, max_video_jobs) for i in ids]
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._rng = random.Random(self._seed)
            self.accounts = {a.id: copy.deepcopy(a) for a in self._initial}
            self._jobs: dict[str, Job] = {}
            self._uids: dict[str, str] = {}
            self._running: dict[str, set[str]] = {}

    # -- jobs ------------------------------------------------------------------------------
    def create_job(self, spec: JobSpec) -> tuple[JobView, bool]:
        """Create a job: (its view, True) or, for an execute-once repeat, (the existing child, False)."""
        with self._lock:
            now = time.monotonic()
            parent = self._parent(spec, now) if spec.verb in ("button", "seed") else None
            label = "seed" if spec.verb == "seed" else spec.button or spec.verb
            once = parent is not None and label in (*UPSCALES, "seed")
            if parent is not None and once and label in parent.execute_once:
                # execute-once: answer the existing child unless it failed or was moderated
                existing = self._jobs[parent.execute_once[label]]
                if self._phase(existing, existing.elapsed(now))[0] not in ("failed", "moderated"):
                    return self._view(existing, existing.elapsed(now)), False
            kind, job_type = kind_and_type(spec, parent)
            account = self._route(parent.account if parent else spec.account, spec.verb, job_type, now)
            job = self._new_job(spec, parent, account, kind, job_type, now)
            if parent is not None:
                parent.children[label] = job.id
                if once:
                    parent.execute_once[label] = job.id
            return self._view(job, 0.0), True

    def _parent(self, spec: JobSpec, now: float) -> Job:
        parent = self._jobs.get(spec.parent_id or "")
        if parent is None:
            raise EngineError(404, "parent_missing", "Parent job not found")
        if parent.expired:
            raise EngineError(410, "parent_expired", "Parent job has expired")
        status = self._phase(parent, parent.elapsed(now))[0]
        action = "get seed" if spec.verb == "seed" else "execute button"
        if status != "completed":
            message = f'Parent job status is "{status}", must be "completed" to {action}'
            raise EngineError(400, "parent_not_completed", message, job_status=status, action=action)
        if spec.verb == "seed" and parent.job_type != "image":
            raise EngineError(400, "seed_not_image", "Seed is only available for completed image jobs (not video)")
        if spec.verb == "button" and spec.button not in parent.buttons:
            available = ", ".join(parent.buttons) or "none"
            message = f"Button {spec.button} is not available for job {parent.id}; available buttons: {available}"
            raise EngineError(
                400, "button_unavailable", message, button=spec.button, job=parent.id, available=available
            )
        return parent

    def _busy(self, account: Account, job_type: str | None, now: float) -> EngineError | None:
        if job_type is None:
            return None
        running = self._running_jobs(account.id, now)
        images_n = sum(1 for j in running if j.job_type == "image")
        videos_n = len(running) - images_n
        full: tuple[int, str | None] | None = None
        if job_type == "image" and images_n >= account.max_image_jobs:
            full = images_n, "image"
        elif job_type == "video" and videos_n >= account.max_video_jobs:
            full = videos_n, "video"
        elif len(running) >= account.max_jobs:
            full = len(running), None
        if full is None:
            return None
        count, of = full
        message = f"Account {account.id} is busy running {count} {of + ' ' if of else ''}jobs"
        return EngineError(429, "busy", message, account=account.id, running=count, job_type=of)

    def _route(self, account_id: str | None, verb: str, job_type: str | None, now: float) -> Account:
        if account_id:
            account = self.accounts.get(account_id)
            if account is None:
                raise EngineError(400, "unknown_account", f"Account {account_id} is not configured", account=account_id)
            if account.error:
                message = f"Account {account_id} is locked ({account.error})"
                raise EngineError(596, "account_locked", message, account=account_id, error=account.error)
            busy = self._busy(account, job_type, now)
            if busy:
                raise busy
            return account
        if not self.accounts:
            raise EngineError(400, "no_account", "No Midjourney account configured")
        if verb in SETTINGS_VERBS and len(self.accounts) > 1:
            count = len(self.accounts)
            raise EngineError(400, "account_required", f"Name the account: {count} are configured", count=count)
        healthy = [a for a in self.accounts.values() if not a.error]
        if not healthy:
            count = len(self.accounts)
            raise EngineError(596, "all_locked", f"All {count} configured accounts are locked", count=count)
        free = [a for a in healthy if self._busy(a, job_type, now) is None]
        if not free:
            busy = self._busy(healthy[0], job_type, now)
            assert busy is not None
            raise busy
        return self._rng.choice(free)

    def _plan(self, trigger_text: str) -> Plan:
        t = self.knobs.timings
        start = max(0.0, t.start_after)
        progress = max(start, t.progress_after)
        raw = t.complete_after
        complete = max(progress, self._rng.uniform(*raw) if isinstance(raw, tuple) else raw)
        text = trigger_text.lower()
        for words, outcome in (
            (self.knobs.moderation_words, "moderated"),
            (self.knobs.failure_words, "failed"),
            (self.knobs.never_finish_words, "never"),
        ):
            hit = next((w for w in sorted(words) if w and w.lower() in text), None)
            if hit:
                return Plan(start, progress, complete, tuple(t.progress_steps), outcome, hit)
        outcome = "never" if self.knobs.never_finish else "completed"
        return Plan(start, progress, complete, tuple(t.progress_steps), outcome)

    def _new_id(self, account: str, media: bool, wall: float) -> str:
        for _ in range(1000):
            job_id = self._new_id_of(account, media, wall, self._rng)
            if job_id not in self._jobs:
                return job_id
        raise RuntimeError("no unused job id in 1000 draws")  # pragma: no cover - astronomically rare

    def _new_job(
        self, spec: JobSpec, parent: Job | None, account: Account, kind: str, job_type: str | None, now: float
    ) -> Job:
        wall = time.time()
        prompt = spec.prompt or (parent.prompt if parent else "")
        uid = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        job = Job(
            id=self._new_id(account.id, job_type is not None, wall),
            verb=spec.verb,
            job_type=job_type,
            kind=kind,
            account=account.id,
            uid=uid,
            request=spec.request,
            prompt=prompt,
            button=spec.button,
            parent_id=spec.parent_id,
            created_mono=now,
            created_wall=wall,
            speed=account.settings.speed,
            plan=self._plan(f"{spec.trigger_text} {prompt}"),
            buttons=buttons_for(kind, spec.button),
        )
        if spec.verb == "seed" and parent is not None:
            job.extra = {"parent_uid": parent.uid, "seed": self._rng.randrange(2**32)}
        elif spec.verb == "describe":
            job.extra = {"source": spec.source}
        elif spec.verb in SETTINGS_VERBS:
            running = len(self._running_jobs(account.id, now))
            job.result = run_command(spec.verb, account.settings, account.id, running)
        self._jobs[job.id] = job
        self._uids[uid] = job.id
        if job_type is not None:
            self._running.setdefault(account.id, set()).add(job.id)
        return job

    def _running_jobs(self, account: str, now: float) -> list[Job]:
        ids = self._running.get(account, set())
        jobs = [self._jobs[i] for i in ids if i in self._jobs]
        running = [j for j in jobs if self._phase(j, j.elapsed(now))[0] in RUNNING]
        self._running[account] = {j.id for j in running}
        return sorted(running, key=lambda j: j.created_mono)

    # -- lifecycle -----------------------------------------------------------------------
    def _phase(self, job: Job, t: float) -> tuple[str, int | None, float, Failure | None]:
        if job.forced is not None and t >= job.forced[0]:
            return job.forced[1], None, job.forced[0], job.forced[2]
        if job.stuck is not None and t >= job.stuck[0]:
            timeout_at = job.stuck[0] + job.stuck[1]
            if t >= timeout_at:
                return "failed", None, timeout_at, TIMED_OUT
            t = job.stuck[0]
        status, percent, began = job.plan.phase(t)
        if status == "moderated":
            return status, None, began, moderated(job.prompt, job.plan.word or "")
        if status == "failed":
            return status, None, began, failed(job.plan.word)
        return status, percent, began, None

    def _view(self, job: Job, t: float) -> JobView:
        status, percent, began, failure = self._phase(job, t)
        view = JobView(
            id=job.id,
            verb=job.verb,
            kind=job.kind,
            job_type=job.job_type,
            account=job.account,
            uid=job.uid,
            status=status,
            percent=percent,
            prompt=job.prompt,
            button=job.button,
            parent_id=job.parent_id,
            request=copy.deepcopy(job.request),
            created=job.created_wall,
            updated=job.created_wall + began,
            speed=job.speed,
            buttons=tuple(job.buttons),
            children=dict(job.children),
            execute_once=dict(job.execute_once),
            failure=failure,
            seed=job.extra.get("seed"),
            parent_uid=job.extra.get("parent_uid"),
        )
        if status != "completed":
            return view
        if view.media:
            primary, image_urls, video_urls = media_urls(job.kind, self.cdn_base, job.uid)
            return replace(view, primary_url=primary, image_urls=image_urls, video_urls=video_urls)
        if job.verb == "seed" and view.parent_uid:
            cells = tuple(f"{self.cdn_base}/attachments/{view.parent_uid}/0_{k}.png" for k in range(4))
            return replace(view, image_urls=cells)
        if job.verb == "describe":
            return replace(view, describe_prompts=describe_prompts(job.extra.get("source", job.uid)))
        if job.result is not None:
            return replace(view, settings_reply=copy.deepcopy(job.result))
        return view

    def _get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise EngineError(404, "job_missing", "Job not found")
        if job.expired:
            raise EngineError(410, "job_expired", f"Job {job_id} has expired", job=job_id)
        return job

    def view(self, job_id: str) -> JobView:
        """The job now (EngineError 404 if unknown, 410 once expired)."""
        with self._lock:
            job = self._get(job_id)
            return self._view(job, job.elapsed())

    def has_job(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._jobs

    def view_at(self, job_id: str, t: float) -> JobView:
        """The job as it was (or will be) ``t`` seconds after its creation."""
        with self._lock:
            return self._view(self._jobs[job_id], t)

    def boundaries(self, job_id: str) -> tuple[float, list[float]]:
        """(creation monotonic time, sorted times after creation where the job may change)."""
        with self._lock:
            job = self._jobs[job_id]
            times = set(job.plan.boundaries())
            if job.forced is not None:
                times.add(job.forced[0])
            if job.stuck is not None:
                times.update({job.stuck[0], job.stuck[0] + job.stuck[1]})
            return job.created_mono, sorted(times)

    def stream_disconnected(self, job_id: str) -> None:
        """A streaming client left early: with ``stuck_on_disconnect`` the job freezes (as documented)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not self.knobs.stuck_on_disconnect or job.stuck is not None:
                return
            t = job.elapsed()
            if self._phase(job, t)[0] in RUNNING:
                job.stuck = (t, self.knobs.timings.stuck_timeout)

    def cancel(self, job_id: str) -> None:
        with self._lock:
            job = self._get(job_id)
            t = job.elapsed()
            status = self._phase(job, t)[0]
            if status in TERMINAL:
                message = (
                    f'Job {job_id} is not running (status "{status}"); only created, started or '
                    "progress jobs can be cancelled"
                )
                raise EngineError(400, "not_running", message, job=job_id, job_status=status)
            job.forced = (t, "failed", CANCELLED)

    def force_complete(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs[job_id]
            t = job.elapsed()
            if self._phase(job, t)[0] != "completed":
                job.forced = (t, "completed", None)

    def complete_at(self, job_id: str, wall: float) -> None:
        """The job completes at wall clock ``wall`` (benchmarks hold jobs, then release them on a schedule)."""
        with self._lock:
            job = self._jobs[job_id]
            job.forced = (wall - job.created_wall, "completed", None)

    def planned_completion(self, job_id: str) -> tuple[float, float]:
        """(creation, planned completion) of the job, wall clock."""
        with self._lock:
            job = self._jobs[job_id]
            return job.created_wall, job.created_wall + job.plan.complete

    def expire(self, job_id: str) -> None:
        with self._lock:
            self._jobs[job_id].expired = True

    def running(self) -> dict[str, list[JobView]]:
        """Account id -> its running jobs, oldest first (every configured account, and any other with jobs)."""
        with self._lock:
            now = time.monotonic()
            out: dict[str, list[JobView]] = {}
            for account in [*self.accounts, *(a for a in self._running if a not in self.accounts)]:
                jobs = self._running_jobs(account, now)
                if jobs or account in self.accounts:
                    out[account] = [self._view(j, j.elapsed(now)) for j in jobs]
            return out

    def views(self, verb: str | None = None) -> list[JobView]:
        """Every job (expired ones too), in creation order; only ``verb``'s with one."""
        with self._lock:
            now = time.monotonic()
            return [self._view(j, j.elapsed(now)) for j in self._jobs.values() if verb is None or j.verb == verb]

    # -- CDN -----------------------------------------------------------------------------
    def asset(self, path: str) -> tuple[bytes, str] | None:
        """Bytes and content type for a CDN path below ``/cdn/`` (None if unknown)."""
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] in ("attachments", "video"):
            folder, uid, name = parts
        elif len(parts) == 2:
            folder, uid, name = "", parts[0], parts[1]
        else:
            return None
        with self._lock:
            if uid not in self._uids:
                return None
        if folder == "video" and re.fullmatch(r"[0-3]\.mp4", name):
            return images.mp4_bytes(f"{uid}/{name[0]}"), "video/mp4"
        if folder == "attachments" and name == "grid_0.png":
            cells = (f"{uid}/0_0", f"{uid}/0_1", f"{uid}/0_2", f"{uid}/0_3")
            return images.grid_png_bytes(f"{uid}/grid_0", cells), "image/png"
        if folder != "video" and re.fullmatch(r"0_[0-3]\.png", name):
            return images.png_bytes(f"{uid}/{name[:-4]}"), "image/png"
        return None

    # -- accounts ------------------------------------------------------------------------
    def add_account(self, account_id: str, max_jobs: int, max_image_jobs: int, max_video_jobs: int) -> bool:
        """Add the account or change its limits; True if it is new."""
        with self._lock:
            new = account_id not in self.accounts
            account = self.accounts.setdefault(account_id, Account(account_id))
            account.max_jobs, account.max_image_jobs, account.max_video_jobs = max_jobs, max_image_jobs, max_video_jobs
            return new

    def delete_account(self, account_id: str) -> bool:
        with self._lock:
            return self.accounts.pop(account_id, None) is not None

    def lock_account(self, account_id: str, error: str) -> None:
        with self._lock:
            self.accounts[account_id].error = error

    def set_limits(self, account_id: str, limits: dict[str, int]) -> None:
        with self._lock:
            account = self.accounts[account_id]
            for name, value in limits.items():
                setattr(account, name, value)

    def unlock_account(self, account_id: str) -> bool:
        with self._lock:
            account = self.accounts.get(account_id)
            if account is not None:
                account.error = None
            return account is not None
