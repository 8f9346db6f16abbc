"""Benchmark: runner advise against the exhaustive grid over the same candidates (#31), not a test.

    python bench/advise_grid.py --workload seed [--max-procs 2] [--max-width 64] [--step 3] [--budget 5m]
    python bench/advise_grid.py --workload examples.shop.bench --scale 20000

One embedded server for both. The grid: every family (sync threads on psycopg2, async window on
asyncpg) x procs 1..--max-procs x ops in flight per process 1, 2, 4, ... --max-width, each one run
of --step seconds after a 1 s warm-up, as `python -m runner` would be run by hand; its wall time.
Then `runner advise` with the same families, procs and width, its confirmation runs as long as the
grid's (--step, 1 s warm-up) and its screening steps its own default (--screen-step 1s after 0.5 s),
and its wall time.

Reported: advise's choice measured in the grid against the grid's best (goal: within 5 %, or
within the grid's noise, which the grid's repeated best states: the best configuration run
--noise-runs more times); advise's wall time over the grid's (goal: <= 1/3); each USL fit's
prediction at the grid's levels the climb did not measure, against the grid's measurement
(goal: within 10 %).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.advise.families import LADDER  # noqa: E402
from runner.advise.usl import Fit  # noqa: E402
from runner.dsn import child_env  # noqa: E402
from runner.server.embedded import start_embedded  # noqa: E402

FAMILIES = {"sync": ("sync", "psycopg2", "threads"), "window": ("window", "asyncpg", "chunk")}


def _runner(dsn: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "runner", *args], capture_output=True, text=True, cwd=REPO, env=child_env(dsn))
    if not out.stdout.strip():
        raise SystemExit(f"runner {' '.join(args)}: no document: {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def one(dsn: str, common: list[str], family: str, procs: int, width: int, step: float) -> float:
    mode, driver, option = FAMILIES[family]
    doc = _runner(dsn, *common, "--mode", mode, "--driver", driver, "--procs", str(procs), f"--{option}", str(width),
                  "--duration", str(step), "--warmup", "1s", "--quiet")
    return float(doc["totals"]["ops_per_s"]) if doc["complete"] else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", default="seed")
    parser.add_argument("--scale", type=int, default=None)
    parser.add_argument("--max-procs", type=int, default=2)
    parser.add_argument("--max-width", type=int, default=64)
    parser.add_argument("--step", type=float, default=3.0)
    parser.add_argument("--budget", default="5m")
    parser.add_argument("--noise-runs", type=int, default=4)
    args = parser.parse_args()
    common = ["--workload", args.workload] + (["--scale", str(args.scale)] if args.scale else [])
    widths = [w for w in LADDER if w <= args.max_width]
    server = start_embedded({"max_connections": "300"})
    try:
        began = time.monotonic()
        grid = {(family, procs, width): one(server.dsn, common, family, procs, width, args.step)
                for family in FAMILIES for procs in range(1, args.max_procs + 1) for width in widths}
        grid_s = time.monotonic() - began
        best_key = max(grid, key=lambda k: grid[k])
        noise = [one(server.dsn, common, *best_key, args.step) for _ in range(args.noise_runs)] + [grid[best_key]]
        began = time.monotonic()
        advice = _runner(server.dsn, "advise", *common, "--candidates", ",".join(FAMILIES), "--max-procs", str(args.max_procs),
                         "--max-width", str(args.max_width), "--max-connections", str(args.max_procs * args.max_width),
                         "--step", f"{args.step}s", "--step-warmup", "1s", "--budget", args.budget)
        advise_s = time.monotonic() - began
    finally:
        server.stop()
    rec = advice["recommendation"]
    chosen = (rec["family"], rec["procs"], rec["width"]) if rec.get("family") else None
    held_out = []
    for entry in advice["fits"]:
        if entry["lambda_per_s"] is None:
            continue
        law = Fit(entry["lambda_per_s"], entry["sigma"], entry["kappa"])
        measured_levels = {int(p["concurrency"]) for p in entry["points"]}
        for width in widths:
            level = width * entry["procs"]
            key = (entry["family"], entry["procs"], width)
            if level not in measured_levels and key in grid and grid[key] > 0:
                held_out.append({"family": entry["family"], "procs": entry["procs"], "width": width,
                                 "predicted": round(law.throughput(level), 1), "grid": round(grid[key], 1),
                                 "error_pct": round((law.throughput(level) - grid[key]) / grid[key] * 100, 1)})
    spread = (max(noise) - min(noise)) / statistics.median(noise) * 100
    print(json.dumps({
        "workload": args.workload, "grid_runs": len(grid), "grid_s": round(grid_s, 1), "advise_s": round(advise_s, 1),
        "time_ratio": round(advise_s / grid_s, 3),
        "advise_steps": {phase: sum(1 for s in advice["steps"] if s["phase"] == phase) for phase in ("screen", "confirm")},
        "comparisons": [c["verdict"] for c in advice["comparisons"]],
        "grid_best": {"config": list(best_key), "ops_per_s": round(grid[best_key], 1), "repeated": [round(x, 1) for x in noise], "spread_pct": round(spread, 1)},
        "advice": {"config": list(chosen) if chosen else None, "verdict": rec.get("verdict"), "grid_ops_per_s": round(grid[chosen], 1) if chosen in grid else None,
                   "vs_grid_best_pct": round((grid[chosen] - grid[best_key]) / grid[best_key] * 100, 1) if chosen in grid else None},
        "held_out": held_out,
        "grid": [{"config": list(k), "ops_per_s": round(v, 1)} for k, v in sorted(grid.items())],
    }, indent=2))


if __name__ == "__main__":
    main()
