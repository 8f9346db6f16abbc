"""What the server did during the measured part: counter deltas and, when local, its CPU time.

Cumulative statistics views are snapshotted when the workers are released and again after their
connections are gone (a backend flushes its counters when it exits), then subtracted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psutil
from sqlalchemy import Connection, Engine, text

DB_FIELDS = ("xact_commit", "xact_rollback", "blks_hit", "blks_read", "tup_inserted", "tup_fetched", "deadlocks", "temp_bytes")
TABLE_FIELDS = ("seq_scan", "seq_tup_read", "idx_scan", "n_tup_ins")
TOP_STATEMENTS = 5
BACKENDS_GONE_WAIT_S = 5.0


def _snapshot(conn: Connection, schema: str, statements: bool) -> dict[str, Any]:
    conn.execute(text("SELECT pg_stat_clear_snapshot()"))
    db = conn.execute(
        text(f"SELECT {', '.join(DB_FIELDS)} FROM pg_stat_database WHERE datname = current_database()")
    ).mappings().one()
    tables = conn.execute(
        text(f"SELECT relname, {', '.join(TABLE_FIELDS)} FROM pg_stat_user_tables WHERE schemaname = :s"),
        {"s": schema},
    ).mappings().all()
    snap: dict[str, Any] = {
        "database": {k: int(db[k] or 0) for k in DB_FIELDS},
        "tables": {str(t["relname"]): {k: int(t[k] or 0) for k in TABLE_FIELDS} for t in tables},
    }
    if statements:
        rows = conn.execute(
            text(
                "SELECT queryid, calls, total_exec_time, left(query, 200) AS query FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).mappings().all()
        snap["statements"] = {r["queryid"]: (r["query"], int(r["calls"]), float(r["total_exec_time"])) for r in rows}
    return snap


def _has_pg_stat_statements(conn: Connection) -> bool:
    return conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")).first() is not None


def _cpu_s(pid: int | None) -> float | None:
    """User + system CPU of a postmaster and every backend it has reaped (and those still alive)."""
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        times = proc.cpu_times()
        children = proc.children(recursive=True)
    except psutil.Error:
        return None
    alive = 0.0
    for child in children:
        try:
            alive += sum(child.cpu_times()[:2])
        except psutil.Error:  # a backend that ended while listed: its time goes to the postmaster's reaped children
            continue
    return times.user + times.system + times.children_user + times.children_system + alive


@dataclass
class ServerProbe:
    engine: Engine
    schema: str
    postmaster_pid: int | None  # known only for the embedded server
    _before: dict[str, Any] = field(default_factory=dict)
    _cpu_before: float | None = None
    _statements: bool = False

    def begin(self) -> None:
        with self.engine.connect() as conn:
            self._statements = _has_pg_stat_statements(conn)
            self._before = _snapshot(conn, self.schema, self._statements)
        self._cpu_before = _cpu_s(self.postmaster_pid)

    def end(self) -> dict[str, Any]:
        if not self._before:  # the workers never started: nothing was measured
            return {}
        with self.engine.connect() as conn:
            _wait_for_worker_backends(conn)
            after = _snapshot(conn, self.schema, self._statements)
        cpu_after = _cpu_s(self.postmaster_pid)
        before = self._before
        stats: dict[str, Any] = {
            "database": {k: after["database"][k] - before["database"][k] for k in DB_FIELDS},
            "tables": {
                name: {k: counters[k] - before["tables"].get(name, {}).get(k, 0) for k in TABLE_FIELDS}
                for name, counters in sorted(after["tables"].items())
            },
            "statements_available": self._statements,
            "cpu_s": None if cpu_after is None or self._cpu_before is None else round(cpu_after - self._cpu_before, 3),
        }
        if self._statements:
            stats["top_statements"] = _top_statements(before["statements"], after["statements"])
        return stats


def _wait_for_worker_backends(conn: Connection) -> None:
    """A backend flushes its statistics as it exits: wait until the workers' backends are gone."""
    deadline = time.monotonic() + BACKENDS_GONE_WAIT_S
    query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'runner-worker-%'")
    while conn.execute(query).scalar_one() and time.monotonic() < deadline:
        conn.commit()  # pg_stat_activity is a per-transaction snapshot
        time.sleep(0.05)
    conn.commit()


def _top_statements(before: dict[Any, Any], after: dict[Any, Any]) -> list[dict[str, Any]]:
    deltas = []
    for queryid, (query, calls, total_ms) in after.items():
        _, calls0, total0 = before.get(queryid, (query, 0, 0.0))
        if calls > calls0:
            deltas.append({"query": query, "calls": calls - calls0, "total_ms": round(total_ms - total0, 3)})
    return sorted(deltas, key=lambda d: d["total_ms"], reverse=True)[:TOP_STATEMENTS]


def insights(stats: dict[str, Any]) -> list[str]:
    """What matters in the server's numbers, in words, for the human summary."""
    lines = []
    for name, counters in stats.get("tables", {}).items():
        if counters["seq_scan"] > 0 and counters["seq_scan"] > counters["idx_scan"]:
            per_scan = counters["seq_tup_read"] // max(counters["seq_scan"], 1)
            lines.append(
                f"{name} was seq-scanned {counters['seq_scan']:,} times ({counters['seq_tup_read']:,} rows read, "
                f"~{per_scan:,} per scan; {counters['idx_scan']:,} index scans): an index on the filtered column may help"
            )
    db = stats.get("database", {})
    if db.get("deadlocks"):
        lines.append(f"{db['deadlocks']} deadlocks")
    if db.get("temp_bytes"):
        lines.append(f"{db['temp_bytes']:,} bytes spilled to temp files (work_mem too small?)")
    return lines
