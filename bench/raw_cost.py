"""Benchmark: what the raw layer's worker costs over a hand-written loop, with no server (not a test).

    python bench/raw_cost.py [--workload tpcb] [--ops 40000] [--repeat 5]
    python bench/raw_cost.py --instructions [--workload tpcb] [--ops 12000] [--hash-seeds 1]

bench/parity.py compares the runner with bench/plain.py against a real server, where 40 backends
share the two cores with the client and round-to-round spread is several percent. This isolates
the client: both sides run the same tpcb (or seed) raw ops against a stand-in asyncpg connection
whose every call only yields to the event loop once. On one side, plain.py's own raw-asyncpg loop
(40 slots, a connection each); on the other, the runner's whole worker body (`run_worker`:
window mode with 40 lanes, the slot pool, the recorder, the anatomy, the emitter thread, the lag
probe), in this process, alternating. Prints the CPU time per op of each (the body's over its
measured part, as the run document reports it) and the difference: the harness's own cost per op.

CPU time on this 2-core machine moves by more than the harness costs. `--instructions` counts
instead: each side runs alone under valgrind (cachegrind, no cache simulation), once with a fifth
of --ops and once with --ops, and the difference of their instruction counts over the difference
of their ops is its instructions per op, start-up and imports cancelled out. Each run has the
str hash seed fixed (PYTHONHASHSEED, 0 and up with --hash-seeds): with it the count repeats to a
few dozen instructions per op, whatever else the machine is doing; with a random one it moved by
about a thousand (tpcb: 100,378-101,258 for the script in six runs), as dicts and sets laid out
differently. What the worker does by the clock is left out of that count (one interval record
a second, the lag probe's 100 wake-ups a second, the stop poll's 20): valgrind runs the code
tens of times slower, so per op it would fire tens of times as often as it does natively, where
it costs ~0.2 µs per op.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
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

from runner.resolve import spec  # noqa: E402
from runner.spec import RunSpec  # noqa: E402
from runner.worker import body, drivers  # noqa: E402
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


async def _no_probe(_: object) -> None:
    await asyncio.Event().wait()  # cancelled with the measured part, as the probe is


class _NoThreadProbe:
    """The sync mode's lag probe, not started."""

    def __init__(self, _: object) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def body_final(config: RunSpec, dsn: str, pool_size: int, clocked: bool = True) -> dict[str, Any]:
    """The runner's worker body (`run_worker`), run once in this process with `config`; its final
    record. Without `clocked`, nothing runs by the clock: no lag probe, no interval record but
    the last (config.interval_s is the caller's), and the stop poll once an hour (under valgrind
    or a tracer the code runs tens of times slower, so per op these would fire that much more
    often than they do natively)."""
    if not clocked:
        body.probe_loop = _no_probe  # type: ignore[assignment]
        body.ThreadProbe = _NoThreadProbe  # type: ignore[assignment,misc]
        body.STOP_POLL_S = 3600.0
    assert config.ops is not None
    plan = WorkerPlan(0, config, dsn, config.ops, 0, 1, pool_size, 0, {}, {})
    go = threading.Event()
    go.set()
    lines: list[bytes] = []
    run_worker(plan, Channel(lines.append, 0), go, threading.Event())
    final: dict[str, Any] = orjson.loads(lines[-1])
    assert final["status"] == "done", final
    return final


def runner_us(workload: str, ops: int, anatomy: bool, clocked: bool = True) -> float:
    """The worker body's CPU per op (for --instructions, not `clocked`)."""
    config = spec(
        workload=workload, layer="raw", mode="window", chunk=SLOTS, ops=ops, dsn=DSN, anatomy=anatomy,
        interval_s=1.0 if clocked else 86_400.0,
    )
    return float(body_final(config, DSN, SLOTS, clocked)["cpu_measured_s"]) * 1e6 / ops


