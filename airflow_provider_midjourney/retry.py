"""When the hook retries a request, and how long it waits.

The rule that matters most: a job-creating POST is re-sent only when the API cannot have created
the job — a 429 answer, or a connection that failed before the request left. After a read timeout,
a dropped connection or a 5xx answer the job may exist, so the POST is not repeated (a duplicate
job costs money and, for a moderated prompt, risks a ban).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_midjourney.exceptions import (
    MidjourneyBusyError,
    MidjourneyConnectError,
    MidjourneyServerError,
    MidjourneyTransportError,
)

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = ["NO_RETRY", "HttpRetry"]

# ``RetryPolicy`` was this class's name until Airflow 3.3 brought ``airflow.sdk.RetryPolicy`` (task retries).


@dataclass(frozen=True)
class HttpRetry:
    """Bounded retries: at most ``max_attempts`` tries and ``max_seconds`` of waiting in all.

    :param busy_wait: seconds to wait after a 429 (uniform random in the range, the docs' advice).
    :param backoff_initial: first wait after a 5xx or transport error; doubles each time with
        full jitter, capped at ``backoff_max``.
    :param retry_busy_submit: wait and re-send a job-creating request after a busy answer (429). A
        deferrable operator turns this off: it waits for room in the triggerer instead of its worker.
    """

    max_attempts: int = 6
    max_seconds: float = 300.0
    busy_wait: tuple[float, float] = (10.0, 30.0)
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    retry_busy_submit: bool = True

    def __post_init__(self) -> None:
        # Refused here, naming the field, instead of as a TypeError or a retry storm later.
        from airflow_provider_midjourney.checks import check_count, check_number
        from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError

        check_count(self.max_attempts, "retry.max_attempts", minimum=1, maximum=100)
        check_number(self.max_seconds, "retry.max_seconds", minimum=0, maximum=24 * 3600)
        check_number(self.backoff_initial, "retry.backoff_initial", minimum=0, maximum=3600)
        check_number(self.backoff_max, "retry.backoff_max", minimum=0, maximum=3600)
        if not isinstance(self.busy_wait, tuple | list) or len(self.busy_wait) != 2:
            raise MidjourneyInvalidRequestError("retry.busy_wait: must be a (low, high) pair of seconds")
        low, high = (check_number(v, "retry.busy_wait", minimum=0, maximum=3600) for v in self.busy_wait)
        if not low <= high:
            raise MidjourneyInvalidRequestError("retry.busy_wait: must be a (low, high) range with 0 <= low <= high")

    def should_retry(self, exc: BaseException, *, creates_job: bool) -> bool:
        if isinstance(exc, MidjourneyBusyError):
            return self.retry_busy_submit or not creates_job  # the API has not created anything
        if isinstance(exc, MidjourneyConnectError):
            return True  # the API has not created anything
        if creates_job:
            return False
        return isinstance(exc, MidjourneyServerError | MidjourneyTransportError)

    def wait_seconds(self, exc: BaseException | None, attempt: int) -> float:
        if isinstance(exc, MidjourneyBusyError):
            if exc.retry_after is not None:  # the API said how long (its Retry-After, bounded on reading)
                return min(exc.retry_after, self.max_seconds)
            return random.uniform(*self.busy_wait)
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1))
        return random.uniform(self.backoff_initial / 2, max(ceiling, self.backoff_initial / 2))

    def tenacity_kwargs(
        self,
        *,
        creates_job: bool,
        log: logging.Logger,
        what: str,
        retryable: Callable[[BaseException], bool] | None = None,
    ) -> dict[str, Any]:
        """Arguments for ``tenacity.Retrying``/``AsyncRetrying`` applying this policy.

        ``retryable`` replaces :meth:`should_retry` for callers with their own rule (downloads).
        """
        # Imported here: operators build policies at DAG-parse time, and tenacity is not needed then.
        from tenacity import retry_if_exception, stop_after_attempt, stop_after_delay

        if retryable is None:

            def retryable(exc: BaseException) -> bool:
                return self.should_retry(exc, creates_job=creates_job)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.wait_seconds(exc, state.attempt_number)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            sleep = state.next_action.sleep if state.next_action else 0.0
            log.warning("%s failed (%s); retry %d in %.1f s", what, exc, state.attempt_number, sleep)

        return {
            "retry": retry_if_exception(retryable),
            "wait": wait,
            "stop": stop_after_attempt(self.max_attempts) | stop_after_delay(self.max_seconds),
            "before_sleep": before_sleep,
            "reraise": True,
        }


NO_RETRY = HttpRetry(max_attempts=1)


def __getattr__(name: str) -> Any:
    if name == "RetryPolicy":
        import warnings

        warnings.warn(
            "airflow_provider_midjourney.retry.RetryPolicy is now HttpRetry (Airflow 3.3's airflow.sdk.RetryPolicy"
            " is a different thing: task retries)",
            DeprecationWarning,
            stacklevel=2,
        )
        return HttpRetry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
