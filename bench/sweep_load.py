"""Benchmark: a sweep at --scale spends its load once (#33), not a test.

    python bench/sweep_load.py [--scale 1000000] [--runs 5] [--rounds 3] [--ops 2000]

On one embedded server (its DSN handed to every run in DATABASE_URL, as a sweep on your own
server gets it), alternating round by round which goes first:

- A: `scripts/sweep.sh` over --runs values of --chunk with `--workload bench/lookup.py --scale N`:
  the first run loads (the generic filler, both tables N rows) into a template database, every
  run clones it (`--keep-load` on all but the last, which drops it);
- B: the same sweep without --scale: the same runs on empty tables (bench/lookup.py's ops cost an
  index probe either way).

Per round: ratio = A's wall time / (B's wall time + the one load's seconds, `.load.seconds +
.load.analyze_s` of A's first run): 1.0 is a sweep that loaded once and paid nothing more; a
sweep that loaded for every run would be (B + runs x load) / (B + load). Goal (#33): <= 1.3.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.dsn import child_env  # noqa: E402
from runner.server.embedded import start_embedded  # noqa: E402


def sweep(dsn: str, runs: int, ops: int, scale: int | None, out: Path) -> tuple[float, list[dict]]:  # type: ignore[type-arg]
    """Wall seconds of one sweep, and its documents."""
    out.unlink(missing_ok=True)
    chunks = " ".join(str(10 * (i + 1)) for i in range(runs))
    extra = ["--workload", str(REPO / "bench" / "lookup.py"), "--ops", str(ops)] + (["--scale", str(scale)] if scale else [])
    env = child_env(dsn, {**os.environ, "PYTHON": sys.executable})
    started = time.monotonic()
    subprocess.run(["scripts/sweep.sh", "-g", f"chunk={chunks}", "-o", str(out), "-r", "", "--", *extra], check=True, cwd=REPO, env=env, capture_output=True)
    wall = time.monotonic() - started
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(docs) == runs and all(d["complete"] for d in docs), "a run of the sweep did not complete"
    return wall, docs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ops", type=int, default=2000)
    args = parser.parse_args()
    server = start_embedded()
    ratios, rows = [], []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for round_ in range(args.rounds):
                order = [args.scale, None] if round_ % 2 == 0 else [None, args.scale]
                walls: dict[bool, float] = {}
                for scale in order:
                    wall, docs = sweep(server.dsn, args.runs, args.ops, scale, Path(folder) / "sweep.jsonl")
                    walls[scale is not None] = wall
                    if scale is not None:
                        first = docs[0]["load"]
                        load_s = first["seconds"] + (first["analyze_s"] or 0.0)
                        loads = sum(1 for d in docs if not d["load"]["clone"]["reused"])
                        clones = [d["load"]["clone"]["seconds"] for d in docs]
                ratio = walls[True] / (walls[False] + load_s)
                every = (walls[False] + args.runs * load_s) / (walls[False] + load_s)
                ratios.append(ratio)
                rows.append((round_ + 1, walls[True], walls[False], load_s, loads, statistics.median(clones), ratio, every))
                print(
                    f"round {round_ + 1}: sweep at --scale {args.scale:,} {walls[True]:.1f} s, without {walls[False]:.1f} s, one load {load_s:.1f} s "
                    f"({loads} loaded, clones {statistics.median(clones):.2f} s median): ratio {ratio:.2f} (loading every run: {every:.2f})",
                    file=sys.stderr,
                )
    finally:
        server.stop()
    print(json.dumps({
        "scale": args.scale, "runs": args.runs, "ops": args.ops, "rounds": args.rounds,
        "ratio_median": round(statistics.median(ratios), 3), "ratio_min": round(min(ratios), 3), "ratio_max": round(max(ratios), 3),
        "rounds_detail": [
            {"round": r, "scaled_s": round(a, 2), "unscaled_s": round(b, 2), "load_s": round(load, 2), "loads": n, "clone_s": round(c, 3),
             "ratio": round(x, 3), "ratio_if_every_run_loaded": round(e, 3)}
            for r, a, b, load, n, c, x, e in rows
        ],
    }, indent=2))


if __name__ == "__main__":
    main()
