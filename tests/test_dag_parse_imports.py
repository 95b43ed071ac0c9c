"""A DAG file that uses the operators must not pay, on every parse, for what only a task needs.

Airflow's DAG processor imports a DAG file's modules on every parse (its pre-import covers only
``airflow.*``). The hooks, the pydantic models of every backend, the trigger and tenacity are
imported where a task uses them; what a parse imports is only the operators, the sensor, their
number checks and links. ``benchmarks/dag_parse.py`` measures the time; this guards the path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Imported only when a task runs (or a hook/trigger is used directly).
TASK_ONLY = (
    "airflow_provider_midjourney.models",
    "airflow_provider_midjourney.job",
    "airflow_provider_midjourney.hooks.base",
    "airflow_provider_midjourney.hooks.midjourney",
    "airflow_provider_midjourney.triggers.midjourney",
    "airflow_provider_midjourney.grid",
    "tenacity",
)

PARSE = textwrap.dedent(
    """
    import json, sys
    import airflow.sdk
    from airflow.sdk.execution_time import task_runner  # what the DAG processor's child has
    baseline = set(sys.modules)
    from datetime import datetime, timedelta
    from airflow.sdk import DAG
    from airflow_provider_midjourney.operators import (
        MidjourneyBlendOperator, MidjourneyButtonOperator, MidjourneyDescribeOperator,
        MidjourneyDownloadOperator, MidjourneyImagineOperator, MidjourneySeedOperator,
        MidjourneySettingsOperator,
    )
    from airflow_provider_midjourney.retry import HttpRetry
    from airflow_provider_midjourney.sensors.midjourney import MidjourneyJobSensor

    with DAG(dag_id="parse_only", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        imagine = MidjourneyImagineOperator(
            task_id="imagine", prompt="a lighthouse", poll_interval=2, timeout=timedelta(minutes=5),
            retry=HttpRetry(max_attempts=3),
        )
        MidjourneyButtonOperator.partial(task_id="upscale", job_id=imagine.output["job_id"]).expand(
            button=["U1", "U2"]
        )
        MidjourneyBlendOperator(task_id="blend", images=["https://example.com/a.png", "https://example.com/b.png"])
        MidjourneyDescribeOperator(task_id="describe", image="https://example.com/a.png")
        MidjourneySeedOperator(task_id="seed", job_id=imagine.output["job_id"])
        MidjourneySettingsOperator(task_id="settings", command="info")
        MidjourneyJobSensor(task_id="sensor", job_id=imagine.output["job_id"], poll_interval=3)
        MidjourneyDownloadOperator(task_id="download", job_id=imagine.output["job_id"], destination="memory://x")
    print(json.dumps(sorted(set(sys.modules) - baseline)))
    """
)


def test_a_dag_parse_imports_no_hook_model_or_trigger() -> None:
    out = subprocess.run([sys.executable, "-c", PARSE], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    imported = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "airflow_provider_midjourney.operators.midjourney" in imported  # the probe did import the operators
    assert not imported & set(TASK_ONLY), sorted(imported & set(TASK_ONLY))
    ours = sorted(m for m in imported if m.startswith("airflow_provider_midjourney"))
    assert all(".hooks" not in m and ".triggers" not in m and ".testing" not in m for m in ours), ours


def test_bad_numbers_still_fail_at_construction_naming_the_field() -> None:
    """Lazy imports did not move the constructor checks to execute."""
    from airflow_provider_midjourney.exceptions import MidjourneyInvalidRequestError
    from airflow_provider_midjourney.operators import MidjourneyImagineOperator

    for kwargs, field in (({"poll_interval": float("nan")}, "poll_interval"), ({"timeout": "5"}, "timeout")):
        try:
            MidjourneyImagineOperator(task_id="t", prompt="p", **kwargs)
        except MidjourneyInvalidRequestError as exc:
            assert str(exc).startswith(field), exc
        else:
            raise AssertionError(f"{kwargs} was accepted")
