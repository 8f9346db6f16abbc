"""Parity per layer and driver: the runner against a hand-written script of the same thing (not a test).

    python bench/parity.py [--workloads tpcb seed] [--cells ...] [--ops 8000] [--repeat 3] [--pg-setting NAME=VALUE ...]

One embedded server. For every workload and cell, each round runs the runner and the matching
bench/plain.py cell with the same op count and concurrency (40 in flight for the async cells,
8 threads for psycopg2), alternating which goes first, each on freshly created and filled tables.
Each cell starts with one unmeasured pass of each side (a quarter of the ops) to warm the server.
Prints ops/s and client CPU per op (the runner's workers, the script's process) per round, the
medians and runner/plain per cell (the ratio of the medians; goal: every cell >= 0.98), and the
median of each round's own runner/plain (paired_ratio: the two sides of a round run back to
back, so the machine's drift between rounds cancels out of it). It also prints the server's CPU
per op for each side (Linux: the postmaster's, its ended backends' and its live children's from
/proc, over the whole side: table set-up and fill included for both, and for the runner its
preflight, connection sampler and statistics probes), so a gap in ops/s can be split between the
client and the server.

`--pg-setting synchronous_commit=off` starts the server with that flag, for both sides alike: a
commit then no longer waits for the disk's flush, whose latency varies from round to round by
more than the client cost being compared (tpcb commits every op, on one hot branch row).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

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
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _stat(entry.name)
        except OSError:  # gone meanwhile: the postmaster's cutime has it
            continue
        if int(child[1]) == postmaster:
            ticks += int(child[11]) + int(child[12])
    return ticks / CLOCK_TICKS


def runner_rate(dsn: str, workload: str, cell: str, ops: int, seed: int) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-m", "runner", "--workload", workload, *CELLS[cell], "--ops", str(ops), "--seed", str(seed), "--quiet", "--dsn", dsn],
        check=True, capture_output=True, text=True, cwd=REPO,
    ).stdout
    doc = json.loads(out)
    assert doc["complete"] and not doc["totals"]["errors"], doc["totals"]["errors_by_class"]
    cpu_s = sum(w["cpu_measured_s"] for w in doc["workers"])
    return float(doc["totals"]["ops_per_s"]), cpu_s * 1e6 / doc["totals"]["ok"]


def plain_rate(dsn: str, workload: str, cell: str, ops: int) -> tuple[float, float]:
    with connect(control_engine(dsn), dsn) as conn:
        prepare_schema(conn, WORKLOADS[workload])  # the same fresh tables the runner makes
    concurrency = SYNC_THREADS if cell == "raw-psycopg2" else ASYNC_IN_FLIGHT
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "plain.py"), "--cell", cell.removesuffix("-bare"), "--workload", workload, "--ops", str(ops),
         "--concurrency", str(concurrency), "--dsn", dsn],
        check=True, capture_output=True, text=True, cwd=REPO,
    ).stdout
    result = json.loads(out)
    return float(result["ops_per_s"]), float(result["cpu_us_per_op"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=["tpcb", "seed"], choices=("tpcb", "seed"))
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--ops", type=int, default=8000)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE", help="a server flag for the run's server")
    args = parser.parse_args()
    settings = dict(setting.split("=", 1) for setting in args.pg_setting)
    server = start_embedded(settings)
    postmaster = server.postmaster_pid()
    assert postmaster is not None, "the embedded server has no postmaster.pid"
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    try:
        for workload in args.workloads:
            for cell in args.cells:
                rates: dict[str, list[float]] = {"runner": [], "plain": []}
                cpu: dict[str, list[float]] = {"runner": [], "plain": []}
                server_us: dict[str, list[float]] = {"runner": [], "plain": []}
                # One unmeasured pass of each side first: the server's caches and the first
                # side of round 1 would otherwise pay for a cold start the other does not.
                runner_rate(server.dsn, workload, cell, args.ops // 4, 99)
                plain_rate(server.dsn, workload, cell, args.ops // 4)
                for i in range(args.repeat):
                    order = ["runner", "plain"] if i % 2 == 0 else ["plain", "runner"]
                    for side in order:
                        before = server_cpu_s(postmaster)
                        rate, us = runner_rate(server.dsn, workload, cell, args.ops, i) if side == "runner" else plain_rate(server.dsn, workload, cell, args.ops)
                        time.sleep(REAP_S)
                        rates[side].append(round(rate, 1))
                        cpu[side].append(round(us, 1))
                        server_us[side].append(round((server_cpu_s(postmaster) - before) * 1e6 / args.ops, 1))
                    print(f"{workload} {cell} round {i + 1}: runner {rates['runner'][-1]} ops/s {cpu['runner'][-1]} us/op "
                          f"(server {server_us['runner'][-1]}), plain {rates['plain'][-1]} ops/s {cpu['plain'][-1]} us/op "
                          f"(server {server_us['plain'][-1]})", file=sys.stderr)
                results.setdefault(workload, {})[cell] = {**rates, "runner_cpu": cpu["runner"], "plain_cpu": cpu["plain"],
                                                          "runner_server": server_us["runner"], "plain_server": server_us["plain"]}
    finally:
        server.stop()
    table = []
    for workload, cells in results.items():
        for cell, rates in cells.items():
            runner, plain = statistics.median(rates["runner"]), statistics.median(rates["plain"])
            table.append({"workload": workload, "cell": cell, "runner_median": runner, "plain_median": plain,
                          "ratio": round(runner / plain, 3),
                          # each round's pair ran back to back: its ratio is free of the drift between rounds
                          "paired_ratio": round(statistics.median(r / p for r, p in zip(rates["runner"], rates["plain"], strict=True)), 3),
                          "runner_rounds": rates["runner"], "plain_rounds": rates["plain"],
                          "cpu_us_per_op_runner": statistics.median(rates["runner_cpu"]),
                          "cpu_us_per_op_plain": statistics.median(rates["plain_cpu"]),
                          "server_cpu_us_per_op_runner": statistics.median(rates["runner_server"]),
                          "server_cpu_us_per_op_plain": statistics.median(rates["plain_server"])})
    print(json.dumps({"ops": args.ops, "repeat": args.repeat, "pg_settings": settings, "load": os.getloadavg(), "cells": table}, indent=1))


if __name__ == "__main__":
    main()
