"""In-memory accounts and jobs. A job's status is a pure function of the time since its creation.

Nothing runs in the background: every read computes the job's phase from ``time.monotonic()``
and the job's *plan* (fixed at creation), so thousands of jobs cost nothing while idle.
"""

from __future__ import annotations

import copy
import random
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from airflow_provider_midjourney.testing import content, images
from airflow_provider_midjourney.testing.jobs import (
    ALL_LOCKED,
    LEGACY_V2,
    MEDIA_KINDS,
    RUNNING,
    TERMINAL,
    UPSCALES,
    Account,
    ApiError,
    Job,
    JobSpec,
    Plan,
    buttons_for,
    channel_for_token,
    kind_and_type,
    redact,
)
from airflow_provider_midjourney.testing.models import EmulatorKnobs
from airflow_provider_midjourney.testing.settings import SETTINGS_VERBS, run_command


class EmulatorState:
    """Accounts and jobs, guarded by one lock (the HTTP thread and test code both use it)."""

    def __init__(
        self,
        knobs: EmulatorKnobs,
        channels: int | list[str],
        max_jobs: int,
        max_image_jobs: int,
        max_video_jobs: int,
        seed: int,
    ) -> None:
        self.knobs = knobs
        self.cdn_base = "http://127.0.0.1/cdn"
        self.closing = False  # set while the server stops: open SSE streams end
        self._lock = threading.RLock()
        self._seed = seed
        ids = channels if isinstance(channels, list) else [str(10**18 + i + 1) for i in range(channels)]
        self._initial = [
            Account(ch, redact(f"emulator-discord-{ch}"), max_jobs, max_image_jobs, max_video_jobs) for ch in ids
        ]
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._rng = random.Random(self._seed)
            self.accounts = {a.channel: copy.deepcopy(a) for a in self._initial}
            self._jobs: dict[str, Job] = {}
            self._uids: dict[str, str] = {}
            self._running: dict[str, set[str]] = {}

    # -- jobs ------------------------------------------------------------------------------
    def create_job(self, spec: JobSpec) -> tuple[dict[str, Any], int, str]:
        """Create a job; returns (snapshot, 201 | 200 for an execute-once repeat, jobid)."""
        with self._lock:
            now = time.monotonic()
            parent = self._parent(spec, now) if spec.verb in ("button", "seed") else None
            label = "seed" if spec.verb == "seed" else spec.button or spec.verb
            once = parent is not None and label in (*UPSCALES, "seed")
            if parent is not None and once and label in parent.execute_once:
                # execute-once: answer the existing child unless it failed or was moderated
                existing = self._jobs[parent.execute_once[label]]
                if self._phase(existing, existing.elapsed(now))[0] not in ("failed", "moderated"):
                    return self._snapshot(existing, existing.elapsed(now)), 200, existing.jobid
            kind, job_type = kind_and_type(spec, parent)
            account = self._route(parent.channel if parent else spec.channel, spec.verb, job_type, now)
            job = self._new_job(spec, parent, account, kind, job_type, now)
            if parent is not None:
                parent.children[label] = job.jobid
                if once:
                    parent.execute_once[label] = job.jobid
            snapshot = self._snapshot(job, 0.0)
            snapshot.pop("updated", None)
            return snapshot, 201, job.jobid

    def _parent(self, spec: JobSpec, now: float) -> Job:
        parent = self._jobs.get(spec.parent_id or "")
        if parent is None:
            raise ApiError(404, "Parent job not found")
        if parent.expired:
            raise ApiError(410, "Parent job has expired")
        status = self._phase(parent, parent.elapsed(now))[0]
        action = "get seed" if spec.verb == "seed" else "execute button"
        if status != "completed":
            raise ApiError(400, f'Parent job status is "{status}", must be "completed" to {action}')
        if spec.verb == "seed" and parent.job_type != "image":
            raise ApiError(400, "Seed is only available for completed image jobs (not video)")
        if spec.verb == "button" and spec.button not in parent.buttons:
            available = ", ".join(parent.buttons) or "none"
            raise ApiError(
                400,
                f"Button {spec.button} is not available for job {parent.jobid}; available buttons: {available}",
            )
        return parent

    def _busy(self, account: Account, job_type: str | None, now: float) -> str | None:
        if job_type is None:
            return None
        running = self._running_jobs(account.channel, now)
        images_n = sum(1 for j in running if j.job_type == "image")
        videos_n = len(running) - images_n
        prefix = f"Channel {account.channel} is busy executing"
        if job_type == "image" and images_n >= account.max_image_jobs:
            return f"{prefix} {images_n} image jobs"
        if job_type == "video" and videos_n >= account.max_video_jobs:
            return f"{prefix} {videos_n} video jobs"
        if len(running) >= account.max_jobs:
            return f"{prefix} {len(running)} jobs"
        return None

    def _route(self, channel: str | None, verb: str, job_type: str | None, now: float) -> Account:
        if channel:
            account = self.accounts.get(channel)
            if account is None:
                raise ApiError(400, f"Channel {channel} is not configured")
            if account.error:
                raise ApiError(
                    596,
                    f"Midjourney channel {channel} has errors ({account.error}). Please resolve "
                    f"channel issues and execute POST /v3/midjourney/accounts/reset/{channel}.",
                )
            busy = self._busy(account, job_type, now)
            if busy:
                raise ApiError(429, busy)
            return account
        if not self.accounts:
            raise ApiError(400, "No Midjourney channels configured, use POST /accounts first")
        if verb in SETTINGS_VERBS and len(self.accounts) > 1:
            raise ApiError(
                400,
                f"channel parameter is required when multiple channels ({len(self.accounts)}) are configured",
            )
        healthy = [a for a in self.accounts.values() if not a.error]
        if not healthy:
            raise ApiError(596, ALL_LOCKED.format(n=len(self.accounts)))
        free = [a for a in healthy if self._busy(a, job_type, now) is None]
        if not free:
            raise ApiError(429, self._busy(healthy[0], job_type, now))
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

    def _new_id(self, channel: str, media: bool, wall: float) -> str:
        stamp = datetime.fromtimestamp(wall, UTC)
        head = f"j{stamp:%m%d%H%M%S}{stamp.microsecond // 1000:03d}"
        tail = f"{'i' if media else ''}-u12345-c{channel}-bot:midjourney"
        for _ in range(1000):
            jobid = f"{head}{self._rng.randrange(10**6):06d}{tail}"
            if jobid not in self._jobs:
                return jobid
        return f"{head}{len(self._jobs):06d}{tail}"  # pragma: no cover - astronomically rare

    def _new_job(
        self, spec: JobSpec, parent: Job | None, account: Account, kind: str, job_type: str | None, now: float
    ) -> Job:
        wall = time.time()
        prompt = spec.prompt or (parent.prompt if parent else "")
        uid = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        job = Job(
            jobid=self._new_id(account.channel, job_type is not None, wall),
            verb=spec.verb,
            job_type=job_type,
            kind=kind,
            channel=account.channel,
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
            running = len(self._running_jobs(account.channel, now))
            job.result = run_command(spec.verb, account.settings, account.channel, running)
        self._jobs[job.jobid] = job
        self._uids[uid] = job.jobid
        if job_type is not None:
            self._running.setdefault(account.channel, set()).add(job.jobid)
        return job

    def _running_jobs(self, channel: str, now: float) -> list[Job]:
        ids = self._running.get(channel, set())
        jobs = [self._jobs[i] for i in ids if i in self._jobs]
        running = [j for j in jobs if self._phase(j, j.elapsed(now))[0] in RUNNING]
        self._running[channel] = {j.jobid for j in running}
        return sorted(running, key=lambda j: j.created_mono)

    # -- lifecycle -----------------------------------------------------------------------
    def _phase(self, job: Job, t: float) -> tuple[str, int | None, float, dict[str, Any]]:
        if job.forced is not None and t >= job.forced[0]:
            return job.forced[1], None, job.forced[0], job.forced[2]
        if job.stuck is not None and t >= job.stuck[0]:
            timeout_at = job.stuck[0] + job.stuck[1]
            if t >= timeout_at:
                return "failed", None, timeout_at, content.TIMED_OUT_FIELDS
            t = job.stuck[0]
        status, percent, began = job.plan.phase(t)
        if status == "moderated":
            return status, None, began, content.moderated_fields(job.prompt, job.plan.word or "")
        if status == "failed":
            return status, None, began, content.failed_fields(job.plan.word)
        return status, percent, began, {}

    def _completed(self, job: Job) -> dict[str, Any]:
        if job.result is None:
            if job.kind in MEDIA_KINDS:
                job.result = content.media_response(
                    job.kind, self.cdn_base, job.uid, job.prompt, job.speed, job.button, job.buttons
                )
            elif job.verb == "seed":
                job.result = content.seed_response(
                    self.cdn_base, job.extra["parent_uid"], job.prompt, job.extra["seed"]
                )
            else:
                job.result = content.describe_response(job.extra.get("source", job.uid))
        result = copy.deepcopy(job.result)
        if job.kind in MEDIA_KINDS:
            result["children"] = dict(job.children)
            result["executeOnce"] = dict(job.execute_once)
        return result

    def _snapshot(self, job: Job, t: float) -> dict[str, Any]:
        status, percent, began, fields = self._phase(job, t)
        snap: dict[str, Any] = {"jobid": job.jobid, "verb": job.verb}
        if job.job_type:
            snap["jobType"] = job.job_type
        snap.update(status=status, created=content.iso(job.created_wall))
        snap["updated"] = content.iso(job.created_wall + began)
        snap["request"] = copy.deepcopy(job.request)
        if status in ("started", "progress"):
            snap["response"] = content.progress_content(job.prompt, job.speed, percent, job.button, job.kind)
        elif status == "completed":
            snap.update(response=self._completed(job), code=200)
        elif fields:
            snap.update(copy.deepcopy(fields))
        return snap

    def _get(self, jobid: str) -> Job:
        job = self._jobs.get(jobid)
        if job is None:
            raise ApiError(404, "Job not found")
        if job.expired:
            raise ApiError(410, f"Job {jobid} has expired")
        return job

    def get_job(self, jobid: str) -> dict[str, Any]:
        with self._lock:
            job = self._get(jobid)
            return self._snapshot(job, job.elapsed())

    def has_job(self, jobid: str) -> bool:
        with self._lock:
            return jobid in self._jobs

    def snapshot_at(self, jobid: str, t: float) -> dict[str, Any]:
        with self._lock:
            return self._snapshot(self._jobs[jobid], t)

    def boundaries(self, jobid: str) -> tuple[float, list[float]]:
        """(creation monotonic time, sorted times after creation where the job may change)."""
        with self._lock:
            job = self._jobs[jobid]
            times = set(job.plan.boundaries())
            if job.forced is not None:
                times.add(job.forced[0])
            if job.stuck is not None:
                times.update({job.stuck[0], job.stuck[0] + job.stuck[1]})
            return job.created_mono, sorted(times)

    def stream_disconnected(self, jobid: str) -> None:
        """An SSE client left early: with ``stuck_on_disconnect`` the job freezes (as documented)."""
        with self._lock:
            job = self._jobs.get(jobid)
            if job is None or not self.knobs.stuck_on_disconnect or job.stuck is not None:
                return
            t = job.elapsed()
            if self._phase(job, t)[0] in RUNNING:
                job.stuck = (t, self.knobs.timings.stuck_timeout)

    def cancel(self, jobid: str) -> None:
        with self._lock:
            job = self._get(jobid)
            t = job.elapsed()
            status = self._phase(job, t)[0]
            if status in TERMINAL:
                raise ApiError(
                    400,
                    f'Job {jobid} is not running (status "{status}"); only created, started or '
                    "progress jobs can be cancelled",
                )
            job.forced = (t, "failed", content.CANCELLED_FIELDS)

    def force_complete(self, jobid: str) -> None:
        with self._lock:
            job = self._jobs[jobid]
            t = job.elapsed()
            if self._phase(job, t)[0] != "completed":
                job.forced = (t, "completed", {})

    def expire(self, jobid: str) -> None:
        with self._lock:
            self._jobs[jobid].expired = True

    def running_summary(self) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            channels: dict[str, Any] = {}
            totals = {"total": 0, "images": 0, "videos": 0}
            for channel in [*self.accounts, *(c for c in self._running if c not in self.accounts)]:
                account = self.accounts.get(channel) or Account(channel, "")
                jobs = self._running_jobs(channel, now)
                images_n = sum(1 for j in jobs if j.job_type == "image")
                counts = {"total": len(jobs), "images": images_n, "videos": len(jobs) - images_n}
                if not jobs and channel not in self.accounts:
                    continue
                for key, value in counts.items():
                    totals[key] += value
                channels[channel] = {
                    **counts,
                    "maxJobs": account.max_jobs,
                    "maxImageJobs": account.max_image_jobs,
                    "maxVideoJobs": account.max_video_jobs,
                    "jobs": [
                        {
                            "jobId": j.jobid,
                            "channel": channel,
                            "jobType": j.job_type,
                            "created": content.iso(j.created_wall),
                            "elapsed": "{:02d}:{:02d}".format(*divmod(int(j.elapsed(now)), 60)),
                        }
                        for j in jobs
                    ],
                }
            return {**totals, "channels": channels}

    def snapshots(self, verb: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            now = time.monotonic()
            return [self._snapshot(j, j.elapsed(now)) for j in self._jobs.values() if verb is None or j.verb == verb]

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
    def upsert_account(
        self, discord: str, max_jobs: int, max_image_jobs: int, max_video_jobs: int, reply_url: str | None
    ) -> tuple[dict[str, Any], int]:
        channel = channel_for_token(discord)
        if discord.startswith("v2-"):
            raise ApiError(409, LEGACY_V2.format(ch=channel))
        with self._lock:
            account = self.accounts.get(channel)
            status = 200 if account else 201
            if account is None:
                account = self.accounts[channel] = Account(channel, redact(discord))
            account.max_jobs, account.max_image_jobs = max_jobs, max_image_jobs
            account.max_video_jobs, account.reply_url = max_video_jobs, reply_url
            return account.public(), status

    def account_views(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {ch: a.public() for ch, a in self.accounts.items()}

    def delete_account(self, channel: str) -> bool:
        with self._lock:
            return self.accounts.pop(channel, None) is not None

    def lock_channel(self, channel: str, error: str) -> None:
        with self._lock:
            self.accounts[channel].error = error

    def set_limits(self, channel: str, limits: dict[str, int]) -> None:
        with self._lock:
            account = self.accounts[channel]
            for name, value in limits.items():
                setattr(account, name, value)

    def reset_channel(self, channel: str) -> bool:
        with self._lock:
            account = self.accounts.get(channel)
            if account is not None:
                account.error = None
            return account is not None
