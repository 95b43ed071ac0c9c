"""useapi.net's wire over the neutral engine: its job ids, its job JSON, its error texts, its Discord accounts.

The v3 routes (``useapi_v3.py``) answer with these; the v1/v2 dialect (``useapi_v2.py``) shares the
id format and the Discord accounts (both are useapi.net's, over the same channels).
"""

from __future__ import annotations

import hashlib
import random
import threading
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_midjourney.testing import content
from airflow_provider_midjourney.testing.jobs import ApiError, EngineError, JobView

if TYPE_CHECKING:
    from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator

ALL_LOCKED = (
    "All configured Midjourney channels ({n}) have errors (pending moderation, CAPTCHA, etc.). "
    "Please resolve channel issues before making new requests."
)
LEGACY_V2 = (
    "Legacy v2 Midjourney configuration detected for channel {ch}. v2 and v3 APIs are "
    "incompatible and cannot coexist. Please delete the v2 configuration first: DELETE "
    "https://api.useapi.net/v2/midjourney/account/{ch} (requires Authorization header with your "
    "API key). After deletion, you can configure this channel for v3."
)
KEY_FIELDS = ("status", "verb", "jobid")  # what a job JSON cannot do without (malformed_next's missing_fields)
_FAILURE_DETAILS = {
    "cancelled": "The job was cancelled with DELETE /v3/midjourney/jobs/<jobid>",
    "timed_out": "The SSE client disconnected before the job finished; the job got stuck",
}


def job_id(account: str, media: bool, wall: float, rng: random.Random) -> str:
    """``j<MMDDhhmmss><ms><6 digits>[i]-u12345-c<channel>-bot:midjourney`` (``i``: the job makes media)."""
    stamp = datetime.fromtimestamp(wall, UTC)
    head = f"j{stamp:%m%d%H%M%S}{stamp.microsecond // 1000:03d}"
    return f"{head}{rng.randrange(10**6):06d}{'i' if media else ''}-u12345-c{account}-bot:midjourney"


def snapshot(view: JobView, *, created: bool = False) -> dict[str, Any]:
    """The v3 job JSON (``GET /v3/midjourney/jobs/<jobid>``); ``created``: the creation answer (no ``updated``)."""
    snap: dict[str, Any] = {"jobid": view.id, "verb": view.verb}
    if view.job_type:
        snap["jobType"] = view.job_type
    snap.update(status=view.status, created=content.iso(view.created))
    if not created:
        snap["updated"] = content.iso(view.updated)
    snap["request"] = view.request
    message = content.message(view)
    if view.status in ("started", "progress"):
        snap["response"] = message
    elif view.status == "completed":
        response = message or {}
        if view.media:
            response.update(children=dict(view.children), executeOnce=dict(view.execute_once))
        snap.update(response=response, code=200)
    elif view.failure is not None:
        failure = view.failure
        details = _FAILURE_DETAILS.get(failure.reason, failure.details)
        snap.update(error=failure.title, errorDetails=details, code=failure.code)
        if message is not None:
            snap["response"] = message
    return snap


def v3_error(exc: ApiError) -> ApiError:
    """An engine refusal in v3's words (other errors pass as they are)."""
    if not isinstance(exc, EngineError):
        return exc
    facts, reason = exc.facts, exc.reason
    if reason == "unknown_account":
        return ApiError(400, f"Channel {facts['account']} is not configured")
    if reason == "account_locked":
        channel = facts["account"]
        return ApiError(
            596,
            f"Midjourney channel {channel} has errors ({facts['error']}). Please resolve "
            f"channel issues and execute POST /v3/midjourney/accounts/reset/{channel}.",
        )
    if reason == "no_account":
        return ApiError(400, "No Midjourney channels configured, use POST /accounts first")
    if reason == "account_required":
        return ApiError(400, f"channel parameter is required when multiple channels ({facts['count']}) are configured")
    if reason == "all_locked":
        return ApiError(596, ALL_LOCKED.format(n=facts["count"]))
    if reason == "busy":
        of = f"{facts['job_type']} " if facts["job_type"] else ""
        return ApiError(429, f"Channel {facts['account']} is busy executing {facts['running']} {of}jobs")
    return ApiError(exc.status, exc.message)


