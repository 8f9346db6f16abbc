"""Benchmark: the harness's own cost per op, with the no-op workload (not a test).

    python bench/overhead.py [--ops 300000] [--repeat 3]

In one run: (1) a bare uvloop loop gathering no-op coroutines 40 at a time, nothing recorded;
(2) the same with the runner's timing and Recorder; (3) `python -m runner --workload noop
--chunk 40` end to end (pipe, collector and all), and (4) the sync mode's loop likewise. Prints
µs per op for each and the harness cost, (3) minus (1). Goal: <= 5 µs per op.

The cost of looking inside ops (--anatomy, on by default): (3) and (4) again with --no-anatomy,
and the seed workload's ops/s with and without it, alternating on one embedded server. Goal: <= 2
µs per no-op op and <= 3 % of the seed's throughput, or it could not be on by default.
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
from typing import Any

import uvloop

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.dsn import child_env  # noqa: E402
from runner.server.embedded import start_embedded  # noqa: E402
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


def _run(*args: str, dsn: str | None = None) -> dict[str, Any]:
    env = child_env(dsn) if dsn is not None else None
    out = subprocess.run([sys.executable, "-m", "runner", *args, "--quiet"], check=True, capture_output=True, text=True, cwd=REPO, env=env).stdout
    doc: dict[str, Any] = json.loads(out)
    return doc


def _ops_per_s(*args: str) -> float:
    return float(_run(*args)["totals"]["ops_per_s"])


def tool(ops: int, mode: str, anatomy: bool = True) -> float:
    flag = "--anatomy" if anatomy else "--no-anatomy"
    return 1e6 / _ops_per_s("--workload", "noop", "--mode", mode, "--chunk", str(CHUNK), "--ops", str(ops), flag)


def seed_anatomy(ops: int, rounds: int) -> dict[str, Any]:
    """The seed workload with and without --anatomy, alternating, on one server: ops/s, and the
    workers' CPU per op (less noisy on a shared machine than throughput)."""
    server = start_embedded()
    runs: dict[str, dict[str, list[float]]] = {"on": {"ops_per_s": [], "cpu_us_per_op": []}, "off": {"ops_per_s": [], "cpu_us_per_op": []}}
    try:
        for i in range(rounds):
            for flag in (("--anatomy", "--no-anatomy") if i % 2 == 0 else ("--no-anatomy", "--anatomy")):
                doc = _run("--ops", str(ops), flag, dsn=server.dsn)
                side = runs["on" if flag == "--anatomy" else "off"]
                side["ops_per_s"].append(doc["totals"]["ops_per_s"])
                side["cpu_us_per_op"].append(round(doc["client"]["workers_cpu_s"] / doc["totals"]["ok"] * 1e6, 1))
    finally:
        server.stop()
    cpu_diffs = [a - b for a, b in zip(runs["on"]["cpu_us_per_op"], runs["off"]["cpu_us_per_op"], strict=True)]
    median = {side: {k: statistics.median(v) for k, v in figures.items()} for side, figures in runs.items()}
    return {
        "ops": ops,
        "rounds": rounds,
        "runs": runs,
        "on_over_off_ops_per_s": round(median["on"]["ops_per_s"] / median["off"]["ops_per_s"], 3),
        "cpu_us_per_op_added": round(statistics.median(cpu_diffs), 1),
        "cpu_share_added": round(statistics.median(cpu_diffs) / median["off"]["cpu_us_per_op"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed-ops", type=int, default=3000, help="ops per seed run for the --anatomy A/B (0: skip it)")
    parser.add_argument("--seed-rounds", type=int, default=4)
    args = parser.parse_args()
    results: dict[str, list[float]] = {
        "bare_us": [], "bare_timed_us": [], "runner_chunked_us": [], "runner_sync_us": [],
        "runner_chunked_no_anatomy_us": [], "runner_sync_no_anatomy_us": [],
    }
    for _ in range(args.repeat):
        results["bare_us"].append(uvloop.run(bare(args.ops, timed=False)))
        results["bare_timed_us"].append(uvloop.run(bare(args.ops, timed=True)))
        results["runner_chunked_us"].append(tool(args.ops, "chunked"))
        results["runner_chunked_no_anatomy_us"].append(tool(args.ops, "chunked", anatomy=False))
        results["runner_sync_us"].append(tool(args.ops, "sync"))
        results["runner_sync_no_anatomy_us"].append(tool(args.ops, "sync", anatomy=False))
    medians = {k: round(statistics.median(v), 3) for k, v in results.items()}
    print(json.dumps({
        "ops": args.ops, "repeat": args.repeat,
        "us_per_op": {k: [round(x, 3) for x in v] for k, v in results.items()},
        "medians": medians,
        "harness_us_per_op": round(medians["runner_chunked_us"] - medians["bare_us"], 3),
        "runner_ops_per_s_per_process": round(1e6 / medians["runner_chunked_us"]),
        "anatomy_us_per_op": {
            "chunked": round(medians["runner_chunked_us"] - medians["runner_chunked_no_anatomy_us"], 3),
            "sync": round(medians["runner_sync_us"] - medians["runner_sync_no_anatomy_us"], 3),
        },
        "seed_anatomy": seed_anatomy(args.seed_ops, args.seed_rounds) if args.seed_ops else None,
    }))


if __name__ == "__main__":
    main()
