"""What failover and cost reporting add to a submission, on the emulator over loopback.

Three timings, each the median of ``--rounds`` (bounded) rounds, in milliseconds:

- ``direct``: one imagine submitted on the first connection (useapi v3 dialect), no fallbacks;
- ``pass_over``: the first connection answers 402, the job goes to the second (ImaginePro dialect):
  the price of a failover is the refused request plus the second submit;
- ``balance``: the account-balance read the operator makes after a completed ImaginePro job.

Connection lookups (environment variables here) and request checks are included, as in a task.
Only loopback; the emulator runs in this process.

    python benchmarks/failover.py --rounds 30
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TOKEN, isolate_airflow_home

MAX_ROUNDS = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, MAX_ROUNDS))
    isolate_airflow_home()

    from airflow_provider_midjourney.failover import ConnectionChain
    from airflow_provider_midjourney.hooks.base import hook_for_connection
    from airflow_provider_midjourney.job_requests import ImagineRequest
    from airflow_provider_midjourney.operators.outcome import account_balance
    from airflow_provider_midjourney.retry import NO_RETRY
    from airflow_provider_midjourney.testing import JobTimings, MidjourneyEmulator

    log = logging.getLogger("benchmark")
    timings = JobTimings(start_after=0.01, progress_after=0.02, complete_after=0.05)
    with MidjourneyEmulator(token=TOKEN, timings=timings, max_jobs=MAX_ROUNDS * 3) as emulator:
        for name, conn_type in (("BENCH_A", "midjourney"), ("BENCH_B", "imaginepro")):
            conn = {"conn_type": conn_type, "host": emulator.base_url, "password": TOKEN}
            os.environ[f"AIRFLOW_CONN_{name}"] = json.dumps(conn)

        def submit(conn_ids: list[str], prompt: str) -> float:
            started = time.perf_counter()
            chain = ConnectionChain.prepare(
                conn_ids,
                lambda conn_id: hook_for_connection(conn_id, retry=NO_RETRY),
                lambda hook: (
                    hook.check_request(ImagineRequest.build(prompt=prompt, reply_ref=prompt)),
                    prompt,
                ),
                log,
            )
            chain.submit(lambda request, hook: hook.submit_job(request), skip_unsupported=False)
            return (time.perf_counter() - started) * 1000

        direct, pass_over, balance = [], [], []
        for n in range(rounds):
            emulator.reset()
            direct.append(submit(["bench_a"], f"direct {n}"))
            emulator.fail_next(1, status=402, path_prefix="/v3/midjourney/jobs/imagine", method="POST")
            pass_over.append(submit(["bench_a", "bench_b"], f"failover {n}"))
            started = time.perf_counter()
            account_balance("bench_b", log)
            balance.append((time.perf_counter() - started) * 1000)

    result = {
        "rounds": rounds,
        "direct_ms": round(statistics.median(direct), 2),
        "pass_over_ms": round(statistics.median(pass_over), 2),
        "balance_ms": round(statistics.median(balance), 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
