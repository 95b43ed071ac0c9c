"""Memory of cutting a crafted 13000x13000 PNG "grid" (a few hundred KB on the wire).

    python benchmarks/grid_bomb.py

Runs ``split_grid`` on the file in a fresh subprocess twice: with the header check
(``MAX_GRID_PIXELS``, today's code) and with it lifted (what the code did before), and prints each
process's peak resident memory above its baseline (``ru_maxrss``) and time. Not a test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from airflow_provider_midjourney import grid
from tests.test_download_security import _png_header_only_bomb
bomb = _png_header_only_bomb(13000)
if sys.argv[2] == "before":
    grid.MAX_GRID_PIXELS = 10**12
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
try:
    grid.split_grid(bomb)
    outcome = "decoded-and-cut"
except Exception as exc:
    outcome = type(exc).__name__
elapsed = time.monotonic() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{len(bomb)} {outcome} {(peak - baseline) / 1024:.1f} {elapsed:.3f}")
"""


def measure(mode: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO), mode], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split()
    return {
        "mode": mode,
        "file_bytes": int(out[0]),
        "outcome": out[1],
        "peak_extra_mb": float(out[-2]),
        "seconds": float(out[-1]),
    }


if __name__ == "__main__":
    results = [measure("before"), measure("after")]
    print(json.dumps(results, indent=1))
    (REPO / "benchmarks" / "results" / "grid_bomb.json").write_text(json.dumps(results, indent=1) + "\n")
