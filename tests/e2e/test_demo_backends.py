"""``MIDJOURNEY_BACKEND=<backend> make demo`` on every backend, against the embedded emulator.

The same example DAG (imagine → U1..U4 → seed → download) runs through ``dag.test()`` on each
API: its seed task is skipped where the backend has no seed, and every run ends with four
different PNG files and a contact sheet.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_provider_midjourney.backends import BACKENDS
from airflow_provider_midjourney.hooks.base import Capability

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# Every registered backend, with seed where its hook offers it; the midjourney-proxy server decides
# by its flavour (probed), so it runs twice.
CASES = {
    backend.name: (backend.name, {}, Capability.SEED in backend.load_hook_class().capabilities)
    for backend in BACKENDS
    if backend.name != "midjourney_proxy"
} | {
    "midjourney_proxy (original)": ("midjourney_proxy", {}, False),
    "midjourney_proxy (superset)": ("midjourney_proxy", {"MIDJOURNEY_EMULATOR_PROXY_FLAVOUR": "superset"}, True),
    "legnext (youchuan)": ("legnext", {"MIDJOURNEY_LEGNEXT_API": "youchuan"}, True),
}


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str]]:
    """Every backend's demo, run at the same time (each has its own emulator and AIRFLOW_HOME)."""
    keep = ("AIRFLOW", "MIDJOURNEY", "MJ_TEST", "PYTEST")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(keep)}
    processes = {}
    started = time.monotonic()
    for case, (backend, extra_env, _) in CASES.items():
        tmp = tmp_path_factory.mktemp("demo")
        env = {**base_env, "MIDJOURNEY_BACKEND": backend, "TMPDIR": str(tmp), **extra_env}
        processes[case] = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_midjourney.demo"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    runs = {}
    for case, process in processes.items():
        try:
            out, err = process.communicate(timeout=max(1.0, 420 - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        runs[case] = (process.returncode, out, err)
        print(f"--- demo on {case} (done after {time.monotonic() - started:.1f} s) ---\n{out}")
    return runs


@pytest.mark.parametrize("case", list(CASES))
def test_demo_on_every_backend(case: str, demo_runs: dict[str, tuple[int, str, str]]) -> None:
    backend, _, has_seed = CASES[case]
    returncode, output, errors = demo_runs[case]
    assert returncode == 0, f"{output[-3000:]}\n{errors[-3000:]}"
    assert f"backend {backend}" in output
    assert re.search(r"DAG run \S+: success", output)
    assert ("seed     skipped" in output) is not has_seed
    files = [Path(p) for p in re.findall(r"^\s+(\S+\.png)\s+\d+ bytes", output, re.M)]
    assert len(files) == 4 and len({f.read_bytes() for f in files}) == 4
    assert all(f.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for f in files)
    [sheet] = re.findall(r"^Contact sheet: (\S+)$", output, re.M)
    assert Path(sheet).is_file()
