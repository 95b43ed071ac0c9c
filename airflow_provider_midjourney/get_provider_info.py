"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Kept free of heavy imports: Airflow reads it in every process that lists providers.
"""

from __future__ import annotations

from typing import Any

PACKAGE = "airflow_provider_midjourney"
INTEGRATION = "Midjourney"

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "login", "port", "extra"],
    "relabeling": {"host": "Base URL", "password": "API token"},
    "placeholders": {
        "host": "https://api.useapi.net (empty = default; http://127.0.0.1:8765 for the emulator)",
        "password": "useapi.net API token",
        "channel": "Discord channel id used when a task names none (optional)",
        "timeout": "30",
    },
}

CONN_FIELDS: dict[str, Any] = {
    "channel": {
        "label": "Default channel",
        "description": "Discord channel id for jobs that name none; empty lets the API balance load.",
        "schema": {"type": ["string", "null"]},
    },
    "timeout": {
        "label": "Request timeout (s)",
        "description": "Seconds per HTTP request.",
        "schema": {"type": ["number", "null"], "default": 30},
    },
}


def get_provider_info() -> dict[str, Any]:
    from airflow_provider_midjourney import __version__

    return {
        "package-name": "airflow-provider-midjourney",
        "name": "Midjourney (useapi.net)",
        "description": "Drive Midjourney from Airflow through the useapi.net Midjourney API v3.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://useapi.net/docs/api-midjourney-v3",
                "tags": ["ai", "generative-ai", "service"],
            }
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": [f"{PACKAGE}.hooks.midjourney"]}],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [f"{PACKAGE}.operators.midjourney", f"{PACKAGE}.operators.download"],
            }
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": [f"{PACKAGE}.sensors.midjourney"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": [f"{PACKAGE}.triggers.midjourney"]}],
        "extra-links": [f"{PACKAGE}.links.MidjourneyImageLink"],
        "connection-types": [
            {
                "connection-type": "midjourney",
                "hook-class-name": f"{PACKAGE}.hooks.midjourney.MidjourneyHook",
                "hook-name": "Midjourney",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
