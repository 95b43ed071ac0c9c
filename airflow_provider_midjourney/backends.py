"""Every backend, listed once: its name, connection type, hook class, connection form, emulator dialect, docs.

Provider metadata (:mod:`~airflow_provider_midjourney.get_provider_info`), the choice of hook by
connection type (:func:`hook_class_for`), the demo, the emulator and the contract tests all read
:data:`BACKENDS`. Adding a backend is its wing (``hooks/<name>.py``, ``hooks/<name>_models.py``,
``testing/<name>.py``, fixtures, tests, ``docs/backends/<name>.md``) plus one :class:`Backend` entry
here (docs/adding-a-backend.md).

Kept free of heavy imports (no httpx, pydantic or Airflow): Airflow reads the provider metadata
in every process that lists providers; hook classes are imported only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook

PACKAGE = "airflow_provider_midjourney"


def _number(label: str, description: str, default: float) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["number", "null"], "default": default}}


def _text(label: str, description: str) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"]}}


def _integer(label: str, description: str, minimum: int, maximum: int) -> dict[str, Any]:
    schema = {"type": ["integer", "null"], "minimum": minimum, "maximum": maximum}
    return {"label": label, "description": description, "schema": schema}


TIMEOUT_FIELD = _number("Request timeout (s)", "Seconds per HTTP request.", 30)
_HIDDEN = ["schema", "login", "port", "extra"]


@dataclass(frozen=True)
class Backend:
    """One backend (a "wing"): the names every part of the provider knows it by.

    :param name: the wing's name: its modules are ``hooks/<name>.py``, ``hooks/<name>_models.py``,
        ``testing/<name>.py``; also :attr:`MidjourneyJob.backend` and ``MIDJOURNEY_BACKEND`` of the demo.
    :param conn_type: the Airflow connection type (never changes once released: stored connections
        carry it).
    :param hook_class: dotted path of its :class:`~airflow_provider_midjourney.hooks.base.MidjourneyBackendHook`.
    :param display_name: the connection type's name in Airflow's UI.
    :param conn_fields: the connection form's extras (Airflow 3.2+ reads them from the provider
        info, 3.0/3.1 through the hook's ``get_connection_form_widgets``).
    :param relabeling: / :param placeholders: the form's standard fields, renamed and explained.
    :param emulator_extra: the connection extras that point the hook at the package's emulator
        (the demo and the contract tests use them).
    :param emulator_path: where the emulator serves the backend below its base URL, when its paths
        would collide with another backend's (Apiframe's ``/v2/jobs`` with useapi.net v2's): the
        connection's host is then ``<emulator base URL><emulator_path>``.
    """

    name: str
    conn_type: str
    hook_class: str
    display_name: str
    conn_fields: dict[str, Any]
    relabeling: dict[str, str]
    placeholders: dict[str, str]
    emulator_extra: dict[str, Any] = field(default_factory=dict)
    #: The standard fields the form hides (a backend that needs ``login`` shows it).
    hidden_fields: tuple[str, ...] = tuple(_HIDDEN)
    emulator_path: str = ""

    @property
    def emulator_dialect(self) -> str:
        """The module of its routes in the emulator (``register(app, emulator)``)."""
        return f"{PACKAGE}.testing.{self.name}"

    @property
    def docs_page(self) -> str:
        return f"docs/backends/{self.name}.md"

    @property
    def ui_field_behaviour(self) -> dict[str, Any]:
        """The provider-info form (``hidden-fields``, ``relabeling``, ``placeholders``)."""
        return {
            "hidden-fields": list(self.hidden_fields),
            "relabeling": self.relabeling,
            "placeholders": self.placeholders,
        }

    def load_hook_class(self) -> type[MidjourneyBackendHook]:
        from importlib import import_module

        module, _, name = self.hook_class.rpartition(".")
        cls: type[MidjourneyBackendHook] = getattr(import_module(module), name)
        return cls


BACKENDS: tuple[Backend, ...] = (
    Backend(
        name="useapi_v3",
        conn_type="midjourney",
        hook_class=f"{PACKAGE}.hooks.useapi_v3.UseapiV3Hook",
        display_name="Midjourney (useapi.net v3)",
        conn_fields={
            "channel": _text(
                "Default channel", "Discord channel id for jobs that name none; empty lets the API balance load."
            ),
            "timeout": TIMEOUT_FIELD,
        },
        relabeling={"host": "Base URL", "password": "API token"},
        placeholders={
            "host": "https://api.useapi.net (empty = default; http://127.0.0.1:8765 for the emulator)",
            "password": "useapi.net API token",
            "channel": "Discord channel id used when a task names none (optional)",
            "timeout": "30",
        },
    ),
    Backend(
        name="imaginepro",
        conn_type="imaginepro",
        hook_class=f"{PACKAGE}.hooks.imaginepro.ImagineProHook",
        display_name="Midjourney (ImaginePro)",
        conn_fields={
            "api": _text("API generation", "nova (default: /api/v1/nova/...) or midjourney (/api/v1/midjourney/...)."),
            "job_timeout": _integer(
                "Job timeout (s)",
                "Seconds ImaginePro lets a job run (10-900, sent as 'timeout'); empty: its default 900.",
                10,
                900,
            ),
            "moderation_patterns": _text(
                "Moderation patterns",
                "Regular expression (alternatives with |) a FAIL error text must match to count as moderated;"
                " empty: the documented default list.",
            ),
            "timeout": TIMEOUT_FIELD,
        },
        relabeling={"host": "Base URL", "password": "API key"},
        placeholders={
            "host": "https://api.imaginepro.ai (empty = default; http://127.0.0.1:8765 for the emulator)",
            "password": "ImaginePro API key",
            "api": "nova",
            "job_timeout": "900",
            "moderation_patterns": "banned|not allowed|community guidelines|moderat|nsfw",
            "timeout": "30",
        },
    ),
    Backend(
        name="useapi_v2",
        conn_type="midjourney_useapi_v2",
        hook_class=f"{PACKAGE}.hooks.useapi_v2.UseapiV2Hook",
        display_name="Midjourney (useapi.net v2/v1)",
        conn_fields={
            "api_version": {
                "label": "API version",
                "description": "v2 (default) or v1 (the v1 paths, which useapi.net routes to v2).",
                "schema": {"type": "string", "enum": ["v2", "v1"], "default": "v2"},
            },
            "discord_token": {
                "label": "Discord token",
                "description": "Discord token of the Midjourney account (secret); empty uses the account"
                " configured at useapi.net.",
                "schema": {"type": ["string", "null"], "format": "password"},
            },
            "server": _text("Discord server id", "Server of the Midjourney channel (required with api_version v1)."),
            "channel": _text("Discord channel id", "Channel for jobs that name none (required with api_version v1)."),
            "max_jobs": _integer(
                "Max concurrent jobs",
                "maxJobs sent with each job: 1-15, at most the Midjourney plan's concurrent jobs.",
                1,
                15,
            ),
            "timeout": TIMEOUT_FIELD,
        },
        relabeling={"host": "Base URL", "password": "API token"},
        placeholders={
            "host": "https://api.useapi.net (empty = default; http://127.0.0.1:8765 for the emulator)",
            "password": "useapi.net API token",
            "api_version": "v2",
            "discord_token": "Discord token (optional with v2 when the account is configured at useapi.net)",
            "server": "Discord server id",
            "channel": "Discord channel id",
            "max_jobs": "3",
            "timeout": "30",
        },
    ),
    Backend(
        name="midjourney_proxy",
        conn_type="midjourney_proxy",
        hook_class=f"{PACKAGE}.hooks.midjourney_proxy.MidjourneyProxyHook",
        display_name="Midjourney (midjourney-proxy)",
        conn_fields={
            "path_prefix": _text(
                "Path prefix", "/mj (default); /mj-fast, /mj-relax or /mj-turbo where the server offers modes."
            ),
            "flavour": _text("Server flavour", "auto (probe the server once, default), original or superset."),
            "moderation_patterns": _text(
                "Moderation patterns",
                "Regular expression (alternatives with |; or a JSON list) a FAILURE reason must match to count"
                " as a refused prompt; empty: the documented default list (English and Chinese).",
            ),
            "timeout": TIMEOUT_FIELD,
        },
        relabeling={"host": "Server base URL", "password": "API secret (mj-api-secret)"},
        placeholders={
            "host": "http://127.0.0.1:8080 (your midjourney-proxy, or a hosted service speaking its routes)",
            "password": "empty when the server has no mj.api-secret",
            "path_prefix": "/mj",
            "flavour": "auto",
            "moderation_patterns": "banned prompt|sensitive|敏感",
            "timeout": "30",
        },
    ),
    Backend(
        name="ttapi",
        conn_type="ttapi",
        hook_class=f"{PACKAGE}.hooks.ttapi.TtapiHook",
        display_name="Midjourney (TTAPI)",
        conn_fields={
            "mode": {
                "label": "Speed mode",
                "description": "fast (default), relax or turbo: sent with every imagine and blend (video: fast only).",
                "schema": {"type": "string", "enum": ["fast", "relax", "turbo"], "default": "fast"},
            },
            "job_timeout": _integer(
                "Job timeout (s)",
                "Seconds TTAPI lets a job run (300-1200, sent as its 'timeout'); empty: its default.",
                300,
                1200,
            ),
            "max_jobs": _integer(
                "Max concurrent jobs",
                "Jobs the account runs at once (TTAPI: 10 unless raised), so a busy account defers tasks;"
                " empty: learned from busy answers.",
                1,
                1000,
            ),
            "moderation_patterns": _text(
                "Moderation patterns",
                "Regular expression (alternatives with |; or a JSON list) a FAILED message must match to count"
                " as moderated; empty: the default list (it covers TTAPI's 'prompt violation').",
            ),
            "timeout": TIMEOUT_FIELD,
        },
        relabeling={"host": "Base URL", "password": "TT-API-KEY"},
        placeholders={
            "host": "https://api.ttapi.io (empty = default; http://127.0.0.1:8765 for the emulator)",
            "password": "TTAPI key (TT-API-KEY)",
            "mode": "fast",
            "job_timeout": "300",
            "max_jobs": "10",
            "moderation_patterns": "violat|banned|not allowed|nsfw",
            "timeout": "30",
        },
    ),
    Backend(
        name="legnext",
        conn_type="legnext",
        hook_class=f"{PACKAGE}.hooks.legnext.LegnextHook",
        display_name="Midjourney (Legnext / Youchuan)",
        conn_fields={
            "api": _text(
                "API",
                "legnext (default: api.legnext.ai, /api/v1/..., x-api-key) or youchuan (ali.youchuan.cn,"
                " /v1/tob/..., x-youchuan-app = login and x-youchuan-secret = password).",
            ),
            "timeout": TIMEOUT_FIELD,
        },
        relabeling={"host": "Base URL", "login": "App id (Youchuan only)", "password": "API key / app secret"},
        placeholders={
            "host": "empty = https://api.legnext.ai (legnext) or https://ali.youchuan.cn (youchuan)",
            "login": "Youchuan x-youchuan-app (empty for Legnext)",
            "password": "Legnext API key, or the Youchuan app secret",
            "api": "legnext",
            "timeout": "30",
        },
        hidden_fields=("schema", "port", "extra"),
    ),
    Backend(
        name="apiframe",
        conn_type="apiframe",
        hook_class=f"{PACKAGE}.hooks.apiframe.ApiframeHook",
        display_name="Midjourney (Apiframe v2)",
        conn_fields={
            "moderation_patterns": _text(
                "Moderation patterns",
                "Regular expression (alternatives with |) a FAILED job's error must match to count as moderated;"
                " empty: the documented default list.",
            ),
            "timeout": TIMEOUT_FIELD,
        },
        relabeling={"host": "Base URL", "password": "API key"},
        placeholders={
            "host": "https://api.apiframe.ai (empty = default; http://127.0.0.1:8765/apiframe for the emulator)",
            "password": "Apiframe API key (afk_...)",
            "moderation_patterns": "banned|not allowed|content polic|moderat|nsfw",
            "timeout": "30",
        },
        emulator_path="/apiframe",
    ),
)


def backend_named(name: str) -> Backend:
    for backend in BACKENDS:
        if backend.name == name:
            return backend
    raise KeyError(f"no backend named {name!r}; known: {', '.join(b.name for b in BACKENDS)}")


def backend_for_conn_type(conn_type: str) -> Backend:
    for backend in BACKENDS:
        if backend.conn_type == conn_type:
            return backend
    raise KeyError(conn_type)


def hook_classes() -> dict[str, type[MidjourneyBackendHook]]:
    """Connection type → hook class, from this registry (no ProvidersManager scan)."""
    return {backend.conn_type: backend.load_hook_class() for backend in BACKENDS}


def hook_class_for(conn_type: str | None, conn_id: str) -> type[MidjourneyBackendHook]:
    """The hook class of a connection's type, or an error naming the types a Midjourney task takes."""
    for backend in BACKENDS:
        if backend.conn_type == conn_type:
            return backend.load_hook_class()
    from airflow_provider_midjourney.exceptions import MidjourneyError

    raise MidjourneyError(
        f"Connection {conn_id!r} has type {conn_type!r}; a Midjourney task needs one of:"
        f" {', '.join(sorted(b.conn_type for b in BACKENDS))}"
    )


