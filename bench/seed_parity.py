"""Benchmark: does the tool cost anything over a hand-written script? (not a test)

    python bench/seed_parity.py [--ops 3000] [--repeat 5]

On one embedded server in one run, alternates the plain script (bench/seed_plain.py, the seed's
chunked-40 approach) and `python -m runner --procs 1 --chunk 40 --mode chunked` with the same op
count and seed, once with each event loop (asyncio, uvloop) on both sides, and prints every
round's ops/s, the medians and the ratio runner / plain per loop. Goal: ratio >= 1.0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.dsn import child_env  # noqa: E402
from runner.server.embedded import start_embedded  # noqa: E402

LOOPS = ("asyncio", "uvloop")


def plain(dsn: str, ops: int, seed: int, loop: str) -> float:
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "seed_plain.py"), str(ops), "40", str(seed), loop],
        check=True, capture_output=True, text=True, env=child_env(dsn),
    ).stdout
    return float(json.loads(out)["ops_per_s"])


def tool(dsn: str, ops: int, seed: int, loop: str) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "runner", "--procs", "1", "--chunk", "40", "--mode", "chunked", "--loop", loop,
         "--ops", str(ops), "--seed", str(seed), "--quiet"],
        check=True, capture_output=True, text=True, cwd=REPO, env=child_env(dsn),
    ).stdout
    return float(json.loads(out)["totals"]["ops_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {f"{side}_{loop}": [] for loop in LOOPS for side in ("plain", "runner")}
    server = start_embedded()
    try:
        for i in range(args.repeat):
            for loop in LOOPS:
                # Alternate which side goes first: the server drifts over a long run.
                order = [("plain", plain), ("runner", tool)]
                for side, fn in order if i % 2 == 0 else reversed(order):
                    rates[f"{side}_{loop}"].append(round(fn(server.dsn, args.ops, i, loop), 1))
            print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]}" for k, v in rates.items()), file=sys.stderr)
    finally:
        server.stop()
    medians = {k: statistics.median(v) for k, v in rates.items()}
    ratios = {loop: round(medians[f"runner_{loop}"] / medians[f"plain_{loop}"], 3) for loop in LOOPS}
    print(json.dumps({"ops": args.ops, "repeat": args.repeat, "ops_per_s": rates, "medians": medians, "ratio": ratios}))


if __name__ == "__main__":
    main()
