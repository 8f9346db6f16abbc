"""Soak: a long run under periodic connection kills must lose nothing (not a test).

    python bench/soak.py [--seconds 60] [--kill-every 2] [--procs 2]

Starts an embedded server, runs `python -m runner --duration SECONDS` against it, and every
KILL_EVERY seconds terminates every worker connection with pg_terminate_backend. At the end it
checks that every finished op was counted (ok + errors == ops) and that the rows in the database
equal what the reported writes committed, and prints the figures. Exit 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.server.embedded import start_embedded  # noqa: E402

KILL_SQL = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'runner-worker-%'"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--kill-every", type=float, default=2)
    parser.add_argument("--procs", type=int, default=2)
    args = parser.parse_args()
    server = start_embedded()
    engine = create_engine(server.dsn.replace("postgresql://", "postgresql+psycopg2://"), isolation_level="AUTOCOMMIT")
    try:
        run = subprocess.Popen(
            [sys.executable, "-m", "runner", "--duration", str(args.seconds), "--procs", str(args.procs),
             "--chunk", "20", "--quiet", "--dsn", server.dsn],
            cwd=REPO, stdout=subprocess.PIPE, text=True,
        )
        killed = 0
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline and run.poll() is None:
            time.sleep(args.kill_every)
            with engine.connect() as conn:
                killed += int(conn.execute(KILL_SQL).scalar_one())
        doc = json.loads(run.communicate()[0])
    finally:
        engine.dispose()
        server.stop()
    totals, database = doc["totals"], doc["database"]
    checks = {
        "every finished op counted": totals["ok"] + totals["errors"] == totals["ops"],
        "rows equal the reported writes": database["rows"] == database["expected_rows"],
        "the run completed": doc["complete"],
        "the pool recovered (ok > errors)": totals["ok"] > totals["errors"],
    }
    print(json.dumps({
        "seconds": args.seconds, "procs": args.procs, "connections_killed": killed,
        "ops": totals["ops"], "ok": totals["ok"], "errors": totals["errors"],
        "errors_by_class": totals["errors_by_class"], "ops_per_s": totals["ops_per_s"],
        "rows": database["rows"], "expected_rows": database["expected_rows"], "checks": checks,
    }))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
