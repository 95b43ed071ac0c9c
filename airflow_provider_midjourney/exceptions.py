"""The exception tree of the provider.

Everything derives from :class:`MidjourneyError`, an ``AirflowException``, so a task fails with
a readable message. HTTP answers map to one subclass per documented status code; the instance
carries ``status_code`` and the API's ``error`` text. No exception ever carries a token
(:mod:`.redaction` hides them; ``redact`` and ``register_secret`` are re-exported here).

Errors that another try cannot fix (bad input, 4xx answers other than 429, a moderated prompt)
are also ``AirflowFailException``: the task fails at once instead of burning its retries, and a
moderated prompt is never sent again. 5xx answers, transport errors and 429 stay retryable.
"""

from __future__ import annotations

from typing import Any

try:
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )
except ImportError:  # Airflow 3.0: the task runner still uses airflow.exceptions
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )

from airflow_provider_midjourney.redaction import redact, register_secret

__all__ = [
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "MidjourneyAPIError",
    "MidjourneyAccountBusyError",
    "MidjourneyAuthError",
    "MidjourneyBusyError",
    "MidjourneyChannelLockedError",
    "MidjourneyConfigurationError",
    "MidjourneyConflictError",
    "MidjourneyConnectError",
    "MidjourneyContentTypeError",
    "MidjourneyDownloadError",
    "MidjourneyError",
    "MidjourneyExpiredError",
    "MidjourneyInvalidRequestError",
    "MidjourneyJobError",
    "MidjourneyJobFailedError",
    "MidjourneyJobModeratedError",
    "MidjourneyJobTimeoutError",
    "MidjourneyLostSubmissionError",
    "MidjourneyMalformedAnswerError",
    "MidjourneyModeratedError",
    "MidjourneyNotFoundError",
    "MidjourneyPermanentError",
    "MidjourneyPollingError",
    "MidjourneyRedirectRefusedError",
    "MidjourneyServerError",
    "MidjourneySubmitUncertainError",
    "MidjourneySubscriptionError",
    "MidjourneyTransportError",
    "MidjourneyUnsupportedError",
    "MidjourneyValidationError",
    "error_for_status",
    "redact",
    "register_secret",
]


class MidjourneyError(AirflowException):
    """Base class of every error raised by this provider. Its message never carries a secret."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))


class MidjourneyInvalidRequestError(MidjourneyError, AirflowFailException, ValueError):
    """A request failed local validation; nothing was sent. The message names each bad field."""


class MidjourneyConfigurationError(MidjourneyInvalidRequestError):
    """The Airflow connection (token, host, extras) is unusable; nothing was sent."""


class MidjourneyUnsupportedError(MidjourneyInvalidRequestError):
    """The connection's backend cannot serve this request (e.g. seed on ImaginePro); nothing was sent."""


class MidjourneyAPIError(MidjourneyError):
    """The API answered with an error status."""

    def __init__(self, status_code: int, error: str, *, method: str = "", path: str = "") -> None:
        self.status_code = status_code
        self.error = redact(error)
        self.method = method
        self.path = path
        where = f" on {method} {path}" if method else ""
        super().__init__(f"Midjourney API answered {status_code}{where}: {self.error}{self.hint}")

    hint = ""


class MidjourneyPermanentError(MidjourneyAPIError, AirflowFailException):
    """An answer another try cannot change: the task fails without retrying."""


class MidjourneyValidationError(MidjourneyPermanentError):
    """400, 412 or 413: the API rejected the request's parameters."""


class MidjourneyAuthError(MidjourneyPermanentError):
    """401: the API token is missing or invalid."""

    hint = " (check the connection's API token)"


class MidjourneySubscriptionError(MidjourneyPermanentError):
    """402: the useapi.net account has no active subscription."""

    hint = " (renew the useapi.net subscription)"


class MidjourneyNotFoundError(MidjourneyPermanentError):
    """404: the job, parent job or channel does not exist."""


class MidjourneyConflictError(MidjourneyPermanentError):
    """409: e.g. the Discord account is still configured in the v2 API."""


class MidjourneyExpiredError(MidjourneyPermanentError):
    """410: the job is older than 62 days."""


class MidjourneyModeratedError(MidjourneyPermanentError):
    """422: the prompt was moderated. Never resubmit it as is: repeats get accounts banned."""


class MidjourneyRedirectRefusedError(MidjourneyPermanentError):
    """A 3xx to another origin: API requests (and their secrets) never leave the connection's origin."""


class MidjourneyBusyError(MidjourneyAPIError):
    """429: the channel is at its concurrent-job limit. Safe to retry after 10-30 s.

    ``retry_after``: the seconds the answer's ``Retry-After`` header asked for, if it had one.
    """

    retry_after: float | None = None


