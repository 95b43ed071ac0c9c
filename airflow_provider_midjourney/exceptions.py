"""The exception tree of the provider.

Everything derives from :class:`MidjourneyError`, an ``AirflowException``, so a task fails with
a readable message. HTTP answers map to one subclass per documented status code; the instance
carries ``status_code`` and the API's ``error`` text. No exception ever carries a token.
"""

from __future__ import annotations

from airflow.exceptions import AirflowException

__all__ = [
    "MidjourneyAPIError",
    "MidjourneyAuthError",
    "MidjourneyBusyError",
    "MidjourneyChannelLockedError",
    "MidjourneyConflictError",
    "MidjourneyConnectError",
    "MidjourneyError",
    "MidjourneyExpiredError",
    "MidjourneyInvalidRequestError",
    "MidjourneyModeratedError",
    "MidjourneyNotFoundError",
    "MidjourneyServerError",
    "MidjourneySubmitUncertainError",
    "MidjourneySubscriptionError",
    "MidjourneyTransportError",
    "MidjourneyValidationError",
    "error_for_status",
]


class MidjourneyError(AirflowException):
    """Base class of every error raised by this provider."""


class MidjourneyInvalidRequestError(MidjourneyError, ValueError):
    """A request failed local validation; nothing was sent. The message names each bad field."""


class MidjourneyAPIError(MidjourneyError):
    """The API answered with an error status."""

    def __init__(self, status_code: int, error: str, *, method: str = "", path: str = "") -> None:
        self.status_code = status_code
        self.error = error
        self.method = method
        self.path = path
        where = f" on {method} {path}" if method else ""
        super().__init__(f"Midjourney API answered {status_code}{where}: {error}{self.hint}")

    hint = ""


class MidjourneyValidationError(MidjourneyAPIError):
    """400, 412 or 413: the API rejected the request's parameters."""


class MidjourneyAuthError(MidjourneyAPIError):
    """401: the API token is missing or invalid."""

    hint = " (check the connection's API token)"


class MidjourneySubscriptionError(MidjourneyAPIError):
    """402: the useapi.net account has no active subscription."""

    hint = " (renew the useapi.net subscription)"


class MidjourneyNotFoundError(MidjourneyAPIError):
    """404: the job, parent job or channel does not exist."""


class MidjourneyConflictError(MidjourneyAPIError):
    """409: e.g. the Discord account is still configured in the v2 API."""


class MidjourneyExpiredError(MidjourneyAPIError):
    """410: the job is older than 62 days."""


class MidjourneyModeratedError(MidjourneyAPIError):
    """422: the prompt was moderated. Never resubmit it as is: repeats get accounts banned."""


class MidjourneyBusyError(MidjourneyAPIError):
    """429: the channel is at its concurrent-job limit. Safe to retry after 10-30 s."""


class MidjourneyChannelLockedError(MidjourneyAPIError):
    """596: the channel is locked by a moderation message or a CAPTCHA."""

    hint = (
        ". The Midjourney channel is locked by a pending moderation message or CAPTCHA: resolve it"
        " in Discord (the vendor's solver usually clears a CAPTCHA in 60-90 s), then reset the"
        " channel with POST /v3/midjourney/accounts/reset/<channel> (MidjourneyHook.reset_account)."
        " Wait 10-15 minutes before sending more jobs."
    )


class MidjourneyServerError(MidjourneyAPIError):
    """5xx (other than 596): a server-side failure."""


class MidjourneyTransportError(MidjourneyError):
    """The request could not be completed at the HTTP level (connect failure, timeout, drop)."""


class MidjourneyConnectError(MidjourneyTransportError):
    """The connection failed before the request was sent: always safe to retry."""


class MidjourneySubmitUncertainError(MidjourneyTransportError):
    """A job-creating POST may have reached the API, but no answer came back.

    The job may exist, so the request is not sent again (that could create a duplicate job).
    ``reply_ref`` is the request's ``replyRef``, which lets a caller look the job up.
    """

    def __init__(self, message: str, *, path: str, reply_ref: str | None) -> None:
        self.path = path
        self.reply_ref = reply_ref
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
