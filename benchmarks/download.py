"""Download timing: the 4 images of a job fetched in parallel vs one by one.

    python benchmarks/download.py                 # CDN latency 0.2-0.8 s per image, 5 rounds
    python benchmarks/download.py --rounds 9 --latency 0.1 0.5

The embedded emulator (loopback only) serves the job's PNGs from its CDN route, each image path
with its own fixed latency drawn from the range (``cdn_latency``), so the four images take
different times. Every measurement writes into a fresh temporary directory (nothing is skipped).
The claim checked: fetching the 4 images with ``max_concurrency=4`` takes about as long as the
slowest single image, not the sum. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TOKEN = "benchmark-token"


def _median_seconds(action: Callable[[Path], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="mj-download-bench-") as folder:
            started = time.perf_counter()
            action(Path(folder))
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="repetitions per measurement (median reported)")
    parser.add_argument(
        "--latency", type=float, nargs=2, default=(0.2, 0.8), metavar=("LOW", "HIGH"), help="CDN latency range (s)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or not 0 <= args.latency[0] <= args.latency[1] <= 30:
        parser.error("--rounds must be >= 1 and 0 <= LOW <= HIGH <= 30")

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="midjourney-bench-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

    from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook
    from airflow_provider_midjourney.operators.download import (
        Destination,
        Downloader,
        DownloadItem,
        MidjourneyDownloadOperator,
        safe_name,
    )
    from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator

    logging.getLogger("airflow.task").setLevel(logging.WARNING)  # one line per stored file otherwise

    with MidjourneyEmulator(token=TOKEN, timings=JobTimings(complete_after=0.1)) as emulator:
        os.environ["AIRFLOW_CONN_MIDJOURNEY_DEFAULT"] = json.dumps(
            {"conn_type": "midjourney", "host": emulator.base_url, "password": TOKEN}
        )
        with UseapiV3Hook() as hook:
            job = hook.imagine("a lighthouse on a cliff at dawn, oil painting --ar 3:2")
            emulator.complete_job(job.jobid)
            job = hook.get_job(job.jobid)
            items = [
                DownloadItem(url, f"{safe_name(job.jobid)}_{n}", job.jobid)
                for n, url in enumerate(job.image_urls, start=1)
            ]
            emulator.cdn_latency = (args.latency[0], args.latency[1])

            def fetch(chosen: list[DownloadItem], concurrency: int) -> Callable[[Path], object]:
                def run(folder: Path) -> object:
                    destination = Destination.resolve(str(folder))
                    stored = Downloader(hook, destination, max_concurrency=concurrency).download_all(chosen)
                    assert len(stored) == len(chosen) and not any(f.skipped for f in stored)
                    return stored

                return run

            def operator(folder: Path) -> object:
                task = MidjourneyDownloadOperator(task_id="download", job_id=job.jobid, destination=str(folder))
                return task.execute({})  # type: ignore[arg-type]

            singles = [_median_seconds(fetch([item], 1), args.rounds) for item in items]
            sequential = _median_seconds(fetch(items, 1), args.rounds)
            parallel = _median_seconds(fetch(items, 4), args.rounds)
            with_lookup = _median_seconds(operator, args.rounds)
            size = len(hook.fetch_cdn_asset(items[0].url))
            configured = [emulator.cdn_delay(item.url.split(emulator.base_url, 1)[1]) for item in items]

    low, high = args.latency
    print(f"CDN latency {low:g}-{high:g} s per image (fixed per path), {size} B PNGs, median of {args.rounds} rounds")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, loopback emulator\n")
    print(f"| {'measurement':<44} | {'CDN latency':>11} | {'wall time':>9} |")
    print(f"| {'-' * 44} | {'-' * 11}:| {'-' * 9}:|")
    for n, (seconds, delay) in enumerate(zip(singles, configured, strict=True), start=1):
        print(f"| {f'image {n} alone':<44} | {delay:>9.3f} s | {seconds:>7.3f} s |")
    print(f"| {'sum of the four single images':<44} | {sum(configured):>9.3f} s | {sum(singles):>7.3f} s |")
    print(f"| {'slowest single image':<44} | {max(configured):>9.3f} s | {max(singles):>7.3f} s |")
    print(f"| {'4 images, max_concurrency=1 (one by one)':<44} | {'':>11} | {sequential:>7.3f} s |")
    print(f"| {'4 images, max_concurrency=4 (default)':<44} | {'':>11} | {parallel:>7.3f} s |")
    print(f"| {'operator.execute(): GET job + 4 images':<44} | {'':>11} | {with_lookup:>7.3f} s |")
    print(
        f"\nparallel / slowest single = {parallel / max(singles):.2f}; "
        f"parallel / sum of singles = {parallel / sum(singles):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
