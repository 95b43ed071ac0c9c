"""``python -m airflow_provider_midjourney.testing --port 8765`` runs the emulator standalone.

The first line printed on stdout is the base URL; the process runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from airflow_provider_midjourney.testing.emulator import MidjourneyEmulator
from airflow_provider_midjourney.testing.models import JobTimings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_midjourney.testing",
        description="Local emulator of the Midjourney APIs (every registered backend's routes).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--token", default="emulator-token", help="API token to require")
    parser.add_argument("--no-auth", action="store_true", help="accept requests without token")
    parser.add_argument("--channels", type=int, default=1, help="pre-configured accounts")
    parser.add_argument("--start-after", type=float, default=1.0, help="seconds to 'started'")
    parser.add_argument("--progress-after", type=float, default=2.0, help="seconds to 'progress'")
    parser.add_argument("--complete-after", type=float, default=8.0, help="seconds to finish")
    parser.add_argument("--seed", type=int, default=0, help="RNG seed")
    parser.add_argument("--public-url", default=None, help="base URL advertised in job results")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    timings = JobTimings(args.start_after, args.progress_after, args.complete_after)
    emulator = MidjourneyEmulator(
        token=None if args.no_auth else args.token,
        host=args.host,
        port=args.port,
        channels=args.channels,
        timings=timings,
        seed=args.seed,
        public_url=args.public_url,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator.start()
    try:
        print(emulator.base_url, flush=True)
        auth = "no auth" if emulator.token is None else "Bearer token required"
        print(f"Midjourney APIs emulator ready ({auth}); Ctrl-C to stop", file=sys.stderr)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
