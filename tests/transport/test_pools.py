"""Pool sizing, the preflight, and --pg-setting, against the real server."""

from __future__ import annotations

import pytest

from runner.resolve import spec
from runner.transport.pools import plan_pools
from tests.conftest import run_runner


def test_default_pools_follow_the_concurrency() -> None:
    assert plan_pools(spec(procs=2, chunk=7, ops=100), budget=100).sizes == [7, 7]
    assert plan_pools(spec(mode="sync", threads=3, procs=2, ops=100), budget=100).sizes == [3, 3]
    # all tasks at once: capped at the worker's share of the budget
    assert plan_pools(spec(mode="async", procs=2, ops=10_000), budget=100).sizes == [50, 50]


@pytest.mark.system
def test_a_small_pool_is_allowed_with_a_warning(dsn: str) -> None:
    result = run_runner("--ops", "200", "--chunk", "20", "--pool-size", "4", "--quiet", dsn=dsn)
    assert result.code == 0 and result.doc is not None
    assert result.doc["totals"]["connections"]["pool_size_per_worker"] == [4]
    assert result.doc["totals"]["connections"]["server_peak"] <= 4
    assert any("smaller than" in w for w in result.doc["warnings"])
    assert "runner: warning:" in result.stderr


@pytest.mark.system
def test_the_preflight_refuses_pools_that_cannot_fit(dsn: str) -> None:
    result = run_runner("--procs", "30", "--chunk", "100", "--ops", "3000", dsn=dsn)
    assert result.code == 3
    line = result.stderr.strip()
    assert "\n" not in line and "3000 exceed" in line and "max_connections" in line
    assert result.stdout == ""


@pytest.mark.system
def test_pg_setting_on_the_embedded_server() -> None:
    result = run_runner("--ops", "50", "--quiet", "--pg-setting", "plan_cache_mode=force_generic_plan")
    assert result.code == 0 and result.doc is not None
    assert result.doc["server"]["settings"]["plan_cache_mode"] == "force_generic_plan"


@pytest.mark.system
def test_pg_setting_on_a_users_server_is_set_on_every_worker_session(dsn: str) -> None:
    # A 10 ms statement_timeout cancels the sleep workload's 20 ms ops only if the workers'
    # sessions really have it. (Not 1 ms: on a busy machine the preflight's own query took longer.)
    result = run_runner("--workload", "sleep", "--ops", "200", "--quiet", "--pg-setting", "statement_timeout=10", dsn=dsn)
    assert result.doc is not None, result.stderr
    assert result.doc["server"]["settings"]["statement_timeout"] == "10ms"
    assert result.doc["totals"]["errors_by_class"].get("QueryCanceledError", 0) > 0
    refused = run_runner("--ops", "10", "--pg-setting", "plan_cache_mode=bogus", dsn=dsn)
    assert refused.code == 2 and "refused by the server" in refused.stderr


@pytest.mark.system
def test_max_overflow_lets_a_pool_grow_and_is_reported(dsn: str) -> None:
    result = run_runner("--ops", "300", "--chunk", "12", "--pool-size", "2", "--max-overflow", "3", "--quiet", dsn=dsn)
    assert result.code == 0 and result.doc is not None
    connections = result.doc["totals"]["connections"]
    assert connections["pool_size_per_worker"] == [2] and connections["max_overflow"] == 3
    assert 2 < connections["server_peak"] <= 5  # grew past the pool size, never past size + overflow


@pytest.mark.system
def test_pool_timeout_turns_a_long_wait_into_a_counted_error(dsn: str) -> None:
    result = run_runner(
        "--ops", "400", "--chunk", "40", "--pool-size", "1", "--pool-timeout", "0.001", "--quiet", dsn=dsn
    )
    assert result.code == 5 and result.doc is not None
    assert result.doc["totals"]["errors_by_class"].get("TimeoutError", 0) > 0
    assert result.doc["database"]["rows"] == result.doc["database"]["expected_rows"]
