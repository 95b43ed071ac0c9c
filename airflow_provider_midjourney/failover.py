"""Which connection a job goes to: ``midjourney_conn_id``, then each of ``fallback_conn_ids``.

A connection is passed over only on a refusal that proves no job exists there:

- 401/403 (the token is refused; a 403 that a backend classifies as moderation is not this),
- 402 (no credits, no plan),
- a connection that failed before the request left (refused, DNS, connect timeout),
- a capability the backend lacks (decided before any HTTP call).

Never after an uncertain submit (a read timeout, a 5xx, a dropped connection after sending: the
job may exist) and never after moderation (another vendor would see the same prompt). Those end
the task as they did without fallbacks. See docs/failover.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_midjourney.exceptions import (
    AirflowSkipException,
    MidjourneyAPIError,
    MidjourneyAuthError,
    MidjourneyConnectError,
    MidjourneyError,
    MidjourneyInvalidRequestError,
    MidjourneyModeratedError,
    MidjourneySubscriptionError,
    MidjourneyUnsupportedError,
)
from airflow_provider_midjourney.metrics import emit_failover, emit_submitted

if TYPE_CHECKING:
    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook
    from airflow_provider_midjourney.job import MidjourneyJob
    from airflow_provider_midjourney.job_requests import JobOptions

__all__ = [
    "MAX_FALLBACKS",
    "ChosenJob",
    "ConnectionChain",
    "Prepared",
    "check_fallback_conn_ids",
    "connection_chain",
    "follow_job",
    "job_reference",
    "pass_over_reason",
]

#: At most this many fallbacks: each may cost a connect timeout and the hook's connect retries.
MAX_FALLBACKS = 8


def check_fallback_conn_ids(value: Any) -> list[str]:
    """``fallback_conn_ids`` as a list of connection ids; refused naming the field otherwise."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise MidjourneyInvalidRequestError(
            f"fallback_conn_ids: give a list of connection ids (tried in order), got {type(value).__name__}"
            f" {str(value)[:80]!r}"
        )
    ids = list(value)
    if len(ids) > MAX_FALLBACKS:
        raise MidjourneyInvalidRequestError(f"fallback_conn_ids: at most {MAX_FALLBACKS} connections, got {len(ids)}")
    for conn_id in ids:
        if not isinstance(conn_id, str) or not conn_id.strip() or len(conn_id) > 250:
            raise MidjourneyInvalidRequestError(
                f"fallback_conn_ids: every entry must be a non-empty connection id, got {str(conn_id)[:80]!r}"
            )
    return [conn_id.strip() for conn_id in ids]


def connection_chain(primary: str, fallbacks: Any) -> list[str]:
    """``primary`` then the fallbacks, each once, in order."""
    return list(dict.fromkeys([primary, *check_fallback_conn_ids(fallbacks)]))


def pass_over_reason(exc: BaseException) -> str | None:
    """Why ``exc`` lets the next connection be tried (``auth``, ``no_credits``, ``connect``,
    ``unsupported``), or None when it must end the task (the job may exist, or was moderated)."""
    if isinstance(exc, MidjourneyModeratedError):
        return None
    if isinstance(exc, MidjourneyUnsupportedError):
        return "unsupported"
    if isinstance(exc, MidjourneySubscriptionError):
        return "no_credits"
    if isinstance(exc, MidjourneyAuthError):
        return "auth"
    if isinstance(exc, MidjourneyAPIError) and exc.status_code in (401, 402, 403):
        return "no_credits" if exc.status_code == 402 else "auth"
    if isinstance(exc, MidjourneyConnectError):
        return "connect"
    return None


def job_reference(value: Any) -> tuple[Any, str | None]:
    """``(job id, connection id)`` of a parent job given as an upstream task's result
    (``imagine.output``: a dict with ``job_id`` and ``conn_id``), or ``(value, None)`` for a plain id."""
    if isinstance(value, Mapping):
        conn_id = value.get("conn_id")
        return value.get("job_id"), conn_id if isinstance(conn_id, str) and conn_id else None
    return value, None


