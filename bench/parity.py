"""Parity per layer and driver: the runner against a hand-written script of the same thing (not a test).

    python bench/parity.py [--workloads tpcb seed] [--cells ...] [--ops 8000] [--repeat 4] [--pg-setting NAME=VALUE ...] [--pin] [--control]

One embedded server. For every workload and cell, each round runs the runner and the matching
bench/plain.py cell with the same op count and concurrency (40 in flight for the async cells,
8 threads for psycopg2), alternating which goes first, each on freshly created and filled tables.
Each cell starts with one unmeasured pass of each side (a quarter of the ops) to warm the server.
Prints ops/s and client CPU per op (the runner's workers, the script's process) per round, the
medians and runner/plain per cell (the ratio of the medians; goal: every cell >= 0.98), and the
median of each round's own runner/plain (paired_ratio: the two sides of a round run back to
back, so the machine's drift between rounds cancels out of it), with their geometric mean and its
95 % t-interval (paired_geomean, paired_ci95): a cell whose interval lies below 0.98 costs more
than the goal; one whose interval spans 0.98 is within what its rounds can resolve. It also prints the server's CPU
per op for each side (Linux: the postmaster's, its ended backends' and its live children's from
/proc, over the whole side: table set-up and fill included for both, and for the runner its
preflight, connection sampler and statistics probes), so a gap in ops/s can be split between the
client and the server.

`--pin` puts the server's processes on the last CPU and both sides' clients on the others (Linux),
so neither side's client shares a core, and its caches, with PostgreSQL's backends (as the
README advises for real runs); on 2 cores the server then has one core, so a cell whose client
needs less than a core is bound by the server and its ratio tests only that the runner keeps up.

`--control` runs the script a second time in every round (an A/A control: the same program twice,
with the same server CPU reads around it as the script's own side), the three sides in each of
their six orders in turn (over a multiple of 6 rounds, each side runs in each place, and right
after each other side, equally often; --repeat then defaults to 6, and another count is warned
about), and reports the control's paired
ratio to the script as the runner's is reported (control_geomean, control_ci95). The script's
ratio to itself is 1 by construction, so its interval is the machine's resolution for that cell:
how far below (and above) 1 rounds of the same program land by chance. A runner/plain interval is
then read against it, not against 1 alone.

At the end, `pooled` puts every round of every cell together (over all, per workload, and per
workload for the raw cells and the SQLAlchemy ones apart): the runner's paired ratio to the
script, and the control's, each with its 95 % interval. That resolves a cost of a few percent
that no single cell's rounds can. It also gives the runner's client and server CPU per op at
the script's rate (`at_equal_rate`): on a machine where both are busy whatever the rate, a
slower round of one and the same program spends more CPU per op, so the CPU columns' medians
carry each side's rate in them.

`--pg-setting synchronous_commit=off` starts the server with that flag, for both sides alike: a
commit then no longer waits for the disk's flush, whose latency varies from round to round by
more than the client cost being compared (tpcb commits every op, on one hot branch row).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.advise.paired import t975  # noqa: E402
from runner.dsn import child_env  # noqa: E402
from runner.server.control import connect, control_engine, prepare_schema  # noqa: E402
from runner.server.embedded import start_embedded  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

ASYNC_IN_FLIGHT = 40
SYNC_THREADS = 8
# cell -> the runner's options for the same thing
CELLS = {
    "raw-asyncpg": ["--layer", "raw", "--driver", "asyncpg", "--mode", "window", "--chunk", str(ASYNC_IN_FLIGHT)],
    "raw-psycopg": ["--layer", "raw", "--driver", "psycopg", "--mode", "window", "--chunk", str(ASYNC_IN_FLIGHT)],
    "raw-psycopg2": ["--layer", "raw", "--driver", "psycopg2", "--mode", "sync", "--threads", str(SYNC_THREADS)],
    "core": ["--layer", "core", "--mode", "window", "--chunk", str(ASYNC_IN_FLIGHT)],
    "orm": ["--layer", "orm", "--mode", "window", "--chunk", str(ASYNC_IN_FLIGHT)],
    # The same without the per-op anatomy (--no-anatomy): what the tool costs apart from it.
    "core-bare": ["--layer", "core", "--mode", "window", "--chunk", str(ASYNC_IN_FLIGHT), "--no-anatomy"],
    "orm-bare": ["--layer", "orm", "--mode", "window", "--chunk", str(ASYNC_IN_FLIGHT), "--no-anatomy"],
    "raw-asyncpg-bare": ["--layer", "raw", "--driver", "asyncpg", "--mode", "window", "--chunk", str(ASYNC_IN_FLIGHT), "--no-anatomy"],
}


REAP_S = 0.3  # for the postmaster to reap the side's last backends, whose CPU it then holds
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str]:
    """/proc/PID/stat's fields after the command name (field 3 of proc(5) is index 0)."""
    return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def server_cpu_s(postmaster: int) -> float:
    """The server's CPU so far: the postmaster's own and its reaped children's (the backends of
    closed connections), and its live children's (checkpointer, walwriter, open backends)."""
    own = _stat(postmaster)
    ticks = sum(int(field) for field in own[11:15])  # utime, stime, cutime, cstime
    for _, child in _children(postmaster):
        ticks += int(child[11]) + int(child[12])
    return ticks / CLOCK_TICKS


