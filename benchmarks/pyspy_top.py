"""Summarise a ``py-spy record --format raw`` file: where a process spent its samples.

    python benchmarks/pyspy_top.py profile.txt [--top 30] [--under FUNCTION]

Prints the functions with the largest share of samples, counted once per stack ("inclusive",
what a flame graph shows as width) and at the top of the stack ("self"). ``--under`` keeps only
stacks that pass through a function (e.g. ``TriggerRunnerSupervisor.run_once``). Idle samples
(``select``/``epoll`` at the top) are reported separately.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

IDLE = ("select (selectors.py", "EpollSelector.select", "_run_once (asyncio", "poll (selectors.py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--under", default=None, help="only stacks through this function name")
    args = parser.parse_args(argv)
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = idle = 0
    for line in Path(args.path).read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f.split(" (")[0] for f in stack.split(";")]
        if args.under and args.under not in frames:
            continue
        total += count
        if any(stack.rsplit(";", 1)[-1].startswith(p) for p in IDLE):
            idle += count
            continue
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    if not total:
        print("no samples")
        return 1
    busy = total - idle
    print(f"{total} samples, {idle / total:.0%} idle (waiting in select/epoll), {busy} busy\n")
    print("inclusive  self  function (share of busy samples; frames in every stack left out)")
    common = [name for name, count in inclusive.items() if count >= 0.99 * busy and not own[name]]
    for name, count in [(n, c) for n, c in inclusive.most_common() if n not in common][: args.top]:
        print(f"{count / busy:8.1%} {own[name] / busy:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
