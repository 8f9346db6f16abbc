"""Through a real PgBouncer in transaction mode: a run works, or stops at once and says which
option makes it work; settings the pooler drops are never reported as applied."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import run_runner

Start = Callable[..., str]


@pytest.mark.system
def test_prepared_statements_through_a_transaction_pooler_stop_the_run_with_the_fix(pgbouncer: Start) -> None:
    dsn = pgbouncer()
    result = run_runner("--procs", "2", "--chunk", "20", "--ops", "20000", "--quiet", dsn=dsn, timeout=120)
    # Refused by a worker's preflight (exit 3), or stopped at the first failures (exit 4): either way
    # at once, with one line that names the fix.
    assert result.code in (3, 4), result.stderr
    assert "transaction pooler" in result.stderr and "--statement-cache off" in result.stderr
    if result.code == 4:
        doc = result.doc
        assert doc is not None and doc["complete"] is False and "--statement-cache off" in doc["stop_reason"]
        assert doc["totals"]["ok"] + doc["totals"]["errors"] < 20000  # stopped early, not after every op failed
    else:
        assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


@pytest.mark.system
def test_statement_cache_off_runs_through_the_pooler(pgbouncer: Start) -> None:
    dsn = pgbouncer()
    result = run_runner("--procs", "2", "--chunk", "20", "--ops", "600", "--statement-cache", "off", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None and doc["complete"] is True and doc["totals"]["ok"] == 600
    assert doc["config"]["statement_cache"] is False
    assert doc["database"]["rows"] == doc["database"]["expected_rows"]  # every reported write is there


@pytest.mark.system
def test_a_pooler_refusing_startup_options_ends_the_run_before_it_starts(pgbouncer: Start) -> None:
    dsn = pgbouncer()
    # libpq drivers send session settings as the `options` startup parameter; PgBouncer refuses it.
    # --quiet: beside other work the start can take long enough for a "starting workers" line.
    result = run_runner("--mode", "sync", "--op-timeout", "5", "--ops", "100", "--quiet", dsn=dsn)
    assert result.code == 3, result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "worker 0 cannot start" in line and "unsupported startup parameter" in line
    assert result.stdout == ""


@pytest.mark.system
def test_settings_a_pooler_drops_are_never_reported_as_applied(pgbouncer: Start) -> None:
    dsn = pgbouncer(ignore="extra_float_digits,options")  # silently dropped instead
    result = run_runner("--mode", "sync", "--op-timeout", "5", "--ops", "100", dsn=dsn)
    assert result.code == 3, result.stderr
    assert "statement_timeout=5s did not reach worker 0's session" in result.stderr
    assert result.stdout == ""


@pytest.mark.system
def test_max_client_connections_tells_the_preflight_the_poolers_limit(pgbouncer: Start) -> None:
    dsn = pgbouncer(max_client_conn=30)
    result = run_runner("--procs", "2", "--chunk", "20", "--ops", "200", "--max-client-connections", "30", dsn=dsn)
    assert result.code == 3, result.stderr
    assert "40 exceed" in result.stderr and "--max-client-connections" in result.stderr


@pytest.mark.system
def test_prepare_never_runs_psycopg_through_the_pooler(pgbouncer: Start) -> None:
    dsn = pgbouncer(ignore="extra_float_digits,options")  # psycopg sends its settings as `options`
    never = run_runner("--driver", "psycopg", "--chunk", "8", "--ops", "400", "--prepare", "never", "--quiet", dsn=dsn)
    assert never.code == 0, never.stderr
    assert never.doc is not None and never.doc["config"]["prepare"] == "never" and never.doc["config"]["statement_cache"] is False
    assert never.doc["database"]["rows"] == never.doc["database"]["expected_rows"]
