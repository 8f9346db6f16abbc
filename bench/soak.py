"""Soak: a long run under periodic connection kills must lose nothing (not a test).

    python bench/soak.py [--seconds 60] [--kill-every 2] [--procs 2] [--overload-seconds 5] [--wide-procs 128]

Starts an embedded server, runs `python -m runner --duration SECONDS` against it, and every
KILL_EVERY seconds terminates every worker connection with pg_terminate_backend. Halfway through,
a second run against the same database is attempted: it must be refused at once (exit 3) and
leave the first one's tables alone. Then an open loop far above capacity (`--rate 1000000`) runs
for OVERLOAD_SECONDS: it must end on time with bounded memory and every due op accounted for.
Then a run whose schema is dropped halfway: it must report what it measured, marked incomplete
(exit 4), not lose the run. Last, WIDE_PROCS workers (128: far more than the cores) must all start
and finish. Checks that every finished op was counted (ok + errors == ops) and that the rows in the
database equal what the reported writes committed, and prints the figures. Exit 1 if a check fails.
The server's DSN goes to each run in DATABASE_URL (runner.dsn.child_env), never on argv.
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

from runner.dsn import child_env  # noqa: E402
from runner.server.embedded import start_embedded  # noqa: E402

KILL_SQL = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'runner-worker-%'"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--kill-every", type=float, default=2)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--overload-seconds", type=float, default=5)
    parser.add_argument("--wide-procs", type=int, default=128)
    args = parser.parse_args()
    server = start_embedded()
    engine = create_engine(server.dsn.replace("postgresql://", "postgresql+psycopg2://"), isolation_level="AUTOCOMMIT")
    try:
        run = subprocess.Popen(
            [sys.executable, "-m", "runner", "--duration", str(args.seconds), "--procs", str(args.procs),
             "--chunk", "20", "--quiet"],
            cwd=REPO, stdout=subprocess.PIPE, text=True, env=child_env(server.dsn),
        )
        killed = 0
        started = time.monotonic()
        deadline = started + args.seconds
        second = None
        while time.monotonic() < deadline and run.poll() is None:
            time.sleep(args.kill_every)
            with engine.connect() as conn:
                killed += int(conn.execute(KILL_SQL).scalar_one())
            if second is None and time.monotonic() > started + args.seconds / 2:
                second = subprocess.run(
                    [sys.executable, "-m", "runner", "--ops", "1000", "--quiet"],
                    cwd=REPO, capture_output=True, text=True, timeout=60, env=child_env(server.dsn),
                )
        doc = json.loads(run.communicate()[0])
        overload_started = time.monotonic()
        overload = subprocess.run(
            [sys.executable, "-m", "runner", "--rate", "1000000", "--duration", str(args.overload_seconds),
             "--procs", str(args.procs), "--quiet"],
            cwd=REPO, capture_output=True, text=True, timeout=300, env=child_env(server.dsn),
        )
        overload_s = time.monotonic() - overload_started
        over = json.loads(overload.stdout)
        dropped = subprocess.Popen(
            [sys.executable, "-m", "runner", "--duration", "6", "--procs", str(args.procs), "--quiet"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(server.dsn),
        )
        time.sleep(4)  # start-up, then measuring
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA runner CASCADE"))
        drop_out, drop_err = dropped.communicate(timeout=120)
        drop = json.loads(drop_out) if drop_out else None
        wide_started = time.monotonic()
        wide = subprocess.run(
            [sys.executable, "-m", "runner", "--workload", "noop", "--procs", str(args.wide_procs), "--chunk", "8", "--ops", str(100 * args.wide_procs), "--quiet"],
            cwd=REPO, capture_output=True, text=True, timeout=900, env=child_env(server.dsn),
        )
        wide_s = time.monotonic() - wide_started
        many = json.loads(wide.stdout) if wide.stdout else None
    finally:
        engine.dispose()
        server.stop()
    totals, database = doc["totals"], doc["database"]
    checks = {
        "every finished op counted": totals["ok"] + totals["errors"] == totals["ops"],
        "rows equal the reported writes": database["rows"] == database["expected_rows"],
        "the run completed": doc["complete"],
        "the pool recovered (ok > errors)": totals["ok"] > totals["errors"],
        "a second run on the same database was refused at once": second is not None and second.returncode == 3
        and "another runner run" in second.stderr,
        "the overload ended on time (duration + grace + start-up)": overload_s < args.overload_seconds + 10 + 20,
        "the overload accounted for every due op": over["totals"]["ops"] + over["totals"]["unfinished"]
        + over["totals"]["dropped"] + over["totals"]["schedule"]["not_issued"] == over["totals"]["schedule"]["offered_ops"],
        "the overload's workers stayed small (< 500 MB)": all(w["max_rss_kb"] < 500_000 for w in over["workers"]),
        "the overload's rows equal its reported writes": over["database"]["rows"] == over["database"]["expected_rows"],
        "a schema dropped mid-run: what was measured is reported, incomplete, exit 4": dropped.returncode == 4 and drop is not None
        and not drop["complete"] and drop["database"]["rows"] is None and drop["totals"]["ok"] > 0,
        f"{args.wide_procs} workers all started and finished every op": wide.returncode == 0 and many is not None
        and many["totals"]["ok"] == 100 * args.wide_procs and all(w["status"] == "done" for w in many["workers"]),
    }
    print(json.dumps({
        "seconds": args.seconds, "procs": args.procs, "connections_killed": killed,
        "ops": totals["ops"], "ok": totals["ok"], "errors": totals["errors"],
        "errors_by_class": totals["errors_by_class"], "ops_per_s": totals["ops_per_s"],
        "rows": database["rows"], "expected_rows": database["expected_rows"],
        "second_run": {"exit": second.returncode if second else None, "stderr": second.stderr.strip() if second else None},
        "overload": {"seconds": round(overload_s, 1), "offered_ops": over["totals"]["schedule"]["offered_ops"],
                     "ok": over["totals"]["ok"], "unfinished": over["totals"]["unfinished"], "dropped": over["totals"]["dropped"],
                     "not_issued": over["totals"]["schedule"]["not_issued"],
                     "max_rss_kb": max(w["max_rss_kb"] for w in over["workers"])},
        "schema_dropped": {"exit": dropped.returncode, "ok": drop["totals"]["ok"] if drop else None,
                           "stop_reason": drop["stop_reason"] if drop else drop_err.strip()[-300:]},
        "wide": {"procs": args.wide_procs, "exit": wide.returncode, "seconds": round(wide_s, 1),
                 "ok": many["totals"]["ok"] if many else None, "stderr": wide.stderr.strip()[-300:]},
        "checks": checks,
    }))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