def follow_job(task: Any) -> None:
    """Point ``task`` (with ``job_id``, ``midjourney_conn_id`` and a cached ``hook``) at the
    connection of its job, when ``job_id`` is an upstream result that names one; plain ids stay."""
    job_id, conn_id = job_reference(getattr(task, "job_id", None))
    if job_id is None:
        return
    task.job_id = job_id
    if conn_id is not None and conn_id != task.midjourney_conn_id:
        task.log.info("Job %s ran on connection %r: this task uses it too", job_id, conn_id)
        task.midjourney_conn_id = conn_id
        task.__dict__.pop("hook", None)  # built for the other connection


class Prepared(NamedTuple):
    """The request as one connection's backend takes it, or why that backend cannot."""

    conn_id: str
    hook: MidjourneyBackendHook
    request: JobOptions | None
    fingerprint: str = ""
    unsupported: MidjourneyUnsupportedError | None = None


class ChosenJob(NamedTuple):
    """The job a task waits for, and the connection it runs on."""

    conn_id: str
    hook: MidjourneyBackendHook
    job: MidjourneyJob
    fingerprint: str
    #: Epoch seconds of the submission, where known (for the duration metric).
    submitted_at: float | None


class ConnectionChain:
    """The operator's connections in order, each with the request as its backend takes it."""

    def __init__(self, entries: list[Prepared], log: logging.Logger) -> None:
        self.entries = entries
        self.log = log

    @classmethod
    def prepare(
        cls,
        conn_ids: list[str],
        hook_for: Callable[[str], MidjourneyBackendHook],
        prepare: Callable[[MidjourneyBackendHook], tuple[JobOptions, str]],
        log: logging.Logger,
    ) -> ConnectionChain:
        """Every request validated and checked against its backend before any HTTP call."""
        entries = []
        for conn_id in conn_ids:
            hook = hook_for(conn_id)
            try:
                entries.append(Prepared(conn_id, hook, *prepare(hook)))
            except MidjourneyUnsupportedError as exc:
                entries.append(Prepared(conn_id, hook, None, unsupported=exc))
        return cls(entries, log)

    def find(self, lookup: Callable[[str, MidjourneyBackendHook], MidjourneyJob | None]) -> ChosenJob | None:
        """The job an earlier try created on any of the connections, by its replyRef."""
        for entry in self.entries:
            if entry.request is None or not entry.request.reply_ref:
                continue
            try:
                job = lookup(entry.request.reply_ref, entry.hook)
            except MidjourneyError as exc:
                if pass_over_reason(exc) is None or len(self.entries) == 1:
                    raise
                continue  # refused before any job could exist there
            if job is not None:
                return ChosenJob(entry.conn_id, entry.hook, job, entry.fingerprint, None)
        return None

    def submit(
        self, submit: Callable[[JobOptions, MidjourneyBackendHook], MidjourneyJob], *, skip_unsupported: bool
    ) -> ChosenJob:
        """Submit on the first connection that takes the job; pass over only proven refusals."""
        refusals: list[MidjourneyError] = []
        for index, entry in enumerate(self.entries):
            try:
                if entry.request is None:
                    raise entry.unsupported or MidjourneyUnsupportedError(f"connection {entry.conn_id!r}")
                job = submit(entry.request, entry.hook)
            except MidjourneyError as exc:
                reason = pass_over_reason(exc)
                if reason is None:
                    raise
                refusals.append(exc)
                if index + 1 < len(self.entries):
                    self._pass_over(entry, exc, reason, self.entries[index + 1].conn_id)
                continue
            emit_submitted(entry.hook.backend)
            return ChosenJob(entry.conn_id, entry.hook, job, entry.fingerprint, time.time())
        raise self._none_left(refusals, skip_unsupported)

    def _pass_over(self, entry: Prepared, exc: MidjourneyError, reason: str, next_conn_id: str) -> None:
        self.log.warning(
            "Connection %r (%s) refused the job before creating it (%s: %s); trying connection %r",
            entry.conn_id,
            entry.hook.backend,
            reason,
            exc,
            next_conn_id,
        )
        emit_failover(entry.hook.backend, reason)

    def _none_left(self, refusals: list[MidjourneyError], skip_unsupported: bool) -> Exception:
        if skip_unsupported and all(isinstance(e, MidjourneyUnsupportedError) for e in refusals):
            skip: Exception = AirflowSkipException(f"Skipped (if_unsupported='skip'): {refusals[-1]}")
            return skip
        if len(refusals) > 1:
            self.log.error("Every connection refused the job (%d tried); failing with the last refusal", len(refusals))
        return refusals[-1]
