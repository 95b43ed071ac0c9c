"""The one job shape every backend's answers are normalised into.

Operators, the trigger, the sensor and the download operator only ever see a
:class:`MidjourneyJob`; each backend's hook turns its own wire format into one. The XCom result
table (README, "Results") is :meth:`MidjourneyJob.to_xcom`, the same on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_midjourney.input_checks import SAFE_ID_PATTERN
from airflow_provider_midjourney.redaction import redact, redact_value
from airflow_provider_midjourney.vocabulary import SETTINGS_COMMANDS, TERMINAL_STATUSES, JobStatus

#: The longest text a job keeps (a prompt, an error): Midjourney's own limits are far lower.
MAX_TEXT = 16_384
#: Links a job keeps: only these schemes (a vendor's ``javascript:``, ``data:`` or ``file:`` is dropped).
LINK_SCHEMES = ("https://", "http://")

__all__ = ["JobStatus", "MidjourneyJob"]


@dataclass(frozen=True)
class MidjourneyJob:
    """A job, whichever API runs it.

    :param job_id: the backend's own id (a v3 ``jobid``, an ImaginePro ``messageId``, a
        midjourney-proxy task id...): what the backend's ``fetch_job`` takes.
    :param backend: the backend's name (``useapi_v3``, ``imaginepro``, ``useapi_v2``,
        ``midjourney_proxy``); also the ``backend`` key of the XCom result.
    :param status: normalised: ``created``/``started``/``progress`` while running, then
        ``completed``, ``failed`` or ``moderated``. A status the backend does not document stays
        as it came and is never terminal.
    :param verb: what the job did: ``imagine``, ``button``, ``blend``, ``describe``, ``seed`` or
        one of the settings family.
    :param image_urls: the separate pictures (four for a grid job) where the API gives them,
        else empty (see ``grid_url``).
    :param image_kind: what ``image_urls`` are: ``upscales`` (each an upscale job's own picture),
        ``crops`` (the vendor's separate pictures of a grid, not upscaled) or ``cuts`` (our own cut of
        the grid); None where the backend does not say.
    :param reply_ref: the reference our task sent with the job (finds it again after a lost answer).
    :param cost: what the vendor's job answer reports of its cost or of what is left (built with
        :func:`~airflow_provider_midjourney.cost.cost_entry`); None when it reports nothing.
    :param expired: the vendor has purged the job's files (Apiframe after 24 h): its URLs are dead.
    """

    job_id: str
    backend: str
    status: JobStatus
    verb: str
    prompt: str | None = None
    image_urls: list[str] = field(default_factory=list)
    video_urls: list[str] = field(default_factory=list)
    grid_url: str | None = None
    image_kind: str | None = None
    buttons: list[str] = field(default_factory=list)
    children: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    prompts: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    progress_percent: int | None = None
    error: str | None = None
    error_details: str | None = None
    code: int | None = None
    reply_ref: str | None = None
    #: What the job answer says it cost or what is left (:mod:`airflow_provider_midjourney.cost`).
    cost: dict[str, float | int] | None = None
    expired: bool = False

    def __post_init__(self) -> None:
        """Every backend's answer passes here: the one place untrusted values are made safe to show.

        The id must be safe in a URL path; links are kept only where http(s); every text is cut to
        :data:`MAX_TEXT` and has any registered secret (a token the API echoed) redacted.
        """
        from airflow_provider_midjourney.exceptions import MidjourneyMalformedAnswerError

        if not isinstance(self.job_id, str) or not SAFE_ID_PATTERN.fullmatch(self.job_id):
            shown = repr(self.job_id)[:80] if isinstance(self.job_id, str) else type(self.job_id).__name__
            raise MidjourneyMalformedAnswerError(
                f"The {self.backend} API named a job {redact(shown)}: not a job id (letters, digits and . _ : -)"
            )
        clean = {
            "prompt": _text(self.prompt),
            "error": _text(self.error),
            "error_details": _text(self.error_details),
            "reply_ref": _text(self.reply_ref),
            "image_urls": _links(self.image_urls),
            "video_urls": _links(self.video_urls),
            "grid_url": next(iter(_links([self.grid_url])), None),
            "buttons": [t for t in (_text(b) for b in self.buttons) if t is not None],
            "prompts": [t for t in (_text(p) for p in self.prompts) if t is not None],
            "children": _clean_value(self.children),
            "settings": _clean_value(self.settings),
        }
        for name, value in clean.items():
            object.__setattr__(self, name, value)

    @property
    def is_terminal(self) -> bool:
        """True once completed, failed or moderated; unknown statuses are not terminal."""
        return self.status in TERMINAL_STATUSES

    def to_xcom(self) -> dict[str, Any]:
        """The task's result: small JSON values only, never a raw vendor message."""
        result: dict[str, Any] = {
            "job_id": self.job_id,
            "status": str(self.status),
            "verb": self.verb,
            "prompt": self.prompt,
            "image_urls": list(self.image_urls),
            "video_urls": list(self.video_urls),
            "grid_url": self.grid_url,
            "image_kind": self.image_kind,
            "buttons": list(self.buttons),
            "children": dict(self.children),
            "backend": self.backend,
        }
        if self.cost:
            result["cost"] = dict(self.cost)
        if self.verb == "seed":
            result["seed"] = self.seed
        elif self.verb == "describe":
            result["prompts"] = list(self.prompts)
        elif self.verb in SETTINGS_COMMANDS:
            result["settings"] = dict(self.settings)
        return result

    def to_event(self) -> dict[str, Any]:
        """The trigger event for a terminal job (``completed``, ``failed`` or ``moderated``)."""
        if self.status == JobStatus.COMPLETED:
            return {"status": "completed", "job_id": self.job_id, "result": self.to_xcom()}
        return {
            "status": str(self.status),
            "job_id": self.job_id,
            "error": self.error,
            "error_details": self.error_details,
            "code": self.code,
            "message": self.outcome_message,
        }

    @property
    def outcome_message(self) -> str:
        """Why a job failed or was moderated, in one line (the API's own words where given)."""
        details = [d for d in (self.error, self.error_details) if d]
        text = "; ".join(dict.fromkeys(details)) or "no details given"
        return f"Midjourney job {self.job_id} {self.status}: {text}"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return redact(str(value)[:MAX_TEXT])


def _links(urls: Any) -> list[str]:
    links = []
    for url in urls or []:
        if isinstance(url, str) and url.strip().lower().startswith(LINK_SCHEMES) and len(url) <= MAX_TEXT:
            links.append(redact(url.strip()))
    return links


def _clean_value(value: Any) -> Any:
    """Texts cut and redacted, and dropped where they are a script, data or file link."""
    if isinstance(value, str):
        scheme = value.strip().split(":", 1)[0].lower() if ":" in value[:16] else ""
        return None if scheme in _UNSAFE_SCHEMES else _text(value)
    if isinstance(value, dict):
        return {str(k)[:200]: _clean_value(v) for k, v in list(value.items())[:200]}
    if isinstance(value, list | tuple):
        return [_clean_value(v) for v in list(value)[:200]]
    return redact_value(value)


_UNSAFE_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "blob", "filesystem"})
