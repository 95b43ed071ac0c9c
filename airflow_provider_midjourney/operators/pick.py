"""A human picks which pictures of an imagine job to upscale (Airflow >= 3.1 human-in-the-loop).

Midjourney's own workflow is a choice: of the four pictures of a grid, which deserve an upscale.
:class:`MidjourneyPickOperator` asks that question in Airflow's "Required actions" page, with the
four pictures and the prompt, and returns the chosen buttons as a plain list (``["U1", "U3"]``),
so the next task maps over it with no glue::

    pick = MidjourneyPickOperator(task_id="pick", job=imagine.output)
    MidjourneyButtonOperator.partial(task_id="upscale", job_id=imagine.output["job_id"]).expand(
        button=pick.output
    )
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError
from airflow_provider_midjourney.links import GALLERY_PREFIX, gallery_ui_url, ui_base_url
from airflow_provider_midjourney.plugins.results import PICK_XCOM_KEY, job_pictures

try:  # Airflow >= 3.1 (the standard provider refuses to import it on 3.0)
    from airflow.providers.standard.operators.hitl import HITLOperator as _PickBase

    HITL_UNAVAILABLE: str | None = None
except Exception as _exc:  # AirflowOptionalProviderFeatureException on 3.0, ImportError without the provider
    from airflow.sdk import BaseOperator as _PickBase

    HITL_UNAVAILABLE = f"{type(_exc).__name__}: {_exc}"

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["UPSCALE_BUTTONS", "MidjourneyPickOperator"]

UPSCALE_BUTTONS: tuple[str, ...] = ("U1", "U2", "U3", "U4")
PICKED_XCOM_KEY = "midjourney_pick"  # the job the question showed and the buttons chosen for it
DEFAULT_SUBJECT = "Which pictures should be upscaled?"


def _airflow_version() -> str:
    from airflow import __version__

    return str(__version__)


def _checked_options(options: Any) -> list[str]:
    if isinstance(options, str) or not isinstance(options, Sequence) or not options:
        raise MidjourneyInvalidRequestError(
            f"options: give a non-empty list of buttons from {', '.join(UPSCALE_BUTTONS)}, got {options!r}"
        )
    unknown = [o for o in options if o not in UPSCALE_BUTTONS]
    if unknown:
        raise MidjourneyInvalidRequestError(
            f"options: {unknown!r} are not upscale buttons; allowed: {', '.join(UPSCALE_BUTTONS)}"
        )
    if len(set(options)) != len(options):
        raise MidjourneyInvalidRequestError(f"options: each button may appear once, got {list(options)!r}")
    return list(options)


def _checked_defaults(defaults: Any, options: list[str], multiple: bool) -> list[str] | None:
    if defaults is None:
        return None
    chosen = [defaults] if isinstance(defaults, str) else defaults
    if not isinstance(chosen, Sequence) or not chosen or not all(isinstance(d, str) for d in chosen):
        raise MidjourneyInvalidRequestError(f"defaults: give a button or a list of buttons, got {defaults!r}")
    if missing := [d for d in chosen if d not in options]:
        raise MidjourneyInvalidRequestError(f"defaults: {missing!r} are not among options {options!r}")
    if not multiple and len(chosen) > 1:
        raise MidjourneyInvalidRequestError("defaults: only one button when multiple=False")
    return list(chosen)


class MidjourneyPickOperator(_PickBase):  # type: ignore[misc,valid-type]
    """Show an imagine job's pictures and prompt to a human; return the buttons they chose.

    Built on Airflow's ``HITLOperator`` (Airflow >= 3.1, ``apache-airflow-providers-standard``):
    the task waits (no worker slot held) until someone answers in the UI or through the REST API
    (``PATCH .../taskInstances/{task_id}/{map_index}/hitlDetails``), or until ``response_timeout``,
    when ``defaults`` are taken (no defaults: the task fails with a timeout).

    The job is kept in this task's XCom (``midjourney_job``), so the gallery shows the pictures on
    the pick's own page and the question embeds them from there (never from a CDN link that needs
    browser headers or has expired).

    :param job: the imagine task's result (``imagine.output``). Templated.
    :param options: the buttons offered, a subset of U1-U4 (default: all four).
    :param multiple: allow choosing several (default True); False: exactly one.
    :param defaults: button(s) taken when ``response_timeout`` passes without an answer.
    :param response_timeout: how long to wait for the human (timedelta or seconds).
    :param subject: the question's headline. Templated.
    :param body: Markdown under it; default: the prompt, the job id and the four pictures. Templated.
    :return: the chosen buttons in U1-U4 order, e.g. ``["U1", "U3"]``.
    """

    template_fields: Sequence[str] = ("job", "subject", "body")
    ui_color = "#fbe7c6"

    def __init__(
        self,
        *,
        job: Any,
        options: Sequence[str] = UPSCALE_BUTTONS,
        multiple: bool = True,
        defaults: str | Sequence[str] | None = None,
        response_timeout: timedelta | float | None = None,
        subject: str = DEFAULT_SUBJECT,
        body: str | None = None,
        **kwargs: Any,
    ) -> None:
        if HITL_UNAVAILABLE is not None:
            raise RuntimeError(
                f"MidjourneyPickOperator needs Airflow 3.1 or newer (human-in-the-loop operators of"
                f" apache-airflow-providers-standard); this is Airflow {_airflow_version()}"
                f" ({HITL_UNAVAILABLE}). Upgrade Airflow, or choose the buttons in the DAG instead."
            )
        checked = _checked_options(options)
        chosen_defaults = _checked_defaults(defaults, checked, multiple)
        if isinstance(response_timeout, (int, float)) and not isinstance(response_timeout, bool):
            if response_timeout <= 0:
                raise MidjourneyInvalidRequestError(f"response_timeout: must be positive, got {response_timeout}")
            response_timeout = timedelta(seconds=response_timeout)
        super().__init__(
            subject=subject,
            options=checked,
            body=body,
            defaults=chosen_defaults,
            multiple=multiple,
            response_timeout=response_timeout,
            **kwargs,
        )
        self.job = job

    def _checked_job(self) -> dict[str, Any]:
        job = self.job
        if not isinstance(job, dict) or not isinstance(job.get("job_id"), str):
            raise MidjourneyInvalidRequestError(
                f"job: expected an imagine task's result (imagine.output), got {type(job).__name__}"
            )
        if job.get("status") != "completed":
            raise MidjourneyInvalidRequestError(f"job: {job['job_id']} is {job.get('status')!r}, not completed")
        buttons = [b for b in job.get("buttons") or [] if isinstance(b, str)]
        if buttons and (missing := [o for o in self.options if o not in buttons]):
            raise MidjourneyInvalidRequestError(
                f"options: job {job['job_id']} has no {', '.join(missing)} button (it has {', '.join(buttons)})"
            )
        return job

    def execute(self, context: Context) -> Any:
        job = self._checked_job()
        ti = context["ti"]
        ti.xcom_push(key=PICK_XCOM_KEY, value=job)
        if not getattr(self, "body", None):
            self.body: str | None = self.question_body(
                job, ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1)
            )
        return super().execute(context)

    def question_body(self, job: dict[str, Any], dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
        """Markdown: the prompt, the job id, the pictures (served by the gallery) and a link to it."""
        base = ui_base_url()
        pictures = job_pictures(job)
        lines = []
        if job.get("prompt"):
            lines.append(f"**Prompt:** {_markdown_text(str(job['prompt']))}")
        lines.append(f"**Job:** {_markdown_text(str(job['job_id']))}")
        shown = [(n, p) for n, p in enumerate(pictures) if p.label in self.options] or [
            (n, p) for n, p in enumerate(pictures) if p.kind == "grid"
        ]
        picture_root = (
            f"{base}/{GALLERY_PREFIX}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
            f"/tasks/{quote(task_id, safe='')}/pictures"
        )
        for number, picture in shown:
            lines.append(f"![{picture.label}]({picture_root}/{number}?map_index={map_index}) {picture.label}")
        lines.append(f"[Open the pictures in the Midjourney tab]({gallery_ui_url(dag_id, run_id, task_id, map_index)})")
        return "\n\n".join(lines)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[str]:
        """The chosen buttons, each one offered for the job the question showed; anything else fails.

        The answer comes through Airflow's REST API: only buttons of the shown job count, never a
        URL, another job's picture or a button the question did not offer."""
        payload = super().execute_complete(context, event)
        chosen = payload.get("chosen_options") if isinstance(payload, dict) else None
        if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
            raise MidjourneyInvalidRequestError("chosen_options: the answer is not a list of buttons")
        job = self._checked_job()
        if foreign := [c for c in chosen if c not in self.options]:
            raise MidjourneyInvalidRequestError(
                f"chosen_options: {_shown_values(foreign)} were not offered for job {job['job_id'][:80]!r};"
                f" allowed: {', '.join(self.options)}"
            )
        picked = [button for button in self.options if button in chosen]
        context["ti"].xcom_push(key=PICKED_XCOM_KEY, value={"job_id": job["job_id"], "buttons": picked})
        self.log.info("Chosen for job %s: %s", job["job_id"][:80], ", ".join(picked) or "nothing")
        return picked


def _markdown_text(text: str) -> str:
    """Vendor text shown literally, on one line: every ASCII punctuation character escaped (so no
    link, image, HTML, code span or bare-URL autolink can form), control characters as spaces."""
    return "".join(
        f"\\{c}" if c in string.punctuation else (" " if c.isspace() or not c.isprintable() else c) for c in text
    )


def _shown_values(values: list[str]) -> str:
    return ", ".join(repr(v[:40]) for v in values[:5])