def _children(postmaster: int) -> Iterator[tuple[int, list[str]]]:
    """The postmaster's live children: each one's pid and its _stat fields."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _stat(entry.name)
        except OSError:  # gone meanwhile: the postmaster's cutime has it
            continue
        if int(child[1]) == postmaster:
            yield int(entry.name), child


def pin(postmaster: int) -> tuple[set[int], set[int]]:
    """--pin: the server's processes on the last CPU this script may use, this script (and so both
    sides' clients, started from it) on the others. Backends fork from the postmaster and keep
    its CPU. Returns (server CPUs, client CPUs)."""
    cpus = sorted(os.sched_getaffinity(0))
    server, client = {cpus[-1]}, set(cpus[:-1])
    os.sched_setaffinity(postmaster, server)
    for pid, _ in _children(postmaster):  # its background processes (checkpointer, walwriter, ...)
        os.sched_setaffinity(pid, server)
    os.sched_setaffinity(0, client)
    return server, client


def ratio_interval(ratios: list[float]) -> tuple[float, list[float] | None]:
    """The rounds' paired runner/plain ratios: their geometric mean and its 95 % t-interval (on
    the logs, as a ratio's noise is relative), None from one round. An interval wholly below 0.98
    is a cost the rounds show; one that spans 0.98 is a cost they cannot resolve."""
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), None
    t = t975(len(logs) - 1)
    half = t * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), [math.exp(mean - half), math.exp(mean + half)]


def rounded_interval(ratios: list[float]) -> tuple[float, list[float] | None]:
    """ratio_interval, rounded to three places as every table here prints it."""
    geomean, interval = ratio_interval(ratios)
    return round(geomean, 3), interval and [round(end, 3) for end in interval]


def layer_family(cell: str) -> str:
    """raw (asyncpg, psycopg, psycopg2) or sqlalchemy (core, orm): where a cell's op code runs."""
    return "raw" if cell.startswith("raw-") else "sqlalchemy"


def at_equal_rate(cell: dict[str, Any], column: str) -> list[float]:
    """Each runner round's CPU per op (`column`: cpu or server) over the script's at the same
    rate: the script's rounds (and the control's, the same program) fitted as log CPU per op
    against log rate, and each runner round set against that line at its own rate. For one
    program, a slower round spends more CPU per op on a machine where the client and the server
    are busy whatever the rate, so CPU per op read at different rates mixes the rate in; empty
    when the script's rounds are too few or their rates all equal."""
    script = [(rate, cpu) for side in ("plain", "control")
              for rate, cpu in zip(cell.get(f"{side}_rounds", []), cell.get(f"{side}_{column}_rounds", []), strict=False)]
    if len(script) < 3:
        return []
    xs, ys = [math.log(rate) for rate, _ in script], [math.log(cpu) for _, cpu in script]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return []
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return [cpu / math.exp(mean_y + slope * (math.log(rate) - mean_x))
            for rate, cpu in zip(cell["runner_rounds"], cell.get(f"runner_{column}_rounds", []), strict=False)]


