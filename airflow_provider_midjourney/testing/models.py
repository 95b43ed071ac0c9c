"""Plain data types and fault-injection knobs of the emulator (no FastAPI import here)."""

from __future__ import annotations

import hashlib
import random
import threading
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MODERATION_WORDS = frozenset({"forbidden"})
DEFAULT_FAILURE_WORDS = frozenset({"explode"})
DEFAULT_NEVER_FINISH_WORDS = frozenset({"neverending"})
MALFORMED_KINDS = ("html", "missing_fields", "not_object", "empty", "truncated")


@dataclass
class JobTimings:
    """How a job advances, in seconds after its creation (applies to jobs created afterwards).

    ``complete_after`` may be a ``(low, high)`` tuple: each job then draws its own duration
    uniformly from the emulator's seeded RNG. ``progress_percent`` walks through
    ``progress_steps`` evenly between ``progress_after`` and ``complete_after``.
    ``stuck_timeout`` only matters with ``MidjourneyEmulator.stuck_on_disconnect``.
    """

    start_after: float = 0.05
    progress_after: float = 0.1
    complete_after: float | tuple[float, float] = 0.5
    progress_steps: tuple[int, ...] = (0, 15, 38, 62, 96)
    stuck_timeout: float = 840.0


@dataclass
class RecordedRequest:
    """One request as the emulator saw it.

    ``status`` is the status the emulator produced (0 while still being handled or when
    dropped before handling); ``dropped`` tells that the client got no HTTP answer at all.
    ``time`` is ``time.monotonic()`` at arrival. Tokens are never stored: the Authorization
    header only shows up as ``authorized`` and a Discord token as its redacted form.
    """

    method: str
    path: str
    query: dict[str, str]
    status: int
    json: dict[str, Any] | None
    form_fields: dict[str, str | int]
    user_agent: str | None
    authorized: bool
    time: float
    dropped: bool = False


@dataclass
class FaultRule:
    remaining: int
    path_prefix: str
    method: str | None
    status: int = 500
    after_handling: bool = False
    error: str | None = None
    malformed: str | None = None  # see EmulatorKnobs.malformed_next
    delay: float = 0.0  # see EmulatorKnobs.slow_next

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0 or not path.startswith(self.path_prefix):
            return False
        return self.method is None or self.method.upper() == method.upper()


