"""Benchmark: what the raw layer's worker costs over a hand-written loop, with no server (not a test).

    python bench/raw_cost.py [--workload tpcb] [--ops 40000] [--repeat 5]

bench/parity.py compares the runner with bench/plain.py against a real server, where 40 backends
share the two cores with the client and round-to-round spread is several percent. This isolates
the client: both sides run the same tpcb (or seed) raw ops against a stand-in asyncpg connection
whose every call only yields to the event loop once. On one side, plain.py's own raw-asyncpg loop
(40 slots, a connection each); on the other, the runner's whole worker body (`run_worker`:
window mode with 40 lanes, the slot pool, the recorder, the anatomy, the emitter thread, the lag
probe), in this process, alternating. Prints the CPU time per op of each (the body's over its
measured part, as the run document reports it) and the difference: the harness's own cost per op.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import plain  # noqa: E402

from runner.config import Config  # noqa: E402
from runner.worker import raw  # noqa: E402
from runner.worker.body import run_worker  # noqa: E402
from runner.worker.channel import Channel  # noqa: E402
from runner.worker.plan import WorkerPlan  # noqa: E402

DSN = "postgresql://bench@127.0.0.1:1/none"  # never connected to: the driver is the stand-in below
SLOTS = 40


class _Transaction:
    async def __aenter__(self) -> None:
        await asyncio.sleep(0)

    async def __aexit__(self, *_: object) -> None:
        await asyncio.sleep(0)


class StandIn:
    """The asyncpg calls the raw ops make, each answered after one pass of the event loop."""

    async def execute(self, sql: str, *args: Any) -> str:
        await asyncio.sleep(0)
        return "OK"

    async def fetch(self, sql: str, *args: Any) -> list[tuple[int, str]]:
        await asyncio.sleep(0)
        return [(1, "x"), (2, "y"), (3, "z")]

    def transaction(self) -> _Transaction:
        return _Transaction()

    def is_closed(self) -> bool:
        return False

    def is_in_transaction(self) -> bool:
        return False

    async def close(self) -> None:
        return None


async def _connect(*_: object, **__: object) -> StandIn:
    return StandIn()


async def _settings(_: object, __: object, names: list[str]) -> dict[str, str]:
    return dict.fromkeys(names, "")


def plain_us(workload: str, ops: int) -> float:
    args = argparse.Namespace(dsn=DSN, ops=ops, concurrency=SLOTS, workload=workload)
    start = time.process_time()
    uvloop.run(plain.raw_asyncpg(args))
    return (time.process_time() - start) * 1e6 / ops


def runner_us(workload: str, ops: int, anatomy: bool) -> float:
    config = Config(workload=workload, layer="raw", mode="window", chunk=SLOTS, ops=ops, dsn=DSN, anatomy=anatomy)
    plan = WorkerPlan(0, config, DSN, ops, 0, 1, SLOTS, 0, {})
    go = threading.Event()
    go.set()
    lines: list[bytes] = []
    run_worker(plan, Channel(lines.append, 0), go, threading.Event())
    final = orjson.loads(lines[-1])
    assert final["status"] == "done", final
    return float(final["cpu_measured_s"]) * 1e6 / ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="tpcb", choices=("tpcb", "seed"))
    parser.add_argument("--ops", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    raw.AsyncDriver.connect = lambda self: _connect()  # type: ignore[method-assign]
    raw.AsyncDriver.settings = _settings  # type: ignore[method-assign,assignment]
    plain.asyncpg.connect = _connect
    sides = {
        "plain": lambda: plain_us(args.workload, args.ops),
        "runner": lambda: runner_us(args.workload, args.ops, True),
        "runner-no-anatomy": lambda: runner_us(args.workload, args.ops, False),
    }
    for run in sides.values():  # one unmeasured pass each: imports, caches
        run()
    rounds: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(args.repeat):
        for name in list(sides) if i % 2 == 0 else list(sides)[::-1]:
            rounds[name].append(round(sides[name](), 2))
    medians = {name: statistics.median(values) for name, values in rounds.items()}
    print(json.dumps({
        "workload": args.workload, "ops": args.ops, "repeat": args.repeat, "cpu_us_per_op_rounds": rounds,
        "cpu_us_per_op": medians,
        "harness_us_per_op": round(medians["runner"] - medians["plain"], 2),
        "harness_us_per_op_no_anatomy": round(medians["runner-no-anatomy"] - medians["plain"], 2),
    }, indent=1))


if __name__ == "__main__":
    main()
