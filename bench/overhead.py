"""Benchmark: the harness's own cost per op, with the no-op workload (not a test).

    python bench/overhead.py [--ops 300000] [--repeat 3]

In one run: (1) a bare uvloop loop gathering no-op coroutines 40 at a time, nothing recorded;
(2) the same with the runner's timing and Recorder; (3) `python -m runner --workload noop
--chunk 40` end to end (pipe, collector and all), and (4) the sync mode's loop likewise. Prints
µs per op for each and the harness cost, (3) minus (1). Goal: <= 5 µs per op.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import uvloop

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.worker.recorder import Recorder  # noqa: E402

CHUNK = 40


async def _noop() -> None:
    return None


async def bare(ops: int, timed: bool) -> float:
    recorder = Recorder()

    async def execute() -> None:
        start = time.perf_counter_ns()
        await _noop()
        recorder.record("noop", time.perf_counter_ns() - start, None)

    make = execute if timed else _noop
    start = time.perf_counter_ns()
    for _ in range(0, ops, CHUNK):
        await asyncio.gather(*(make() for _ in range(CHUNK)))
    return (time.perf_counter_ns() - start) / 1000 / ops


def tool(ops: int, mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "runner", "--workload", "noop", "--mode", mode, "--chunk", str(CHUNK),
         "--ops", str(ops), "--quiet"],
        check=True, capture_output=True, text=True, cwd=REPO,
    ).stdout
    return 1e6 / float(json.loads(out)["totals"]["ops_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"bare_us": [], "bare_timed_us": [], "runner_chunked_us": [], "runner_sync_us": []}
    for _ in range(args.repeat):
        results["bare_us"].append(uvloop.run(bare(args.ops, timed=False)))
        results["bare_timed_us"].append(uvloop.run(bare(args.ops, timed=True)))
        results["runner_chunked_us"].append(tool(args.ops, "chunked"))
        results["runner_sync_us"].append(tool(args.ops, "sync"))
    medians = {k: round(statistics.median(v), 3) for k, v in results.items()}
    print(json.dumps({
        "ops": args.ops, "repeat": args.repeat,
        "us_per_op": {k: [round(x, 3) for x in v] for k, v in results.items()},
        "medians": medians,
        "harness_us_per_op": round(medians["runner_chunked_us"] - medians["bare_us"], 3),
        "runner_ops_per_s_per_process": round(1e6 / medians["runner_chunked_us"]),
    }))


if __name__ == "__main__":
    main()
