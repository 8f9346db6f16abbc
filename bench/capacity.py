"""Benchmark: does `runner capacity` find a capacity that is known in advance? (not a test)

    python bench/capacity.py [--pools 4 10] [--step 5s] [--precision 5%] [--repeat 1]

The `sleep` workload spends 20 ms per op in `SELECT pg_sleep(0.02)` on the server. Behind a pool
of N connections it can serve at most N / 20 ms ops/s: that is the prediction. A second
prediction uses what an op really costs: N / (mean latency of the first, lightly loaded step),
which adds the round trips around the sleep. Every search runs on one embedded server, SLO
`sleep.p99 < 100ms`; prints the capacity found and its ratio to both predictions (goal: within
10 % of N / 20 ms).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.dsn import child_env  # noqa: E402
from runner.server.embedded import start_embedded  # noqa: E402
from workloads.sleep import SLEEP_S  # noqa: E402

SLO = "sleep.p99 < 100ms"


def search(dsn: str, pool: int, step: str, precision: str) -> dict:  # type: ignore[type-arg]
    argv = [
        sys.executable, "-m", "runner", "capacity", "--workload", "sleep", "--pool-size", str(pool), "--slo", SLO,
        "--start-rate", str(round(pool / SLEEP_S / 8)), "--step", step, "--step-warmup", "1s", "--precision", precision,
        "--quiet",
    ]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=REPO, env=child_env(dsn)).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, nargs="+", default=[4, 10])
    parser.add_argument("--step", default="5s")
    parser.add_argument("--precision", default="5%")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    server = start_embedded({})
    try:
        print(f"SLO {SLO}; --step {args.step}, --precision {args.precision}; one embedded server", file=sys.stderr)
        print("| pool | predicted N/20ms | N/(low-load mean latency) | found | first failing | steps | found/predicted | found/(N/latency) |")
        print("|---|---|---|---|---|---|---|---|")
        for _ in range(args.repeat):
            for pool in args.pools:
                doc = search(server.dsn, pool, args.step, args.precision)
                predicted = pool / SLEEP_S
                served = pool / (doc["steps"][0]["latency_ms"]["sleep"]["mean"] / 1000)
                found = doc["capacity_per_s"]
                print(
                    f"| {pool} | {predicted:.0f} | {served:.0f} | {found:.1f} | {doc['first_failing_per_s']:.1f} | {len(doc['steps'])} "
                    f"| {found / predicted:.3f} | {found / served:.3f} |",
                    flush=True,
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
