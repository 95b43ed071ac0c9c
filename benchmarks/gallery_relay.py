"""The Airflow API during a slow-picture attack on the gallery: health and /dags latency.

    python benchmarks/gallery_relay.py                       # this checkout's provider
    python benchmarks/gallery_relay.py --code /tmp/old-tree  # another tree's provider (e.g. before)

A real api-server process (one worker) serves the gallery; one viewer opens 60 pictures of a
loopback source that drips a byte every 2 s, and while they are in flight ``/api/v2/monitor/health``
and ``/api/v2/dags`` are asked 5 times each (30 s timeout). Prints and saves the answers and their
latencies (benchmarks/results/gallery_relay-<label>.json). Not a test: numbers depend on the machine;
tests/e2e/test_gallery_attacks.py asserts only that Airflow answers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.gallery_attack import Attack, GalleryStack  # noqa: E402
from tests.hostile_http import HostileServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=REPO, help="tree whose provider the api-server imports")
    parser.add_argument("--label", default="after")
    parser.add_argument("--count", type=int, default=60)
    args = parser.parse_args()
    with HostileServer() as source, tempfile.TemporaryDirectory(prefix="gallery-relay-") as home:
        stack = GalleryStack(Path(home), f"127.0.0.1:{source.port}", code=args.code)
        try:
            stack.start()
            attack = Attack(count=args.count).run(stack, source)
        finally:
            stack.stop()
    result = {
        "label": args.label,
        "pictures": args.count,
        "picture_statuses": {
            s: [str(x) for x in attack.statuses].count(s) for s in sorted({str(x) for x in attack.statuses})
        },
        "health": attack.health,
        "dags": attack.dags,
        "health_median_s": statistics.median(t for _, t in attack.health),
        "dags_median_s": statistics.median(t for _, t in attack.dags),
    }
    print(json.dumps(result, indent=1))
    out = REPO / "benchmarks" / "results" / f"gallery_relay-{args.label}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