def pooled(table: list[dict[str, Any]]) -> dict[str, dict[str, object]]:
    """Every round of every cell together, over all, per workload, and per workload for its raw
    cells and its SQLAlchemy ones apart (when it has both): the runner's paired ratio to
    the script (and the control's), geometric mean and 95 % interval. A cost a few percent in
    size, which one cell's rounds cannot resolve on a shared machine, shows here; the rounds'
    spread differs from cell to cell, so the interval is a summary, not an exact test."""
    groups = {"all": table}
    for workload in dict.fromkeys(c["workload"] for c in table):
        cells = [c for c in table if c["workload"] == workload]
        groups[workload] = cells
        for family in ("raw", "sqlalchemy"):  # the driver alone, or through SQLAlchemy (core, orm)
            members = [c for c in cells if layer_family(c["cell"]) == family]
            if members and len(members) < len(cells):
                groups[f"{workload} {family}"] = members
    summary: dict[str, dict[str, object]] = {}
    for name, cells in groups.items():
        entry: dict[str, object] = {"rounds": sum(len(c["runner_rounds"]) for c in cells)}
        for side in ("runner", "control"):
            ratios = [a / b for c in cells for a, b in zip(c.get(f"{side}_rounds", []), c["plain_rounds"], strict=False)]
            if len(ratios) > 1:
                entry[f"{side}_geomean"], entry[f"{side}_ci95"] = rounded_interval(ratios)
        for column, label in (("cpu", "client"), ("server", "server")):  # the runner's CPU per op at the script's rate
            ratios = [r for c in cells for r in at_equal_rate(c, column)]
            if len(ratios) > 1:
                entry[f"runner_{label}_cpu_at_equal_rate"], entry[f"runner_{label}_cpu_at_equal_rate_ci95"] = rounded_interval(ratios)
        summary[name] = entry
    return summary


# The control's six orders, taken in turn: each side takes each place, and follows each other
# side, equally often. A rotation of one order (runner, plain, control; plain, control, runner;
# ...) took each place equally often too, but the script always ran right after the runner and
# the control right after the script, so whatever a side leaves behind on the server fell on one
# side only (the eighth session's matrix and the ninth's first two used it).
CONTROL_ORDERS = [list(order) for order in itertools.permutations(("runner", "plain", "control"))]


def round_order(index: int, control: bool) -> list[str]:
    """Which side runs when in round `index`: without the control, runner and plain alternate
    which goes first; with it, the six orders of the three sides in turn."""
    if not control:
        return ["runner", "plain"] if index % 2 == 0 else ["plain", "runner"]
    return CONTROL_ORDERS[index % len(CONTROL_ORDERS)]


def runner_rate(dsn: str, workload: str, cell: str, ops: int, seed: int) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-m", "runner", "--workload", workload, *CELLS[cell], "--ops", str(ops), "--seed", str(seed), "--quiet"],
        check=True, capture_output=True, text=True, cwd=REPO, env=child_env(dsn),
    ).stdout
    doc = json.loads(out)
    assert doc["complete"] and not doc["totals"]["errors"], doc["totals"]["errors_by_class"]
    cpu_s = sum(w["cpu_measured_s"] for w in doc["workers"])
    return float(doc["totals"]["ops_per_s"]), cpu_s * 1e6 / doc["totals"]["ok"]


def fresh_tables(dsn: str, workload: str) -> None:
    """The workload's tables dropped, made and filled again, as the runner makes them for a run."""
    with connect(control_engine(dsn), dsn) as conn:
        prepare_schema(conn, WORKLOADS[workload])


