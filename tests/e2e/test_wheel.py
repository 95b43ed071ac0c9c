"""The built wheel, installed into a fresh virtualenv with Airflow and nothing else, runs the demo.

This is what ``pip install airflow-provider-midjourney`` gives a newcomer: no clone, no top-level
``example_dags/`` folder, no test dependencies. The demo must find its DAG inside the package and
end with the four PNG files of the imagine job on disk (the embedded emulator stands in for the API).
Airflow is installed at the version this suite runs on, with the constraints the Makefile uses.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PACKAGE = "airflow_provider_midjourney"


def run(args: list[str], *, timeout: float, cwd: Path, env: dict[str, str] | None = None) -> str:
    started = time.monotonic()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    print(f"[{time.monotonic() - started:6.1f} s] {' '.join(args[:4])} ...")
    assert done.returncode == 0, f"{args} exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment minus anything that would point Python or Airflow at the clone."""
    drop = ("AIRFLOW", "PYTHON", "VIRTUAL_ENV", "MIDJOURNEY", "MJ_TEST", "PYTEST")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)], timeout=300, cwd=dist)
    [built] = dist.glob("airflow_provider_midjourney-*.whl")
    return built


def test_the_wheel_carries_the_example_dags_and_the_metadata(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
    shipped = {n.rsplit("/", 1)[-1] for n in names if n.startswith(f"{PACKAGE}/example_dags/")}
    assert shipped == {p.name for p in (REPO / "example_dags").glob("*.py")}
    assert not any(n.startswith(("tests/", "example_dags/")) for n in names)
    for label in ("Documentation", "Source", "Changelog", "Issues"):
        assert re.search(rf"^Project-URL: {label}, https://", metadata, re.M), label
    for classifier in ("Development Status :: 4 - Beta", "Framework :: Apache Airflow :: Provider"):
        assert f"Classifier: {classifier}" in metadata
    for minor in (11, 12, 13):
        assert f"Classifier: Programming Language :: Python :: 3.{minor}" in metadata


def test_the_wheel_in_a_fresh_virtualenv_runs_the_demo_to_four_png_files(
    wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from airflow import __version__ as airflow_version

    work = tmp_path_factory.mktemp("wheel-demo")  # cwd: nothing of the clone is importable from here
    venv = work / "venv"
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "venv", str(venv)], timeout=120, cwd=work)
    constraints = REPO / ".ci" / f"constraints-airflow-{airflow_version}.txt"  # as the Makefile does
    install = [str(python), "-m", "pip", "install", "-q", str(wheel), f"apache-airflow=={airflow_version}"]
    install += ["-c", str(constraints)] if constraints.is_file() else []
    run(install, timeout=900, cwd=work, env=clean_env())

    where = run([str(python), "-c", f"import {PACKAGE} as p; print(p.__file__)"], timeout=60, cwd=work, env=clean_env())
    assert where.strip().startswith(str(venv)), f"imported from {where}: not the installed wheel"
    docs_url = run(
        [
            str(python),
            "-c",
            "from airflow.providers_manager import ProvidersManager as M;"
            "print(M().providers['airflow-provider-midjourney'].data['documentation-url'])",
        ],
        timeout=120,
        cwd=work,
        env=clean_env(AIRFLOW_HOME=str(work / "airflow-home")),
    )
    assert docs_url.strip().startswith("https://github.com/"), docs_url  # the Providers page's link

    destination = work / "pictures"
    out = run(
        [str(python), "-m", f"{PACKAGE}.demo"],
        timeout=600,
        cwd=work,
        env=clean_env(MIDJOURNEY_DESTINATION=f"file://{destination}"),
    )
    print(out)
    assert "using the embedded emulator" in out and ": success" in out
    assert "Stored 4 file(s)" in out
    pictures = sorted(destination.rglob("*.png"))
    assert len(pictures) == 4, pictures
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in pictures)