def ui_field_behaviour(conn_type: str) -> dict[str, Any]:
    """``get_ui_field_behaviour()`` of a hook (Airflow 3.0/3.1 form)."""
    backend = backend_for_conn_type(conn_type)
    return {
        "hidden_fields": list(backend.hidden_fields),
        "relabeling": backend.relabeling,
        "placeholders": backend.placeholders,
    }


def connection_form_widgets(conn_type: str) -> dict[str, Any]:
    """``get_connection_form_widgets()`` of a hook (Airflow 3.0/3.1 form): one text field per extra."""
    # wtforms is required (Airflow itself imports it first); Flask-AppBuilder's widgets and
    # flask_babel come only with the FAB provider, and the React UI of Airflow 3 needs neither.
    from wtforms import PasswordField, StringField

    try:
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from flask_babel import lazy_gettext
    except ImportError:
        BS3PasswordFieldWidget = BS3TextFieldWidget = None
        lazy_gettext = str

    def widget(spec: dict[str, Any]) -> Any:
        secret = spec["schema"].get("format") == "password"  # a secret extra (the useapi v2 Discord token)
        field, widget_class = (PasswordField, BS3PasswordFieldWidget) if secret else (StringField, BS3TextFieldWidget)
        return field(lazy_gettext(spec["label"]), **({"widget": widget_class()} if widget_class else {}))

    return {name: widget(spec) for name, spec in backend_for_conn_type(conn_type).conn_fields.items()}
