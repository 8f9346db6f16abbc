"""Benchmark: --mode gevent against Locust on the same op (#31), not a test.

    python -m venv /tmp/lv && /tmp/lv/bin/pip install locust sqlalchemy psycopg2-binary psycogreen
    python bench/gevent_parity.py --locust /tmp/lv/bin/locust [--rounds 6] [--seconds 10] [--users 40]

One embedded server. Each round, in alternating order: Locust (bench/locust_point_select.py: the
ORM point-select op on gevent and psycopg2 + psycogreen, --users users with no wait, one client
process, stats reset once every user started) and the runner (`--workload point-select --mode
gevent --threads USERS --warmup 1s`, one process), each for --seconds. Locust's "Requests/s" of
its aggregated row against the runner's `.totals.ops_per_s`; the ratio runner/Locust per round,
its geometric mean and 95 % interval over the rounds (runner.advise.paired). Goal (#31): >= 1.0.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.advise.paired import paired_ratio  # noqa: E402
from runner.dsn import child_env  # noqa: E402
from runner.server.embedded import start_embedded  # noqa: E402


def runner_rate(dsn: str, users: int, seconds: int) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "runner", "--workload", "point-select", "--mode", "gevent", "--threads", str(users),
         "--duration", str(seconds), "--warmup", "1s", "--quiet"],
        check=True, capture_output=True, text=True, cwd=REPO, env=child_env(dsn),
    ).stdout
    return float(json.loads(out)["totals"]["ops_per_s"])


def locust_rate(locust: str, dsn: str, users: int, seconds: int, folder: Path) -> float:
    prefix = folder / "locust"
    subprocess.run(
        [locust, "-f", str(REPO / "bench" / "locust_point_select.py"), "--headless", "-u", str(users), "-r", str(users),
         "-t", f"{seconds}s", "--reset-stats", "--only-summary", "--csv", str(prefix)],
        check=True, capture_output=True, text=True, cwd=REPO, env=child_env(dsn, {**os.environ, "LOCUST_USERS": str(users)}),
    )
    with open(f"{prefix}_stats.csv", newline="") as stats:
        row = next(r for r in csv.DictReader(stats) if r["Name"] == "Aggregated")
    assert int(row["Failure Count"]) == 0, row
    return float(row["Requests/s"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--locust", required=True)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--users", type=int, default=40)
    args = parser.parse_args()
    server = start_embedded()
    pairs: list[tuple[float, float]] = []
    try:
        runner_rate(server.dsn, args.users, 2)  # creates runner.item, which Locust's user reads
        with tempfile.TemporaryDirectory() as folder:
            for index in range(args.rounds):
                first_locust = index % 2 == 0
                measured = {}
                for side in (["locust", "runner"] if first_locust else ["runner", "locust"]):
                    if side == "locust":
                        measured[side] = locust_rate(args.locust, server.dsn, args.users, args.seconds, Path(folder))
                    else:
                        measured[side] = runner_rate(server.dsn, args.users, args.seconds)
                pairs.append((measured["locust"], measured["runner"]))
                print(f"round {index + 1}: Locust {measured['locust']:.1f} req/s, runner gevent {measured['runner']:.1f} ops/s, "
                      f"ratio {measured['runner'] / measured['locust']:.3f}", file=sys.stderr)
    finally:
        server.stop()
    ratio = paired_ratio(pairs)
    print(json.dumps({
        "users": args.users, "seconds": args.seconds, "rounds": [{"locust": a, "runner": b, "ratio": round(b / a, 3)} for a, b in pairs],
        "ratio": None if ratio is None else {"mean": round(ratio.ratio, 3), "low": round(ratio.low, 3), "high": round(ratio.high, 3)},
    }, indent=2))


if __name__ == "__main__":
    main()
