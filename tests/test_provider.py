"""Registration as an Airflow provider, and what importing it costs a DAG file."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema

import airflow_provider_midjourney
from airflow_provider_midjourney.get_provider_info import get_provider_info
from airflow_provider_midjourney.hooks.midjourney import MidjourneyHook


def test_provider_info_matches_airflows_schema() -> None:
    schema = json.loads((resources.files("airflow") / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-provider-midjourney"
    assert info["versions"] == [airflow_provider_midjourney.__version__]
    by_type = {conn["connection-type"]: conn for conn in info["connection-types"]}
    assert set(by_type) == {"midjourney", "imaginepro", "midjourney_useapi_v2", "midjourney_proxy"}
    conn = by_type[MidjourneyHook.conn_type]
    assert conn["ui-field-behaviour"]["relabeling"] == {"host": "Base URL", "password": "API token"}
    assert set(conn["conn-fields"]) == {"channel", "timeout"}


def test_every_connection_type_resolves_to_its_own_hook_class() -> None:
    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook, hook_classes

    classes = hook_classes()
    assert len(set(classes.values())) == len(classes) == 4
    for conn_type, cls in classes.items():
        assert issubclass(cls, MidjourneyBackendHook) and cls.conn_type == conn_type
        assert cls.backend and cls.api_name and cls.default_conn_name.endswith("_default")
        behaviour = cls.get_ui_field_behaviour()
        assert set(behaviour) == {"hidden_fields", "relabeling", "placeholders"}


def test_every_listed_module_and_class_imports() -> None:
    import importlib

    info = get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for dotted in [*info["extra-links"], *(conn["hook-class-name"] for conn in info["connection-types"])]:
        module, _, name = dotted.rpartition(".")
        assert getattr(importlib.import_module(module), name)


def test_providers_manager_discovers_the_installed_package() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-midjourney" in manager.providers
    assert manager.hooks["midjourney"].hook_class_name.endswith("MidjourneyHook")


def test_hook_ui_behaviour_for_older_airflow() -> None:
    behaviour = MidjourneyHook.get_ui_field_behaviour()
    assert "login" in behaviour["hidden_fields"] and behaviour["relabeling"]["password"] == "API token"


def test_dag_files_do_not_import_the_emulator_stack() -> None:
    code = (
        "import sys; from airflow.sdk import DAG, BaseOperator, BaseSensorOperator;"
        "before = set(sys.modules);"
        "import airflow_provider_midjourney.operators, airflow_provider_midjourney.sensors;"
        "heavy = ('fastapi', 'uvicorn', 'starlette', 'airflow_provider_midjourney.testing');"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_package_ships_type_information() -> None:
    assert (Path(airflow_provider_midjourney.__file__).parent / "py.typed").is_file()
