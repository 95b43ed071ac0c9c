"""Emulator throughput: how many requests per second the bundled emulator serves on this machine.

    python benchmarks/emulator_throughput.py           # 5 s per row, 3 times
    python benchmarks/emulator_throughput.py --quick   # 2 s per row, once

The emulator runs in its own process (as in the other benchmarks). The load comes from a minimal
keep-alive HTTP/1.1 client on raw asyncio sockets, so that the emulator, not the client, is the
bottleneck; one row uses ``httpx.AsyncClient`` instead (what the hook uses) for comparison. Read
the triggerer numbers against these: polling N jobs every P seconds asks for N/P requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import TOKEN, EmulatorConfig, EmulatorProcess, median, print_machine, table


async def _raw_worker(
    host: str, port: int, requests: list[bytes], end: float, statuses: Counter[int], offset: int
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        while time.monotonic() < end:
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            statuses[status] += 1
    finally:
        writer.close()


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: emulator\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()


def _post(path: str, body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: emulator\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def raw_load(
    base_url: str, requests: list[bytes], concurrency: int, seconds: float
) -> tuple[float, Counter[int]]:
    host, port = base_url.split("//", 1)[1].rsplit(":", 1)
    statuses: Counter[int] = Counter()
    end = time.monotonic() + seconds
    start = time.monotonic()
    await asyncio.gather(*(_raw_worker(host, int(port), requests, end, statuses, k) for k in range(concurrency)))
    return sum(statuses.values()) / (time.monotonic() - start), statuses


async def httpx_load(base_url: str, paths: list[str], concurrency: int, seconds: float) -> tuple[float, Counter[int]]:
    import httpx

    statuses: Counter[int] = Counter()
    end = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits) as client:

        async def worker(k: int) -> None:
            i = k
            while time.monotonic() < end:
                response = await client.get(paths[i % len(paths)])
                i += 1
                statuses[response.status_code] += 1

        start = time.monotonic()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return sum(statuses.values()) / (time.monotonic() - start), statuses


def _cpu(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=None, help="seconds per row (5)")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per row, interleaved (3)")
    parser.add_argument("--quick", action="store_true", help="2 s per row, 1 measurement")
    parser.add_argument("--json", default=None, help="write the raw results to this file")
    args = parser.parse_args(argv)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    if args.quick:
        args.repeat = 1

    print("Machine:")
    print_machine()
    # Short jobs on many channels, so POSTs find a free channel slot (15 per channel).
    config = EmulatorConfig(complete_after=(0.1, 0.2), start_after=0.02, progress_after=0.05, channels=40)
    rows, raw = [], []
    with EmulatorProcess(config) as emu:
        jobs = emu.create_jobs(300)
        time.sleep(0.3)  # a mix: all completed (the largest answers); running ones are similar in cost
        paths = [f"/v3/midjourney/jobs/{j.job_id}" for j in jobs]
        gets = [_get(p) for p in paths]
        posts = [
            _post("/v3/midjourney/jobs/imagine", {"prompt": f"throughput {i}", "stream": False}) for i in range(50)
        ]
        cases = [
            ("GET /jobs/<id>", "raw asyncio", 1, lambda c: raw_load(emu.base_url, gets, c, seconds)),
            ("GET /jobs/<id>", "raw asyncio", 8, lambda c: raw_load(emu.base_url, gets, c, seconds)),
            ("GET /jobs/<id>", "raw asyncio", 64, lambda c: raw_load(emu.base_url, gets, c, seconds)),
            ("GET /jobs/<id>", "httpx.AsyncClient", 8, lambda c: httpx_load(emu.base_url, paths, c, seconds)),
            ("POST /jobs/imagine", "raw asyncio", 8, lambda c: raw_load(emu.base_url, posts, c, seconds)),
        ]
        measured: dict[int, list[tuple[float, float, Counter[int]]]] = {i: [] for i in range(len(cases))}
        for repeat in range(args.repeat):  # interleaved, so a noisy minute hits every row alike
            for i, (route, client, concurrency, load) in enumerate(cases):
                emu.reset_requests()
                cpu0 = _cpu(emu.process.pid)  # type: ignore[arg-type]
                rate, statuses = asyncio.run(load(concurrency))
                cpu = _cpu(emu.process.pid) - cpu0  # type: ignore[arg-type]
                count = sum(statuses.values())
                measured[i].append((rate, 1000 * cpu / count if count else float("nan"), statuses))
                print(
                    f"  [{repeat + 1}/{args.repeat}] {route} via {client} x{concurrency}: {rate:,.0f} req/s", flush=True
                )
        for i, (route, client, concurrency, _) in enumerate(cases):
            rates = [m[0] for m in measured[i]]
            statuses = sum((m[2] for m in measured[i]), Counter())
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
            cpu_ms = median([m[1] for m in measured[i]])
            rows.append(
                [
                    route,
                    client,
                    concurrency,
                    round(median(rates)),
                    f"{min(rates):,.0f}-{max(rates):,.0f}",
                    round(cpu_ms, 3),
                    shown,
                ]
            )
            raw.append({"route": route, "client": client, "concurrency": concurrency, "rates": rates, "cpu_ms": cpu_ms})
    print("\n## Emulator throughput (emulator in its own process)\n")
    headers = ["route", "client", "concurrency", "requests/s (median)", "range", "emulator CPU ms/request", "statuses"]
    print(table(headers, rows))
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