def plain_rate(dsn: str, workload: str, cell: str, ops: int) -> tuple[float, float]:
    fresh_tables(dsn, workload)  # the same fresh tables the runner makes
    concurrency = SYNC_THREADS if cell == "raw-psycopg2" else ASYNC_IN_FLIGHT
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "plain.py"), "--cell", cell.removesuffix("-bare"), "--workload", workload, "--ops", str(ops),
         "--concurrency", str(concurrency)],
        check=True, capture_output=True, text=True, cwd=REPO, env=child_env(dsn),
    ).stdout
    result = json.loads(out)
    return float(result["ops_per_s"]), float(result["cpu_us_per_op"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=["tpcb", "seed"], choices=("tpcb", "seed"))
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--ops", type=int, default=8000)
    parser.add_argument("--repeat", type=int, help="rounds per cell (default 4, and 6 with --control: each of its orders once)")
    parser.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE", help="a server flag for the run's server")
    parser.add_argument("--control", action="store_true", help="run the script twice a round: an A/A control of the machine's resolution")
    parser.add_argument("--pin", action="store_true", help="the server on the last CPU, both sides' clients on the others (Linux)")
    args = parser.parse_args()
    if args.pin and len(os.sched_getaffinity(0)) < 2:
        parser.error("--pin needs at least 2 CPUs: one for the server, the others for the clients")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    repeat = args.repeat or (len(CONTROL_ORDERS) if args.control else 4)
    if args.control and repeat % len(CONTROL_ORDERS):
        print(f"parity: --repeat {repeat} is not a multiple of 6: --control's six orders are not taken equally often, "
              "so the sides' places are not balanced", file=sys.stderr)
    settings = dict(setting.split("=", 1) for setting in args.pg_setting)
    server = start_embedded(settings)
    postmaster = server.postmaster_pid()
    assert postmaster is not None, "the embedded server has no postmaster.pid"
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    try:
        cpus = pin(postmaster) if args.pin else None
        for workload in args.workloads:
            for cell in args.cells:
                sides = ("runner", "plain", "control") if args.control else ("runner", "plain")
                rates: dict[str, list[float]] = {side: [] for side in sides}
                cpu: dict[str, list[float]] = {side: [] for side in sides}
                server_us: dict[str, list[float]] = {side: [] for side in sides}
                # One unmeasured pass of each side first: the server's caches and the first
                # side of round 1 would otherwise pay for a cold start the other does not.
                runner_rate(server.dsn, workload, cell, args.ops // 4, 99)
                plain_rate(server.dsn, workload, cell, args.ops // 4)
                for i in range(repeat):
                    for side in round_order(i, args.control):
                        # The control runs exactly as the script's own side does, /proc reads
                        # around it included: an A/A pair that differed in anything would not be one.
                        before = server_cpu_s(postmaster)
                        rate, us = runner_rate(server.dsn, workload, cell, args.ops, i) if side == "runner" else plain_rate(server.dsn, workload, cell, args.ops)
                        time.sleep(REAP_S)  # the side's backends reaped, their CPU in the postmaster's
                        rates[side].append(round(rate, 1))
                        cpu[side].append(round(us, 1))
                        server_us[side].append(round((server_cpu_s(postmaster) - before) * 1e6 / args.ops, 1))
                    print(f"{workload} {cell} round {i + 1}: " + ", ".join(
                        f"{side} {rates[side][-1]} ops/s {cpu[side][-1]} us/op (server {server_us[side][-1]})" for side in sides), file=sys.stderr)
                results.setdefault(workload, {})[cell] = {"control": [], **rates, **{f"{side}_cpu": cpu[side] for side in sides},
                                                          **{f"{side}_server": server_us[side] for side in sides}}
    finally:
        server.stop()
    table = []
    for workload, cells in results.items():
        for cell, rates in cells.items():
            runner, plain = statistics.median(rates["runner"]), statistics.median(rates["plain"])
            paired = [r / p for r, p in zip(rates["runner"], rates["plain"], strict=True)]
            geomean, interval = rounded_interval(paired)
            control_fields = {}
            if rates["control"]:
                control_geomean, control_interval = rounded_interval([c / p for c, p in zip(rates["control"], rates["plain"], strict=True)])
                control_fields = {"control_rounds": rates["control"], "control_geomean": control_geomean, "control_ci95": control_interval,
                                  "cpu_us_per_op_control": statistics.median(rates["control_cpu"]),
                                  "server_cpu_us_per_op_control": statistics.median(rates["control_server"])}
            table.append({"workload": workload, "cell": cell, "runner_median": runner, "plain_median": plain,
                          "ratio": round(runner / plain, 3),
                          # each round's pair ran back to back: its ratio is free of the drift between rounds
                          "paired_ratio": round(statistics.median(paired), 3),
                          "paired_geomean": geomean, "paired_ci95": interval,
                          "runner_rounds": rates["runner"], "plain_rounds": rates["plain"],
                          **{f"{side}_{column}_rounds": rates[f"{side}_{column}"] for side in ("runner", "plain", "control")
                             for column in ("cpu", "server") if f"{side}_{column}" in rates},
                          "cpu_us_per_op_runner": statistics.median(rates["runner_cpu"]),
                          "cpu_us_per_op_plain": statistics.median(rates["plain_cpu"]),
                          "server_cpu_us_per_op_runner": statistics.median(rates["runner_server"]),
                          "server_cpu_us_per_op_plain": statistics.median(rates["plain_server"]), **control_fields})
    print(json.dumps({"ops": args.ops, "repeat": repeat, "pg_settings": settings,
                      "pinned": {"server": sorted(cpus[0]), "client": sorted(cpus[1])} if cpus else None, "load": os.getloadavg(), "cells": table,
                      "pooled": pooled(table)}, indent=1))


if __name__ == "__main__":
    main()
