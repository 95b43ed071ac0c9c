"""The [midjourney] config section: declared to Airflow, read where used, checked with its name."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_midjourney import config
from airflow_provider_midjourney.operators import MidjourneyImagineOperator
from airflow_provider_midjourney.sensors import MidjourneyJobSensor
from airflow_provider_midjourney.triggers.midjourney import MidjourneyJobTrigger

UNSET = ("AIRFLOW__MIDJOURNEY__DEFAULT_DEFERRABLE", "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE")


@pytest.fixture(autouse=True)
def _no_deferrable_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)


def test_airflow_sees_the_section_with_its_defaults() -> None:
    from airflow.configuration import conf
    from airflow.providers_manager import ProvidersManager

    ProvidersManager().initialize_providers_configuration()
    assert conf.get("midjourney", "poll_interval") == "5.0"
    assert conf.get("midjourney", "shared_pool_size") == "32"
    assert conf.get("midjourney", "relay_allowed_hosts", fallback=None) is not None  # the gallery's, beside ours


def _imagine(**kwargs: Any) -> MidjourneyImagineOperator:
    return MidjourneyImagineOperator(task_id="imagine", prompt="a red fox", **kwargs)


def test_operators_wait_in_the_triggerer_unless_configured_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _imagine().deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "false")
    assert _imagine().deferrable is False  # Airflow's own switch, when someone set it
    assert MidjourneyJobSensor(task_id="s", job_id="j").deferrable is False
    monkeypatch.setenv("AIRFLOW__MIDJOURNEY__DEFAULT_DEFERRABLE", "true")
    assert _imagine().deferrable is True  # the provider's own option wins
    assert _imagine(deferrable=False).deferrable is False  # and the task's argument over both


def test_poll_interval_default_comes_from_the_section(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _imagine().poll_interval == 5.0
    monkeypatch.setenv("AIRFLOW__MIDJOURNEY__POLL_INTERVAL", "12.5")
    assert _imagine().poll_interval == 12.5
    assert MidjourneyJobSensor(task_id="s", job_id="j").poll_interval == 12.5
    assert _imagine(poll_interval=2).poll_interval == 2


@pytest.mark.parametrize(
    ("option", "value", "reader"),
    [
        ("poll_interval", "0", config.poll_interval),
        ("poll_interval", "nan", config.poll_interval),
        ("shared_pool_size", "-3", config.shared_pool_size),
        ("shared_pool_size", "2.5", config.shared_pool_size),
        ("progress_log_interval", "1e9", config.progress_log_interval),
        ("default_deferrable", "maybe", config.default_deferrable),
    ],
)
def test_a_bad_value_names_the_option_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch, option: str, value: str, reader: Any
) -> None:
    monkeypatch.setenv(f"AIRFLOW__MIDJOURNEY__{option.upper()}", value)
    with pytest.raises(ValueError, match=rf"\[midjourney\] {option}: must be .*{value}"):
        reader()


def test_progress_lines_follow_the_configured_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MIDJOURNEY__PROGRESS_LOG_INTERVAL", "0")
    trigger = MidjourneyJobTrigger(job_id="j", midjourney_conn_id="c")
    assert trigger._progress_every == 0.0


def test_every_option_is_declared_with_a_reader() -> None:
    for option in config.OPTIONS:
        assert callable(getattr(config, option)), option
        assert getattr(config, option)() is not None, option


def test_the_false_airflow_writes_into_a_generated_airflow_cfg_does_not_turn_deferral_off() -> None:
    from airflow.configuration import conf

    # Airflow writes every default, `[operators] default_deferrable = false` too, into the airflow.cfg it
    # generates: the e2e stack's tasks silently polled in their workers when that counted as a choice.
    had = conf.has_option("operators", "default_deferrable")
    before = conf.get("operators", "default_deferrable", fallback=None)
    conf.set("operators", "default_deferrable", "false")
    try:
        assert config.default_deferrable() is True and _imagine().deferrable is True
        conf.set("operators", "default_deferrable", "true")
        assert config.default_deferrable() is True
    finally:
        if had and before is not None:
            conf.set("operators", "default_deferrable", before)
        else:
            conf.remove_option("operators", "default_deferrable")