class MidjourneyAccountBusyError(MidjourneyError):
    """The account stayed at its concurrent-job limit for the task's whole timeout; nothing was submitted."""


class MidjourneyChannelLockedError(MidjourneyPermanentError):
    """596: the channel is locked by a moderation message or a CAPTCHA."""

    hint = (
        ". The Midjourney channel is locked by a pending moderation message or CAPTCHA: resolve it"
        " in Discord (the vendor's solver usually clears a CAPTCHA in 60-90 s), then reset the"
        " channel with POST /v3/midjourney/accounts/reset/<channel> (UseapiV3Hook.reset_account)."
        " Wait 10-15 minutes before sending more jobs."
    )


class MidjourneyServerError(MidjourneyAPIError):
    """5xx (other than 596): a server-side failure."""


class MidjourneyTransportError(MidjourneyError):
    """The request could not be completed at the HTTP level (connect failure, timeout, drop)."""


class MidjourneyConnectError(MidjourneyTransportError):
    """The connection failed before the request was sent: always safe to retry."""


class MidjourneyMalformedAnswerError(MidjourneyTransportError):
    """A 2xx answer that is not what the API documents (an HTML page, JSON missing fields).

    Transient while polling (a proxy's error page, a half-deployed API): the next poll may be fine.
    """


class MidjourneySubmitUncertainError(MidjourneyTransportError):
    """A job-creating POST may have reached the API, but no answer came back.

    The job may exist, so the request is not sent again (that could create a duplicate job).
    ``reply_ref`` is the request's ``replyRef``, which lets a caller look the job up.
    """

    def __init__(self, message: str, *, path: str, reply_ref: str | None) -> None:
        self.path = path
        self.reply_ref = reply_ref
        super().__init__(message)


class MidjourneyLostSubmissionError(MidjourneySubmitUncertainError, AirflowFailException):
    """A job-creating request got no usable answer and the job could not be found running.

    It may exist (finished or moderated within seconds), so no retry submits it again: another
    job could be a duplicate, or a moderated prompt sent twice. Check the API's job list, then
    clear the task to submit anew.
    """


class MidjourneyPollingError(MidjourneyError, AirflowFailException):
    """Polling got an answer another try cannot change (402 no subscription, 410 expired, 401...)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


class MidjourneyJobError(MidjourneyError):
    """A job ended without a result. Carries the API's ``error``, ``errorDetails`` and ``code``."""

    def __init__(
        self,
        message: str,
        *,
        job_id: str,
        error: str | None = None,
        error_details: str | None = None,
        code: int | None = None,
    ) -> None:
        self.job_id = job_id
        self.error = redact(error) if error else error
        self.error_details = redact(error_details) if error_details else error_details
        self.code = code
        super().__init__(message)


class MidjourneyJobFailedError(MidjourneyJobError):
    """The job's status became ``failed`` (including a job cancelled by user)."""


class MidjourneyJobModeratedError(MidjourneyJobError, AirflowFailException):
    """The job was moderated. Not retried: resubmitting a moderated prompt risks an account ban."""


class MidjourneyJobTimeoutError(MidjourneyJobError):
    """The job did not finish before the task's timeout; it was cancelled."""


class MidjourneyDownloadError(MidjourneyError):
    """One or more result files could not be stored. Files already stored stay; a rerun skips them."""


class MidjourneyContentTypeError(MidjourneyDownloadError):
    """A URL answered with something other than an image or a video (an HTML error page...)."""

    def __init__(self, message: str, *, content_type: str) -> None:
        self.content_type = content_type
        super().__init__(message)


_BY_STATUS: dict[int, type[MidjourneyAPIError]] = {
    400: MidjourneyValidationError,
    401: MidjourneyAuthError,
    402: MidjourneySubscriptionError,
    404: MidjourneyNotFoundError,
    409: MidjourneyConflictError,
    410: MidjourneyExpiredError,
    412: MidjourneyValidationError,
    413: MidjourneyValidationError,
    422: MidjourneyModeratedError,
    429: MidjourneyBusyError,
    596: MidjourneyChannelLockedError,
}


def error_for_status(status_code: int, error: str, *, method: str = "", path: str = "") -> MidjourneyAPIError:
    """Build the exception that matches an HTTP error status."""
    if status_code in _BY_STATUS:
        cls = _BY_STATUS[status_code]
    elif status_code >= 500:
        cls = MidjourneyServerError
    else:
        cls = MidjourneyAPIError
    return cls(status_code, error, method=method, path=path)
