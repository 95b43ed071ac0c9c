"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Kept free of heavy imports: Airflow reads it in every process that lists providers.
"""

from __future__ import annotations

from typing import Any

PACKAGE = "airflow_provider_midjourney"
INTEGRATION = "Midjourney"


def _number(label: str, description: str, default: float) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["number", "null"], "default": default}}


def _text(label: str, description: str) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"]}}


_TIMEOUT = _number("Request timeout (s)", "Seconds per HTTP request.", 30)

# One entry per backend: its connection type, hook class, form (3.2+ reads it from here; 3.0/3.1
# through the hooks' get_ui_field_behaviour/get_connection_form_widgets, which read it too).
CONNECTION_TYPES: list[dict[str, Any]] = [
    {
        "connection-type": "midjourney",
        "hook-class-name": f"{PACKAGE}.hooks.midjourney.MidjourneyHook",
        "hook-name": "Midjourney (useapi.net v3)",
        "conn-fields": {
            "channel": _text(
                "Default channel", "Discord channel id for jobs that name none; empty lets the API balance load."
            ),
            "timeout": _TIMEOUT,
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login", "port", "extra"],
            "relabeling": {"host": "Base URL", "password": "API token"},
            "placeholders": {
                "host": "https://api.useapi.net (empty = default; http://127.0.0.1:8765 for the emulator)",
                "password": "useapi.net API token",
                "channel": "Discord channel id used when a task names none (optional)",
                "timeout": "30",
            },
        },
    },
    {
        "connection-type": "imaginepro",
        "hook-class-name": f"{PACKAGE}.hooks.imaginepro.ImagineProHook",
        "hook-name": "Midjourney (ImaginePro)",
        "conn-fields": {
            "api": _text("API generation", "nova (default: /api/v1/nova/...) or midjourney (/api/v1/midjourney/...)."),
            "job_timeout": {
                "label": "Job timeout (s)",
                "description": "Seconds ImaginePro lets a job run (10-900, sent as 'timeout'); empty: its default 900.",
                "schema": {"type": ["integer", "null"], "minimum": 10, "maximum": 900},
            },
            "moderation_patterns": _text(
                "Moderation patterns",
                "Regular expression (alternatives with |) a FAIL error text must match to count as moderated;"
                " empty: the documented default list.",
            ),
            "timeout": _TIMEOUT,
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login", "port", "extra"],
            "relabeling": {"host": "Base URL", "password": "API key"},
            "placeholders": {
                "host": "https://api.imaginepro.ai (empty = default; http://127.0.0.1:8765 for the emulator)",
                "password": "ImaginePro API key",
                "api": "nova",
                "job_timeout": "900",
                "moderation_patterns": "banned|not allowed|community guidelines|moderat|nsfw",
                "timeout": "30",
            },
        },
    },
]

CONNECTION_TYPES.append(
    {
        "connection-type": "midjourney_useapi_v2",
        "hook-class-name": f"{PACKAGE}.hooks.useapi_v2.UseapiV2Hook",
        "hook-name": "Midjourney (useapi.net v2/v1)",
        "conn-fields": {
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
            "max_jobs": {
                "label": "Max concurrent jobs",
                "description": "maxJobs sent with each job: 1-15, at most the Midjourney plan's concurrent jobs.",
                "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 15},
            },
            "timeout": _TIMEOUT,
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login", "port", "extra"],
            "relabeling": {"host": "Base URL", "password": "API token"},
            "placeholders": {
                "host": "https://api.useapi.net (empty = default; http://127.0.0.1:8765 for the emulator)",
                "password": "useapi.net API token",
                "api_version": "v2",
                "discord_token": "Discord token (optional with v2 when the account is configured at useapi.net)",
                "server": "Discord server id",
                "channel": "Discord channel id",
                "max_jobs": "3",
                "timeout": "30",
            },
        },
    }
)

CONNECTION_TYPES.append(
    {
        "connection-type": "midjourney_proxy",
        "hook-class-name": f"{PACKAGE}.hooks.midjourney_proxy.MidjourneyProxyHook",
        "hook-name": "Midjourney (midjourney-proxy)",
        "conn-fields": {
            "path_prefix": _text(
                "Path prefix", "/mj (default); /mj-fast, /mj-relax or /mj-turbo where the server offers modes."
            ),
            "flavour": _text("Server flavour", "auto (probe the server once, default), original or superset."),
            "moderation_patterns": _text(
                "Moderation patterns",
                "Regular expression (alternatives with |; or a JSON list) a FAILURE reason must match to count"
                " as a refused prompt; empty: the documented default list (English and Chinese).",
            ),
            "timeout": _TIMEOUT,
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login", "port", "extra"],
            "relabeling": {"host": "Server base URL", "password": "API secret (mj-api-secret)"},
            "placeholders": {
                "host": "http://127.0.0.1:8080 (your midjourney-proxy, or a hosted service speaking its routes)",
                "password": "empty when the server has no mj.api-secret",
                "path_prefix": "/mj",
                "flavour": "auto",
                "moderation_patterns": "banned prompt|sensitive|敏感",
                "timeout": "30",
            },
        },
    }
)

# The useapi.net v3 form, under the names earlier releases exported.
UI_FIELD_BEHAVIOUR: dict[str, Any] = CONNECTION_TYPES[0]["ui-field-behaviour"]
CONN_FIELDS: dict[str, Any] = CONNECTION_TYPES[0]["conn-fields"]


_CONNECTION_TYPE_KEYS = ("connection-type", "hook-class-name", "hook-name", "conn-fields", "ui-field-behaviour")


def connection_type(conn_type: str) -> dict[str, Any]:
    for entry in CONNECTION_TYPES:
        if entry["connection-type"] == conn_type:
            return entry
    raise KeyError(conn_type)


def ui_field_behaviour(conn_type: str) -> dict[str, Any]:
    """``get_ui_field_behaviour()`` of a hook (Airflow 3.0/3.1 form)."""
    behaviour = connection_type(conn_type)["ui-field-behaviour"]
    return {
        "hidden_fields": behaviour["hidden-fields"],
        "relabeling": behaviour["relabeling"],
        "placeholders": behaviour["placeholders"],
    }


def connection_form_widgets(conn_type: str) -> dict[str, Any]:
    """``get_connection_form_widgets()`` of a hook (Airflow 3.0/3.1 form): one text field per extra."""
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import PasswordField, StringField

    def field(spec: dict[str, Any]) -> Any:
        if spec["schema"].get("format") == "password":  # a secret extra (the useapi v2 Discord token)
            return PasswordField(lazy_gettext(spec["label"]), widget=BS3PasswordFieldWidget())
        return StringField(lazy_gettext(spec["label"]), widget=BS3TextFieldWidget())

    return {name: field(spec) for name, spec in connection_type(conn_type)["conn-fields"].items()}


def get_provider_info() -> dict[str, Any]:
    from airflow_provider_midjourney import __version__

    return {
        "package-name": "airflow-provider-midjourney",
        "name": "Midjourney",
        "description": "Drive Midjourney from Airflow through a choice of APIs: useapi.net v3 and v2/v1,"
        " ImaginePro, and self-hosted midjourney-proxy (or a service that speaks its contract).",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://github.com/airflow-provider-midjourney/airflow-provider-midjourney#readme",
                "tags": ["ai", "service"],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": sorted({e["hook-class-name"].rpartition(".")[0] for e in CONNECTION_TYPES}),
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [f"{PACKAGE}.operators.midjourney", f"{PACKAGE}.operators.download"],
            }
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": [f"{PACKAGE}.sensors.midjourney"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": [f"{PACKAGE}.triggers.midjourney"]}],
        "extra-links": [f"{PACKAGE}.links.MidjourneyImageLink", f"{PACKAGE}.links.MidjourneyFilesLink"],
        "connection-types": [{key: entry[key] for key in _CONNECTION_TYPE_KEYS} for entry in CONNECTION_TYPES],
    }
