"""Benchmark: does `runner compare --run` catch a 10 % slowdown and pass an A/A, on this machine
under a CPU hog? (#32's done-when; not a test.)

    python bench/gate.py [--trials 10] [--rounds 6] [--hogs 1] [--ops 400]

Two checkouts are written to a temporary directory, each with `gatebench.py`: `base` (one
statement per op: a 9 ms pg_sleep beside a count over 3,000 generated rows, so the op costs both
server CPU and wall time) and `slow` (the same op about 10 % slower: the sleep is 10 ms; the
server sleeps in whole milliseconds, so a 4.5 ms sleep against 4 ms was a 17 % slowdown, not
10 %). Each trial prints the measured change, so what was injected is on record. One embedded
server serves every trial; `--hogs` processes spin on the CPU for the whole benchmark (two cores
here: one hog takes one). Trials alternate: A/B (`base` against `slow`) and A/A (`base` against
`base`), each `runner compare --run A B --rounds R --fail-if 'ops_per_s < -5%' --workload
gatebench:bench --chunk 1 --ops N --seed 1`. A/B must exit 7 (the slowdown caught), A/A exit 0
(passed; 4, can't tell, counts as not passed). Prints each trial's exit code and interval, and
the tallies.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.dsn import child_env  # noqa: E402
from runner.server.embedded import start_embedded  # noqa: E402

BENCH = '''
from sqlalchemy import MetaData, text
from workloads import SCHEMA, workload

bench = workload("gate", MetaData(schema=SCHEMA))


@bench.read()
async def lookup(ctx):
    async with ctx.engine.connect() as conn:
        await conn.execute(text("SELECT pg_sleep({sleep}), count(*) FROM generate_series(1, 3000)"))
'''
HOG = "while True: pass"


def trial(base: Path, other: Path, rounds: int, ops: int, dsn: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    argv = [sys.executable, "-m", "runner", "compare", "--run", str(base), str(other), "--rounds", str(rounds), "--fail-if", "ops_per_s < -5%",
            "--workload", "gatebench:bench", "--chunk", "1", "--ops", str(ops), "--seed", "1"]
    done = subprocess.run(argv, cwd=REPO, env=child_env(dsn), capture_output=True, text=True)
    row = next(r for r in json.loads(done.stdout)["rows"] if r["figure"] == "ops_per_s") if done.stdout.strip() else {}
    return done.returncode, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="of each kind (A/B and A/A)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--hogs", type=int, default=1)
    parser.add_argument("--ops", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gate-bench-") as root:
        base, slow = Path(root) / "base", Path(root) / "slow"
        for directory, sleep in ((base, 0.009), (slow, 0.010)):
            directory.mkdir()
            (directory / "gatebench.py").write_text(BENCH.format(sleep=sleep))
        server = start_embedded({})
        hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(args.hogs)]
        tally = {"A/B": [], "A/A": []}  # type: dict[str, list[int]]
        began = time.monotonic()
        try:
            for number in range(args.trials):
                for kind, other in (("A/B", slow), ("A/A", base)):
                    code, row = trial(base, other, args.rounds, args.ops, server.dsn)
                    tally[kind].append(code)
                    interval = f"{row['delta_pct']:+.1f}% [{row['low_pct']:+.1f}%, {row['high_pct']:+.1f}%]" if row.get("low_pct") is not None else "-"
                    print(f"trial {number + 1} {kind}: exit {code}, ops/s {interval}", flush=True)
        finally:
            for hog in hogs:
                hog.kill()
            server.stop()
    caught = tally["A/B"].count(7)
    passed = tally["A/A"].count(0)
    print(f"{args.hogs} hog(s), {args.rounds} rounds of --ops {args.ops}, {time.monotonic() - began:.0f} s: "
          f"10 % slowdown caught (exit 7) in {caught} of {len(tally['A/B'])}; A/A passed (exit 0) in {passed} of {len(tally['A/A'])} "
          f"(A/B exits {tally['A/B']}, A/A exits {tally['A/A']})")


if __name__ == "__main__":
    main()
