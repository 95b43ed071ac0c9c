"""What PyPI and Airflow's Providers page show: project URLs, classifiers, provider tags, changelog.

The built wheel's METADATA, and Airflow reading the Documentation URL from an installed wheel, are
checked in tests/e2e/test_wheel.py; here the sources they come from.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_midjourney
from airflow_provider_midjourney.get_provider_info import get_provider_info

tomllib = pytest.importorskip("tomllib")
REPO = Path(__file__).resolve().parents[1]
PROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_project_urls_name_documentation_source_changelog_and_issues() -> None:
    urls = PROJECT["urls"]
    # Airflow's Providers page links the "Documentation" entry of the package metadata.
    assert {"Documentation", "Source", "Changelog", "Issues"} <= set(urls)
    assert all(url.startswith("https://github.com/airflow-provider-midjourney/") for url in urls.values())
    assert urls["Changelog"].endswith("/CHANGELOG.md")


def test_classifiers_say_beta_provider_and_each_supported_python() -> None:
    classifiers = set(PROJECT["classifiers"])
    assert {"Development Status :: 4 - Beta", "Framework :: Apache Airflow"} <= classifiers
    assert "Framework :: Apache Airflow :: Provider" in classifiers
    lowest = int(re.fullmatch(r">=3\.(\d+)", PROJECT["requires-python"]).group(1))  # type: ignore[union-attr]
    listed = {
        int(c.rsplit(".", 1)[1]) for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert min(listed) == lowest and listed == set(range(lowest, max(listed) + 1)), listed
    assert max(listed) >= 13


def test_description_names_every_api() -> None:
    for api in ("useapi.net v3/v2/v1", "ImaginePro", "midjourney-proxy"):
        assert api in PROJECT["description"]


def test_provider_tags_are_among_the_ones_airflow_knows() -> None:
    import jsonschema

    info = get_provider_info()
    # What Airflow validates at runtime (tags are free-form there) ...
    jsonschema.validate(info, json.loads((resources.files("airflow") / "provider_info.schema.json").read_text()))
    # ... and the list Airflow's own providers choose from (3.0's list predates the AI tags).
    schema = json.loads((resources.files("airflow") / "provider.yaml.schema.json").read_text())
    allowed = set(schema["properties"]["integrations"]["items"]["properties"]["tags"]["items"]["enum"])
    for integration in info["integrations"]:
        assert set(integration["tags"]) == {"ai", "service"}, integration
        if "ai" in allowed:
            assert set(integration["tags"]) <= allowed


def test_the_changelog_has_the_current_version() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert f"## [{airflow_provider_midjourney.__version__}]" in changelog
    assert "## [Unreleased]" in changelog
