"""The harness's own work per op, counted against a real server: bytecodes, or instructions (not a test).

    python bench/count.py [--workload tpcb] [--cells orm-bare core-bare ...] [--ops 800] [--in-flight 1]
    python bench/count.py --instructions [--workload tpcb] [--cells orm-bare ...] [--ops 400]

bench/parity.py times the runner against bench/plain.py on two shared cores, where rounds of the
same program land several percent apart. This counts instead, one side at a time: the runner's
worker body (`run_worker`, run in the counting process as bench/raw_cost.py runs it: its lanes,
pool, recorder and anatomy) or bench/plain.py's loop for the same cell, each in a process of its
own against one embedded server, on freshly filled tables, once with a quarter of --ops and once
with --ops. The difference of the two counts over the difference of the ops is its count per op,
with imports, connecting, start-up and the final record cancelled out.

By default it counts Python bytecodes, by code object (Python's tracer with f_trace_opcodes),
and puts each code object in one of three parts: the harness (runner/), the op's own code
(workloads/ for the runner, bench/plain.py for the script) and everything else (SQLAlchemy, the
drivers' Python, asyncio). A harness that made the libraries do more per op would show in the
third part. The count repeats to a few bytecodes per op, whatever else the machine is doing.

Bytecodes are not equal in cost: a driver's C or Cython (asyncpg's protocol, uvloop, libpq) runs
inside one of them, and the harness's own are mostly attribute and integer work. `--instructions`
counts the machine instructions of the same runs instead (valgrind's cachegrind, no cache
simulation, str hash seed 0): what the CPU executes, without what a cache miss costs.

--in-flight sets both sides' concurrency (lanes and pool, or threads): 1 by default, where a
count against the server repeats to a few hundred instructions per op; with many in flight the
replies arrive in other batches from run to run and the instructions per op move by thousands
(the bytecodes do not).

What the worker does by the clock is left out (the lag probe, the interval records but the last,
the stop poll): under the tracer or valgrind the code runs tens of times slower, so per op it
would fire tens of times as often as it does natively.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import parity  # noqa: E402
import plain  # noqa: E402
import raw_cost  # noqa: E402

from runner.dsn import child_env  # noqa: E402
from runner.resolve import spec  # noqa: E402
from runner.server.embedded import start_embedded  # noqa: E402
from runner.spec import RunSpec  # noqa: E402

PARTS = ("harness", "op code", "libraries")
SHOWN = 0.5  # a code object whose bytecodes per op differ by less between the sides is not listed
PREFIXES = {str(REPO) + "/": "", sysconfig.get_paths()["purelib"] + "/": "", sysconfig.get_paths()["stdlib"] + "/": "stdlib/"}


def count_bytecodes(run: Callable[[], object]) -> Counter[str]:
    """Bytecodes executed while `run()` runs, in any thread it starts, by code object."""
    counts: defaultdict[CodeType, int] = defaultdict(int)

    def local(frame: FrameType, event: str, _: Any) -> Any:
        if event == "opcode":
            counts[frame.f_code] += 1
        return local

    def tracer(frame: FrameType, _: str, __: Any) -> Any:
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return local

    threading.settrace(tracer)
    sys.settrace(tracer)
    try:
        run()
    finally:
        sys.settrace(None)
        threading.settrace(None)
    named: Counter[str] = Counter()
    for code, count in counts.items():
        named[code_name(code)] += count
    return named


def code_name(code: CodeType) -> str:
    """`path:qualname:line`, the path from the repository, site-packages or the standard library."""
    path = code.co_filename
    for prefix, shown in PREFIXES.items():
        if path.startswith(prefix):
            path = shown + path.removeprefix(prefix)
            break
    qualname = getattr(code, "co_qualname", code.co_name)  # Python 3.11+: the class and enclosing functions too
    return f"{path}:{qualname}:{code.co_firstlineno}"


def part(name: str) -> str:
    """Which of PARTS a code object belongs to."""
    if name.startswith("runner/"):
        return "harness"
    return "op code" if name.startswith(("workloads/", "bench/plain.py")) else "libraries"


def cell_config(cell: str, workload: str, ops: int, dsn: str, in_flight: int) -> RunSpec:
    """The runner's RunSpec for one of bench/parity.py's cells, with `in_flight` lanes (or threads)."""
    options: dict[str, Any] = {}
    words = iter(parity.CELLS[cell])
    for word in words:
        name = word.removeprefix("--").replace("-", "_")
        if name.startswith("no_"):
            options[name.removeprefix("no_")] = False
        else:
            value = next(words)
            options[name] = int(value) if value.isdigit() else value
    options["threads" if options["mode"] == "sync" else "chunk"] = in_flight
    return spec(workload=workload, ops=ops, dsn=dsn, interval_s=86_400.0, **options)


def one_side(side: str, cell: str, workload: str, ops: int, dsn: str, in_flight: int) -> Callable[[], object]:
    """One side's run of `ops` ops, on tables filled afresh now (before it is counted)."""
    parity.fresh_tables(dsn, workload)
    if side == "runner":
        config = cell_config(cell, workload, ops, dsn, in_flight)
        return lambda: raw_cost.body_final(config, dsn, in_flight, clocked=False)  # a connection per lane
    args = argparse.Namespace(cell=cell.removesuffix("-bare"), workload=workload, ops=ops, concurrency=in_flight, dsn=dsn)
    return lambda: plain.run_cell(args)