class EmulatorKnobs:
    """Runtime switches shared by the HTTP app and the test code (all thread-safe enough)."""

    def __init__(self, timings: JobTimings | None = None, seed: int = 0) -> None:
        self._initial_timings = timings or JobTimings()
        self._knob_lock = threading.Lock()
        self._fault_rng = random.Random(seed ^ 0x5EED)
        self.timings = JobTimings(**vars(self._initial_timings))
        self.moderation_words: set[str] = set(DEFAULT_MODERATION_WORDS)
        self.failure_words: set[str] = set(DEFAULT_FAILURE_WORDS)
        self.never_finish_words: set[str] = set(DEFAULT_NEVER_FINISH_WORDS)
        self.never_finish = False
        self.subscription_expired = False
        self.latency = 0.0
        self.latency_jitter = 0.0  # each API answer waits latency +/- up to this (uniform)
        self._latency_rng = random.Random(seed ^ 0x1A7E)
        self.failure_rate = 0.0
        self.stuck_on_disconnect = False
        self._fail_rules: list[FaultRule] = []
        self._drop_rules: list[FaultRule] = []
        self._slow_rules: list[FaultRule] = []
        self._cdn_forbid = 0
        self.cdn_latency: float | tuple[float, float] = 0.0
        self._cdn_truncate = 0

    def reset_knobs(self) -> None:
        """Restore every knob to its default and forget pending fault rules."""
        with self._knob_lock:
            self.timings = JobTimings(**vars(self._initial_timings))
            self.moderation_words = set(DEFAULT_MODERATION_WORDS)
            self.failure_words = set(DEFAULT_FAILURE_WORDS)
            self.never_finish_words = set(DEFAULT_NEVER_FINISH_WORDS)
            self.never_finish = False
            self.subscription_expired = False
            self.latency = 0.0
            self.latency_jitter = 0.0
            self.failure_rate = 0.0
            self.stuck_on_disconnect = False
            self._fail_rules.clear()
            self._drop_rules.clear()
            self._slow_rules.clear()
            self._cdn_forbid = 0
            self.cdn_latency = 0.0
            self._cdn_truncate = 0

    def fail_next(
        self,
        n: int,
        status: int = 500,
        path_prefix: str = "/",
        method: str | None = None,
        error: str | None = None,
        after_handling: bool = False,
    ) -> None:
        """The next ``n`` matching requests answer ``status`` with ``{"error": ...}``.

        ``after_handling=True`` processes the request fully first (a POST creates its job) and
        only then answers the error: a gateway's 502 after the API did the work.
        """
        with self._knob_lock:
            rule = FaultRule(n, path_prefix, method, status, after_handling=after_handling, error=error)
            self._fail_rules.append(rule)

    def malformed_next(
        self,
        n: int,
        path_prefix: str = "/v3/midjourney/jobs/",
        method: str | None = "GET",
        kind: str = "html",
    ) -> None:
        """The next ``n`` matching requests are handled, then answered 200 with a broken body.

        ``kind``: ``html`` (a proxy's error page), ``missing_fields`` (the JSON without the
        dialect's key fields: useapi.net's ``status``/``verb``/``jobid``), ``not_object`` (a JSON
        list), ``empty`` (no body) or ``truncated`` (the first half of the JSON). The default
        ``path_prefix`` is v3's job route, as it always was.
        """
        if kind not in MALFORMED_KINDS:
            raise ValueError(f"kind must be one of {', '.join(MALFORMED_KINDS)}, got {kind!r}")
        with self._knob_lock:
            self._fail_rules.append(FaultRule(n, path_prefix, method, 200, after_handling=True, malformed=kind))

    def drop_next(
        self,
        n: int,
        path_prefix: str = "/",
        method: str | None = None,
        after_handling: bool = False,
    ) -> None:
        """The next ``n`` matching requests get their TCP connection closed, no HTTP answer.

        ``after_handling=True`` processes the request fully (a job gets created) first.
        """
        with self._knob_lock:
            self._drop_rules.append(FaultRule(n, path_prefix, method, after_handling=after_handling))

    def slow_next(self, n: int, seconds: float, path_prefix: str = "/", method: str | None = None) -> None:
        """The next ``n`` matching requests wait ``seconds`` before being handled (a hung API:
        e.g. a DELETE that never answers while a task cancels its job on timeout)."""
        with self._knob_lock:
            self._slow_rules.append(FaultRule(n, path_prefix, method, delay=float(seconds)))

    def take_slow(self, method: str, path: str) -> FaultRule | None:
        return self._take(self._slow_rules, method, path)

    def cdn_forbid_next(self, n: int) -> None:
        """The next ``n`` requests to the CDN route answer 403, even with a browser UA."""
        with self._knob_lock:
            self._cdn_forbid += n

    def cdn_truncate_next(self, n: int) -> None:
        """The next ``n`` successful CDN answers send their headers and half the body, then close.

        The client sees a connection lost in the middle of the body (a download cut short).
        """
        with self._knob_lock:
            self._cdn_truncate += n

    # -- consumed by the middleware -------------------------------------------------------
    def api_delay(self) -> float:
        """Seconds to wait before answering an API request: ``latency`` +/- ``latency_jitter``.

        Real APIs do not answer in constant time; jitter spreads the answers of requests sent
        together, as a real server's would be (benchmarks use 0.25 s +/- 0.1 s).
        """
        if self.latency_jitter <= 0:
            return self.latency
        with self._knob_lock:
            offset = self._latency_rng.uniform(-self.latency_jitter, self.latency_jitter)
        return max(0.0, self.latency + offset)

    def cdn_delay(self, path: str) -> float:
        """Seconds to wait before answering a CDN request for ``path`` (``cdn_latency``).

        A float applies to every CDN request; a ``(low, high)`` range gives each asset path its
        own fixed delay in that range (from a hash of the path), so one image always takes the
        same time and the images of a grid differ.
        """
        latency = self.cdn_latency
        if isinstance(latency, tuple):
            low, high = latency
            fraction = int.from_bytes(hashlib.sha256(path.encode()).digest()[:4], "big") / 2**32
            return low + (high - low) * fraction
        return float(latency)

    def take_cdn_truncate(self) -> bool:
        with self._knob_lock:
            if self._cdn_truncate > 0:
                self._cdn_truncate -= 1
                return True
            return False

    def take_drop(self, method: str, path: str) -> FaultRule | None:
        return self._take(self._drop_rules, method, path)

    def take_fail(self, method: str, path: str) -> FaultRule | None:
        return self._take(self._fail_rules, method, path)

    def take_cdn_forbid(self) -> bool:
        with self._knob_lock:
            if self._cdn_forbid > 0:
                self._cdn_forbid -= 1
                return True
            return False

    def roll_failure(self) -> bool:
        with self._knob_lock:
            return self.failure_rate > 0 and self._fault_rng.random() < self.failure_rate

    def _take(self, rules: list[FaultRule], method: str, path: str) -> FaultRule | None:
        with self._knob_lock:
            for rule in rules:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    return rule
            return None


@dataclass
class BlobField:
    """An uploaded file (or an oversized plain form field) of a multipart request."""

    size: int
    filename: str | None = None
    content_type: str | None = None


@dataclass
class ParsedBody:
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    form: bool = False
    empty: bool = True