def running_summary(running: dict[str, list[JobView]], limits: dict[str, tuple[int, int, int]]) -> dict[str, Any]:
    """``GET /v3/midjourney/jobs``: running jobs per channel, with the channel's limits."""
    channels: dict[str, Any] = {}
    totals = {"total": 0, "images": 0, "videos": 0}
    now = datetime.now(UTC).timestamp()
    for channel, jobs in running.items():
        images_n = sum(1 for j in jobs if j.job_type == "image")
        counts = {"total": len(jobs), "images": images_n, "videos": len(jobs) - images_n}
        for key, value in counts.items():
            totals[key] += value
        max_jobs, max_images, max_videos = limits.get(channel, (3, 3, 3))
        channels[channel] = {
            **counts,
            "maxJobs": max_jobs,
            "maxImageJobs": max_images,
            "maxVideoJobs": max_videos,
            "jobs": [
                {
                    "jobId": j.id,
                    "channel": channel,
                    "jobType": j.job_type,
                    "created": content.iso(j.created),
                    "elapsed": "{:02d}:{:02d}".format(*divmod(int(max(0.0, now - j.created)), 60)),
                }
                for j in jobs
            ],
        }
    return {**totals, "channels": channels}


# -- Discord accounts -----------------------------------------------------------------------------------------
def redact(token: str) -> str:
    return f"{token[:3]}...{token[-3:]}"


def channel_for_token(token: str) -> str:
    """The 19-digit channel id 'discovered' from a Discord token (deterministic)."""
    value = int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "big")
    return str(10**18 + value % (9 * 10**18))


@dataclass
class DiscordConfig:
    discord: str  # always the redacted form
    reply_url: str | None = None


class UseapiAccounts:
    """useapi.net's view of the engine's accounts: each is a Discord channel configured from a token."""

    def __init__(self, emu: MidjourneyEmulator) -> None:
        self.state = emu.state
        self._lock = threading.Lock()
        self._configs: dict[str, DiscordConfig] = {}
        emu.on_reset.append(self._forget)

    def _forget(self) -> None:
        with self._lock:
            self._configs.clear()

    def _config(self, channel: str) -> DiscordConfig:
        with self._lock:
            return self._configs.setdefault(channel, DiscordConfig(redact(f"emulator-discord-{channel}")))

    def remember(self, channel: str, discord: str) -> None:
        """A job brought its own Discord account (v1/v2): the channel exists from now on."""
        if channel not in self.state.accounts:
            self.state.add_account(channel, 3, 3, 3)
            with self._lock:
                self._configs[channel] = DiscordConfig(redact(discord))

    def upsert(
        self, discord: str, max_jobs: int, max_image_jobs: int, max_video_jobs: int, reply_url: str | None
    ) -> tuple[dict[str, Any], int]:
        """``POST /v3/midjourney/accounts``: (the account's view, 201 new | 200 updated)."""
        channel = channel_for_token(discord)
        if discord.startswith("v2-"):
            raise ApiError(409, LEGACY_V2.format(ch=channel))
        new = self.state.add_account(channel, max_jobs, max_image_jobs, max_video_jobs)
        with self._lock:
            config = self._configs.get(channel)
            if new or config is None:
                config = self._configs[channel] = DiscordConfig(redact(discord))
            config.reply_url = reply_url
        return self.views()[channel], 201 if new else 200

    def views(self) -> dict[str, dict[str, Any]]:
        """Channel -> its ``GET /v3/midjourney/accounts/<channel>`` JSON."""
        out: dict[str, dict[str, Any]] = {}
        for channel, account in list(self.state.accounts.items()):
            config = self._config(channel)
            view: dict[str, Any] = {
                "discord": config.discord,
                "channel": channel,
                "maxJobs": account.max_jobs,
                "maxImageJobs": account.max_image_jobs,
                "maxVideoJobs": account.max_video_jobs,
            }
            if config.reply_url:
                view["replyUrl"] = config.reply_url
            if account.error:
                view["error"] = account.error
            out[channel] = view
        return out

    def limits(self) -> dict[str, tuple[int, int, int]]:
        return {c: (a.max_jobs, a.max_image_jobs, a.max_video_jobs) for c, a in list(self.state.accounts.items())}


_ACCOUNTS: weakref.WeakKeyDictionary[Any, UseapiAccounts] = weakref.WeakKeyDictionary()
_ACCOUNTS_LOCK = threading.Lock()


def useapi_accounts(emu: MidjourneyEmulator) -> UseapiAccounts:
    """The emulator's useapi.net accounts (one per emulator, shared by the v1/v2 and v3 routes)."""
    with _ACCOUNTS_LOCK:
        found = _ACCOUNTS.get(emu)
        if found is None:
            found = _ACCOUNTS[emu] = UseapiAccounts(emu)
        return found
