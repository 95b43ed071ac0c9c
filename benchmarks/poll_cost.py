"""CPU per poll: what one ``GET /jobs/<id>`` costs the triggerer's event loop, by way of sending it.

    python benchmarks/poll_cost.py            # 3 x 3,000 requests per variant, interleaved
    python benchmarks/poll_cost.py --quick    # 3 x 1,000

The emulator runs in its own process (no latency); this process sends the requests, 8 at a
time, the way the triggers' shared client does, and measures its own CPU time (user + system)
per request. Variants:

* ``httpx``: ``httpx.AsyncClient.request`` on a pooled client (the transport before this change);
* ``hook, httpx``: the trigger's whole poll, ``hook.afetch_job`` with the direct path off;
* ``hook, direct``: the same with ``hooks.transport.DIRECT_POOL_GETS`` on (the default): the GET goes
  straight to the client's httpcore pool with prebuilt headers, no cookie jar, no URL merging;
* ``httpcore``: the bare pool, for the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import TOKEN, EmulatorConfig, EmulatorProcess, connection_env, median, print_machine, table

CONCURRENCY = 8


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _drive(send: Callable[[], Awaitable[Any]], count: int) -> tuple[float, float]:
    """(CPU ms per request, requests per second) for ``count`` requests, ``CONCURRENCY`` at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with gate:
            await send()

    for _ in range(50):  # warm
        await send()
    cpu, wall = _cpu(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    cpu, wall = _cpu() - cpu, time.perf_counter() - wall
    return cpu / count * 1000, count / wall


async def measure(base_url: str, job_id: str, count: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    import httpcore
    import httpx

    from airflow_provider_midjourney.hooks import transport as base
    from airflow_provider_midjourney.hooks.useapi_v3 import UseapiV3Hook
    from airflow_provider_midjourney.retry import NO_RETRY

    path = f"/v3/midjourney/jobs/{job_id}"
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    client = httpx.AsyncClient(base_url=base_url, limits=limits, headers={"Accept": "application/json"})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    pool = httpcore.AsyncConnectionPool(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    url = f"{base_url}{path}".encode()
    headers = [(b"Accept", b"application/json"), (b"Authorization", f"Bearer {TOKEN}".encode())]
    hook = UseapiV3Hook("midjourney_default", retry=NO_RETRY, shared_async_client=True)

    async def via_httpx() -> None:
        (await client.request("GET", path, headers=auth)).json()

    async def via_httpcore() -> None:
        response = await pool.request("GET", url, headers=headers)
        httpx.Response(response.status, headers=response.headers, content=response.content).json()

    async def via_hook() -> None:
        await hook.afetch_job(job_id)

    async def hook_httpx() -> None:
        base.DIRECT_POOL_GETS = False
        await via_hook()

    async def hook_direct() -> None:
        base.DIRECT_POOL_GETS = True
        await via_hook()

    variants = {"httpx": via_httpx, "hook, httpx": hook_httpx, "hook, direct": hook_direct, "httpcore": via_httpcore}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, send in variants.items():
            results[name].append(await _drive(send, count))
    base.DIRECT_POOL_GETS = True
    await hook.aclose()
    await client.aclose()
    await pool.aclose()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=None, help="requests per measurement (3000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    count = args.count or (1000 if args.quick else 3000)
    print("Machine:")
    print_machine()
    import os

    with EmulatorProcess(EmulatorConfig(complete_after=(3600.0, 3600.0))) as emu:
        os.environ.update(connection_env(emu.base_url))
        [job] = emu.create_jobs(1)
        results = asyncio.run(measure(emu.base_url, job.job_id, count, args.rounds))
    rows = []
    reference = median([r[0] for r in results["hook, httpx"]])
    for name, runs in results.items():
        cpu = median([r[0] for r in runs])
        rows.append(
            [
                name,
                f"{cpu:.3f}",
                f"{min(r[0] for r in runs):.3f}-{max(r[0] for r in runs):.3f}",
                f"{median([r[1] for r in runs]):,.0f}",
                f"{(cpu / reference - 1) * 100:+.0f} %" if name.startswith("hook") else "",
            ]
        )
    print(f"\n{count:,} GET /jobs/<id> per measurement, {CONCURRENCY} at a time, {args.rounds} rounds (median)\n")
    print(table(["variant", "CPU ms per poll", "range", "requests/s", "vs hook, httpx"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