def _one_command(side: str, cell: str, workload: str, ops: int, in_flight: int, counting: str) -> list[str]:
    return [sys.executable, __file__, "--one", side, counting, "--cells", cell, "--workload", workload, "--ops", str(ops),
            "--in-flight", str(in_flight)]


def counted(side: str, cell: str, workload: str, ops: int, dsn: str, in_flight: int, instructions: bool) -> Counter[str]:
    """One side's count in a process of its own (nothing the other side ran is warm or imported
    there), with the str hash seed fixed: its bytecodes by code object, or its instructions (as
    one entry)."""
    env = child_env(dsn)  # not on argv: a command line is every local user's to read, and the DSN holds a password
    if instructions:
        command = _one_command(side, cell, workload, ops, in_flight, "--run")
        return Counter({"instructions": raw_cost.valgrind_instructions(command, 0, env)})
    command = _one_command(side, cell, workload, ops, in_flight, "--trace")
    done = subprocess.run(command, capture_output=True, text=True, check=True, env={**env, "PYTHONHASHSEED": "0"})
    return Counter(json.loads(done.stdout.splitlines()[-1]))


def per_op(side: str, cell: str, args: argparse.Namespace, dsn: str) -> dict[str, float]:
    low = max(1, args.ops // 4)
    few, many = (counted(side, cell, args.workload, n, dsn, args.in_flight, args.instructions) for n in (low, args.ops))
    return {name: (many[name] - few[name]) / (args.ops - low) for name in few.keys() | many.keys()}


def report(cell: str, runner: dict[str, float], script: dict[str, float]) -> dict[str, Any]:
    """One cell's bytecodes per op: each side's total and parts, and the code objects that differ."""
    sides = {"runner": runner, "plain": script}
    parts = {name: {side: round(sum(v for k, v in counts.items() if part(k) == name), 1) for side, counts in sides.items()} for name in PARTS}
    totals = {side: round(sum(counts.values()), 1) for side, counts in sides.items()}
    gaps = {name: runner.get(name, 0.0) - script.get(name, 0.0) for name in runner.keys() | script.keys()}
    differing = [{"code": name, "runner": round(runner.get(name, 0.0), 1), "plain": round(script.get(name, 0.0), 1)}
                 for name in sorted(gaps, key=lambda name: -abs(gaps[name])) if abs(gaps[name]) >= SHOWN]
    return {
        "cell": cell, "bytecodes_per_op": totals, "parts": parts,
        "harness_bytecodes_per_op": parts["harness"]["runner"],
        "harness_share": round(parts["harness"]["runner"] / totals["plain"], 4),
        "runner_over_plain": round(totals["runner"] / totals["plain"], 4),
        "differing": differing,
    }


def instruction_report(cell: str, runner: dict[str, float], script: dict[str, float]) -> dict[str, Any]:
    mine, theirs = round(runner["instructions"]), round(script["instructions"])
    return {"cell": cell, "instructions_per_op": {"runner": mine, "plain": theirs}, "harness_instructions_per_op": mine - theirs,
            "runner_over_plain": round(mine / theirs, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="tpcb", choices=("tpcb", "seed"))
    parser.add_argument("--cells", nargs="+", default=list(parity.CELLS), choices=list(parity.CELLS))
    parser.add_argument("--ops", type=int, help="the larger run's ops; the smaller has a quarter (default 800, 400 with --instructions)")
    parser.add_argument("--in-flight", type=int, default=1, help="each side's lanes (or threads) and connections (default 1)")
    parser.add_argument("--instructions", action="store_true", help="count machine instructions under valgrind instead of bytecodes")
    parser.add_argument("--one", choices=("runner", "plain"), help=argparse.SUPPRESS)  # one side, once, in this process
    parser.add_argument("--trace", dest="counting", action="store_const", const="trace", help=argparse.SUPPRESS)  # with --one
    parser.add_argument("--run", dest="counting", action="store_const", const="run", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"), help=argparse.SUPPRESS)  # --one's, from counted's environment
    args = parser.parse_args()
    if args.ops is None:
        args.ops = 400 if args.instructions else 800
    if args.ops < 8:
        parser.error("--ops must be at least 8")
    if args.in_flight < 1:
        parser.error("--in-flight must be at least 1")
    if args.one:
        run = one_side(args.one, args.cells[0], args.workload, args.ops, args.dsn, args.in_flight)
        if args.counting == "trace":
            print(json.dumps(count_bytecodes(run)))
        else:  # under valgrind, which counts the whole process
            run()
        return
    server = start_embedded({"synchronous_commit": "off"})
    try:
        cells = []
        for cell in args.cells:
            runner, script = (per_op(side, cell, args, server.dsn) for side in ("runner", "plain"))
            cells.append(instruction_report(cell, runner, script) if args.instructions else report(cell, runner, script))
            figures = {key: value for key, value in cells[-1].items() if key.endswith("_per_op")}
            print(f"{args.workload} {cell}: {figures}", file=sys.stderr)
    finally:
        server.stop()
    print(json.dumps({"workload": args.workload, "ops": [max(1, args.ops // 4), args.ops], "in_flight": args.in_flight,
                      "counted": "instructions" if args.instructions else "bytecodes", "cells": cells}, indent=1))


if __name__ == "__main__":
    main()
