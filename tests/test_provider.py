"""Registration as an Airflow provider, and what importing it costs a DAG file."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import airflow_provider_midjourney
from airflow_provider_midjourney.backends import BACKENDS, hook_classes
from airflow_provider_midjourney.get_provider_info import CONNECTION_TYPES, get_provider_info
from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook


def test_provider_info_matches_airflows_schema() -> None:
    schema = json.loads((resources.files("airflow") / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-provider-midjourney"
    assert info["versions"] == [airflow_provider_midjourney.__version__]
    by_type = {conn["connection-type"]: conn for conn in info["connection-types"]}
    assert set(by_type) == {backend.conn_type for backend in BACKENDS}
    assert {"midjourney", "imaginepro", "midjourney_useapi_v2", "midjourney_proxy"} <= set(by_type)  # released
    conn = by_type[UseapiV3Hook.conn_type]
    assert conn["ui-field-behaviour"]["relabeling"] == {"host": "Base URL", "password": "API token"}
    assert set(conn["conn-fields"]) == {"channel", "timeout"}


def test_every_registered_backend_resolves_to_its_own_hook_class() -> None:
    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook

    classes = hook_classes()
    assert len(set(classes.values())) == len(classes) == len(BACKENDS)
    assert len({b.name for b in BACKENDS}) == len(BACKENDS)
    for backend in BACKENDS:
        cls = classes[backend.conn_type]
        assert issubclass(cls, MidjourneyBackendHook) and cls.conn_type == backend.conn_type
        assert cls.backend == backend.name, "the hook's backend name is its registry name"
        assert cls.__module__ == f"airflow_provider_midjourney.hooks.{backend.name}", "the wing layout"
        assert cls.api_name and cls.default_conn_name.endswith("_default")
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
    assert manager.hooks["midjourney"].hook_class_name.endswith("UseapiV3Hook")
    assert {b.conn_type for b in BACKENDS} <= set(manager.hooks)


@pytest.mark.parametrize("entry", CONNECTION_TYPES, ids=lambda entry: entry["connection-type"])
def test_providers_manager_reports_each_connection_form(entry: dict[str, Any]) -> None:
    """What Airflow's UI shows: 3.2+ reads the provider info, 3.0/3.1 only the concrete hook's own methods."""
    from airflow.providers_manager import ProvidersManager

    conn_type = entry["connection-type"]
    manager = ProvidersManager()
    behaviour = manager.field_behaviours.get(conn_type)
    assert behaviour, f"no form behaviour for {conn_type}: Airflow shows a plain form"
    assert behaviour["relabeling"] == entry["ui-field-behaviour"]["relabeling"]
    assert set(behaviour["hidden_fields"]) == set(entry["ui-field-behaviour"]["hidden-fields"])
    widgets = manager.connection_form_widgets
    expected = {f"extra__{conn_type}__{field}" for field in entry["conn-fields"]}
    assert expected <= set(widgets), f"missing extra fields: {sorted(expected - set(widgets))}"
    # 3.2+ names the hook class by its dotted path, 3.0/3.1 by the class name alone.
    assert {widgets[name].hook_class_name.rpartition(".")[2] for name in expected} == {
        entry["hook-class-name"].rpartition(".")[2]
    }


def test_every_backend_hook_carries_its_form_in_its_own_class() -> None:
    from airflow_provider_midjourney.hooks.base import MidjourneyBackendHook

    class LaterBackendHook(MidjourneyBackendHook):
        conn_type = "imaginepro"

    for cls in [*hook_classes().values(), LaterBackendHook]:
        assert {"get_ui_field_behaviour", "get_connection_form_widgets"} <= set(cls.__dict__), cls
    assert LaterBackendHook.get_ui_field_behaviour()["relabeling"]["password"] == "API key"


def test_hook_ui_behaviour_for_older_airflow() -> None:
    behaviour = UseapiV3Hook.get_ui_field_behaviour()
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


def test_the_earlier_v3_hook_name_still_imports_with_a_deprecation_warning() -> None:
    import importlib

    old = importlib.import_module("airflow_provider_midjourney.hooks.midjourney")
    with pytest.warns(DeprecationWarning, match="UseapiV3Hook"):
        assert old.MidjourneyHook is UseapiV3Hook
    assert old.DEFAULT_BASE_URL == "https://api.useapi.net"


def test_a_connection_of_an_unknown_type_names_every_registered_one() -> None:
    from airflow_provider_midjourney.backends import hook_class_for
    from airflow_provider_midjourney.exceptions import MidjourneyError

    with pytest.raises(MidjourneyError) as info:
        hook_class_for("http", "mine")
    assert all(backend.conn_type in str(info.value) for backend in BACKENDS)
