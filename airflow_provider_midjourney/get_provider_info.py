"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Kept free of heavy imports: Airflow reads it in every process that lists providers.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_midjourney.backends import (
    BACKENDS,
    PACKAGE,
    connection_form_widgets,
    ui_field_behaviour,
)

__all__ = ["CONNECTION_TYPES", "connection_form_widgets", "connection_type", "get_provider_info", "ui_field_behaviour"]

INTEGRATION = "Midjourney"
DOCS = "https://github.com/airflow-provider-midjourney/airflow-provider-midjourney/blob/main/docs"


# One entry per backend, from the registry (3.2+ reads the form from here; 3.0/3.1 through the
# hooks' get_ui_field_behaviour/get_connection_form_widgets, which read the registry too).
CONNECTION_TYPES: list[dict[str, Any]] = [
    {
        "connection-type": backend.conn_type,
        "hook-class-name": backend.hook_class,
        "hook-name": backend.display_name,
        "conn-fields": backend.conn_fields,
        "ui-field-behaviour": backend.ui_field_behaviour,
    }
    for backend in BACKENDS
]

# The useapi.net v3 form, under the names earlier releases exported.
UI_FIELD_BEHAVIOUR: dict[str, Any] = CONNECTION_TYPES[0]["ui-field-behaviour"]
CONN_FIELDS: dict[str, Any] = CONNECTION_TYPES[0]["conn-fields"]


def connection_type(conn_type: str) -> dict[str, Any]:
    for entry in CONNECTION_TYPES:
        if entry["connection-type"] == conn_type:
            return entry
    raise KeyError(conn_type)


def get_provider_info() -> dict[str, Any]:
    from airflow_provider_midjourney import __version__
    from airflow_provider_midjourney.config import SECTION, SECTION_INFO
    from airflow_provider_midjourney.plugins.addresses import CONFIG_OPTION, CONFIG_OPTION_INFO

    return {
        "package-name": "airflow-provider-midjourney",
        "name": "Midjourney",
        "description": "Drive Midjourney from Airflow through a choice of APIs: useapi.net v3 and v2/v1,"
        " ImaginePro, Legnext (or Youchuan), and self-hosted midjourney-proxy (or a service that speaks its"
        " contract).",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": f"{DOCS}/index.md",
                "how-to-guide": [f"{DOCS}/getting-started.md", f"{DOCS}/operators.md"],
                "logo": f"{DOCS}/assets/logo.svg?raw=true",
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
                "python-modules": [
                    f"{PACKAGE}.operators.midjourney",
                    f"{PACKAGE}.operators.video",
                    f"{PACKAGE}.operators.download",
                    f"{PACKAGE}.operators.pick",
                ],
            }
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": [f"{PACKAGE}.sensors.midjourney"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": [f"{PACKAGE}.triggers.midjourney"]}],
        "extra-links": [f"{PACKAGE}.links.MidjourneyImageLink", f"{PACKAGE}.links.MidjourneyFilesLink"],
        "connection-types": [dict(entry) for entry in CONNECTION_TYPES],
        "config": {
            SECTION: {**SECTION_INFO, "options": {**SECTION_INFO["options"], CONFIG_OPTION: CONFIG_OPTION_INFO}}
        },
    }