def valgrind_instructions(command: list[str], hash_seed: int, env: dict[str, str] | None = None) -> int:
    """Instructions executed by one run of `command` (a Python process), start to exit, counted by
    valgrind, with the str hash seed fixed: dicts and sets then lay out the same way each run,
    and the count repeats to a few dozen instructions per op (with a random seed, to ~1,000 on
    tpcb)."""
    if shutil.which("valgrind") is None:
        raise SystemExit(f"{Path(command[1]).name}: --instructions needs valgrind (Debian: apt-get install valgrind)")
    valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    done = subprocess.run(valgrind + command, capture_output=True, text=True, check=True,
                          env={**(os.environ if env is None else env), "PYTHONHASHSEED": str(hash_seed)})
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise SystemExit(f"{Path(command[1]).name}: no instruction count in valgrind's output: {done.stderr[-300:]}")
    return int(found.group(1).replace(",", ""))


def _instructions(side: str, workload: str, ops: int, hash_seed: int) -> int:
    return valgrind_instructions([sys.executable, __file__, "--one", side, "--workload", workload, "--ops", str(ops)], hash_seed)


def instructions(workload: str, ops: int, sides: list[str], hash_seeds: int) -> None:
    """Each side's instructions per op: the mean over hash seeds 0..hash_seeds-1 (one layout of
    the dicts can favour one side's lookups by a few hundred instructions per op)."""
    low = max(1, ops // 5)
    per_seed = {
        side: [(_instructions(side, workload, ops, seed) - _instructions(side, workload, low, seed)) / (ops - low) for seed in range(hash_seeds)]
        for side in sides
    }
    per_op = {side: round(statistics.mean(counts)) for side, counts in per_seed.items()}
    print(json.dumps({
        "workload": workload, "ops": [low, ops], "hash_seeds": hash_seeds,
        "instructions_per_op_per_hash_seed": {side: [round(c) for c in counts] for side, counts in per_seed.items()},
        "instructions_per_op": per_op,
        "harness_instructions_per_op": per_op["runner"] - per_op["plain"],
        "harness_instructions_per_op_no_anatomy": per_op["runner-no-anatomy"] - per_op["plain"],
        "runner_over_plain": round(per_op["runner"] / per_op["plain"], 4),
    }, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="tpcb", choices=("tpcb", "seed"))
    parser.add_argument("--ops", type=int, default=None, help="40,000 (12,000 with --instructions)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--instructions", action="store_true", help="count instructions per op under valgrind instead of CPU time")
    parser.add_argument("--hash-seeds", type=int, default=1, help="--instructions: average over this many str hash seeds (from 0)")
    parser.add_argument("--one", choices=("plain", "runner", "runner-no-anatomy"), help=argparse.SUPPRESS)  # one side, once
    args = parser.parse_args()
    ops = args.ops or (12_000 if args.instructions else 40_000)
    drivers.AsyncpgDriver.connect = lambda self: _connect()  # type: ignore[method-assign]
    drivers.AsyncpgDriver.settings_of = _settings  # type: ignore[method-assign,assignment]
    plain.asyncpg.connect = _connect
    sides = {
        "plain": lambda: plain_us(args.workload, ops),
        "runner": lambda: runner_us(args.workload, ops, True),
        "runner-no-anatomy": lambda: runner_us(args.workload, ops, False),
    }
    if args.instructions:
        instructions(args.workload, ops, list(sides), max(1, args.hash_seeds))
        return
    if args.one:  # under valgrind, for --instructions
        us = plain_us(args.workload, ops) if args.one == "plain" else runner_us(args.workload, ops, args.one == "runner", clocked=False)
        print(json.dumps({"side": args.one, "cpu_us_per_op": us}))
        return
    for run in sides.values():  # one unmeasured pass each: imports, caches
        run()
    rounds: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(args.repeat):
        for name in list(sides) if i % 2 == 0 else list(sides)[::-1]:
            rounds[name].append(round(sides[name](), 2))
    medians = {name: statistics.median(values) for name, values in rounds.items()}
    print(json.dumps({
        "workload": args.workload, "ops": ops, "repeat": args.repeat, "cpu_us_per_op_rounds": rounds,
        "cpu_us_per_op": medians,
        "harness_us_per_op": round(medians["runner"] - medians["plain"], 2),
        "harness_us_per_op_no_anatomy": round(medians["runner-no-anatomy"] - medians["plain"], 2),
    }, indent=1))


if __name__ == "__main__":
    main()
