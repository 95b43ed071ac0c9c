"""DAG-parse cost: a DAG file using the provider's operators vs the same DAG with ``airflow.sdk`` only.

    python benchmarks/dag_parse.py            # 15 fresh processes per DAG file, interleaved
    python benchmarks/dag_parse.py --quick    # 5 each

Each measurement is a fresh Python process that has already imported what Airflow's DAG-parsing
child has (``airflow.sdk``, the task runner, ``DagBag``), then times what that child does with a
file: ``DagBag(<file>)`` (executing the file: imports and DAG construction) plus the DAG
serialization. Airflow's ``parsing_pre_import_modules`` only pre-imports ``airflow.*`` modules, so
the provider is imported by every parse of a file that uses it: that is the cost measured here.
The last section lists the modules only the provider DAG imports, by cumulative import time
(``python -X importtime``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import isolate_airflow_home, median, percentile, print_machine, table

TARGET_ADDED_MS = 50.0
REPO = Path(__file__).resolve().parents[1]

PROVIDER_DAG = """
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_midjourney.operators import (
    MidjourneyButtonOperator,
    MidjourneyImagineOperator,
    MidjourneySeedOperator,
)

with DAG(dag_id="bench_provider", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    imagine = MidjourneyImagineOperator(task_id="imagine", prompt="{{ params.prompt }}")
    upscale = MidjourneyButtonOperator.partial(task_id="upscale", job_id=imagine.output["job_id"]).expand(
        button=["U1", "U2", "U3", "U4"]
    )
    seed = MidjourneySeedOperator(task_id="seed", job_id=imagine.output["job_id"])
"""

SDK_DAG = """
from datetime import datetime

from airflow.sdk import DAG, BaseOperator


class Imagine(BaseOperator):
    template_fields = ("prompt",)

    def __init__(self, *, prompt, poll_interval=5.0, **kwargs):
        super().__init__(**kwargs)
        self.prompt, self.poll_interval = prompt, poll_interval

    def execute(self, context):
        return {"job_id": "j"}


class Button(BaseOperator):
    template_fields = ("job_id", "button")

    def __init__(self, *, job_id, button, **kwargs):
        super().__init__(**kwargs)
        self.job_id, self.button = job_id, button

    def execute(self, context):
        return {"job_id": "j"}


class Seed(BaseOperator):
    template_fields = ("job_id",)

    def __init__(self, *, job_id, **kwargs):
        super().__init__(**kwargs)
        self.job_id = job_id

    def execute(self, context):
        return {"seed": 1}


with DAG(dag_id="bench_sdk", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    imagine = Imagine(task_id="imagine", prompt="{{ params.prompt }}")
    upscale = Button.partial(task_id="upscale", job_id=imagine.output["job_id"]).expand(
        button=["U1", "U2", "U3", "U4"]
    )
    seed = Seed(task_id="seed", job_id=imagine.output["job_id"])
"""

# Runs in a fresh process per measurement; prints one JSON line.
HARNESS = textwrap.dedent(
    """
    import json, sys, time
    import airflow.sdk
    from airflow.sdk import DAG, BaseOperator
    from airflow.sdk.execution_time import task_runner
    try:  # Airflow >= 3.1
        from airflow.dag_processing.dagbag import DagBag
        kwargs = {}
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag
        kwargs = {"include_examples": False}
    from airflow.dag_processing.processor import _serialize_dags
    import structlog

    log = structlog.get_logger()
    modules = len(sys.modules)
    t0 = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1], load_op_links=False, **kwargs)
    t1 = time.perf_counter()
    serialized, errors = _serialize_dags(bag, log)
    t2 = time.perf_counter()
    print(json.dumps({
        "parse_ms": (t1 - t0) * 1000, "serialize_ms": (t2 - t1) * 1000, "dags": sorted(bag.dags),
        "errors": {**bag.import_errors, **errors}, "new_modules": len(sys.modules) - modules,
    }))
    """
)


def measure(path: Path, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", HARNESS, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=True,
        cwd=path.parent,  # not the repository: "python -c" puts the working directory first on sys.path
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["errors"] or not result["dags"]:
        raise RuntimeError(f"{path.name} did not parse: {result['errors']}")
    return result


def import_breakdown(provider: Path, sdk: Path, env: dict[str, str], top: int) -> list[tuple[str, float]]:
    """Modules imported only by the provider DAG, by cumulative import time (ms, one run)."""

    def importtime(path: Path) -> dict[str, float]:
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", HARNESS, str(path)],
            cwd=path.parent,
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
            check=True,
        )
        times = {}
        for line in out.stderr.splitlines():
            if line.startswith("import time:") and "|" in line:
                _, cumulative, name = line.split("|")
                try:
                    times[name.strip()] = int(cumulative) / 1000
                except ValueError:
                    continue
        return times

    mine, base = importtime(provider), importtime(sdk)
    extra = {name: ms for name, ms in mine.items() if name not in base}
    return sorted(extra.items(), key=lambda kv: -kv[1])[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="fresh processes per DAG file (15)")
    parser.add_argument("--quick", action="store_true", help="5 runs per DAG file")
    parser.add_argument("--example", action="append", default=[], help="also parse this DAG file (repeatable)")
    parser.add_argument(
        "--baseline-tree",
        default=None,
        metavar="DIR",
        help="also parse the provider DAG with the package imported from DIR (a before/after row)",
    )
    parser.add_argument("--top", type=int, default=12, help="modules listed in the import breakdown (12)")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="compile every module's source on every parse (an editable install with PYTHONDONTWRITEBYTECODE)",
    )
    parser.add_argument("--json", default=None, help="write the raw results to this file")
    args = parser.parse_args(argv)
    runs = args.runs or (5 if args.quick else 15)

    isolate_airflow_home()
    env = {**os.environ}
    # As installed from a wheel: pip compiles the byte code, so a deployed DAG processor does not compile
    # the provider's source on every parse. (PYTHONDONTWRITEBYTECODE would charge every run with it.)
    if args.no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="midjourney-dag-parse-nocache-")  # no stale .pyc
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="midjourney-dag-parse-pycache-")
    folder = Path(tempfile.mkdtemp(prefix="midjourney-dag-parse-"))
    files = {"airflow.sdk only": folder / "bench_sdk.py", "provider operators": folder / "bench_provider.py"}
    files["airflow.sdk only"].write_text(SDK_DAG)
    files["provider operators"].write_text(PROVIDER_DAG)
    for extra in args.example:
        files[f"example: {Path(extra).name}"] = Path(extra).resolve()
    envs = {name: env for name in files}
    if args.baseline_tree:  # the same provider DAG, importing the package from another tree
        name = f"provider operators, package from {args.baseline_tree}"
        files[name] = files["provider operators"]
        path = os.pathsep.join(filter(None, [str(Path(args.baseline_tree).resolve()), env.get("PYTHONPATH")]))
        envs[name] = {**env, "PYTHONPATH": path}

    print("Machine:")
    print_machine()
    print(f"{runs} fresh processes per DAG file, interleaved; times: DagBag(file) + DAG serialization")
    cached = "none (every module compiled on every parse)" if args.no_bytecode else "cached, as pip installs"
    print(f"byte code: {cached}")
    samples: dict[str, list[dict[str, object]]] = {name: [] for name in files}
    for name, path in files.items():  # warm the OS file cache and byte-code caches, not measured
        measure(path, envs[name])
    for i in range(runs):
        for name, path in files.items():
            samples[name].append(measure(path, envs[name]))
        print(f"  run {i + 1}/{runs}", end="\r", flush=True)
    print()

    def totals(name: str) -> list[float]:
        return [float(s["parse_ms"]) + float(s["serialize_ms"]) for s in samples[name]]  # type: ignore[arg-type]

    base = median(totals("airflow.sdk only"))
    rows = []
    for name in files:
        t = totals(name)
        parse = median([float(s["parse_ms"]) for s in samples[name]])  # type: ignore[arg-type]
        rows.append(
            [
                name,
                round(median(t), 1),
                f"{percentile(t, 10):.1f}-{percentile(t, 90):.1f}",
                round(parse, 1),
                f"{median(t) - base:+.1f}",
                f"{median(t) / base:.2f}x",
                int(median([float(s["new_modules"]) for s in samples[name]])),  # type: ignore[arg-type]
            ]
        )
    print("\n## DAG-parse cost (median of fresh processes)\n")
    print(
        table(
            [
                "DAG file",
                "parse+serialize ms",
                "p10-p90 ms",
                "of which parse ms",
                "added ms",
                "ratio",
                "modules imported",
            ],
            rows,
        )
    )
    added = median(totals("provider operators")) - base
    verdict = "met" if added <= TARGET_ADDED_MS else "MISSED"
    print(f"\nAdded by the provider: {added:.1f} ms (target <= {TARGET_ADDED_MS:.0f} ms: {verdict})")

    breakdown = import_breakdown(files["provider operators"], files["airflow.sdk only"], env, args.top)
    print("\n### Modules only the provider DAG imports (cumulative import time, one run, -X importtime)\n")
    print(table(["module", "cumulative ms"], [[name, round(ms, 1)] for name, ms in breakdown]))
    if args.json:
        raw = {"airflow": version("apache-airflow"), "runs": runs, "samples": samples, "breakdown": breakdown}
        Path(args.json).write_text(json.dumps(raw, indent=1))
    return 0 if added <= TARGET_ADDED_MS else 1


if __name__ == "__main__":
    sys.exit(main())
