"""--mode gevent: sync code on greenlets in a patched worker, psycopg2 made cooperative."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli, run_runner
from workloads.sleep import SLEEP_S


@pytest.mark.system
def test_greenlets_wait_on_the_server_together(dsn: str) -> None:
    """8 greenlets on an op that waits 20 ms on the server: cooperative, 8 wait at once (up to
    400 ops/s); a driver that blocked the thread would serve one at a time (50 ops/s)."""
    result = run_runner("--mode", "gevent", "--threads", "8", "--workload", "sleep", "--ops", "160", "--quiet", dsn=dsn)
    assert result.code == 0 and result.doc is not None, result.stderr
    doc = result.doc
    assert doc["config"]["mode"] == "gevent" and doc["totals"]["ok"] == 160 and doc["complete"]
    assert doc["totals"]["ops_per_s"] > 3 / SLEEP_S  # at least 3 in flight on average
    assert doc["totals"]["connections"]["server_peak"] >= 8
    assert doc["workers"][0]["tick_lag_ms"] is not None  # the probe ran, a greenlet beside the ops


@pytest.mark.system
def test_a_duration_ends_a_gevent_run_with_its_intervals(dsn: str) -> None:
    result = run_runner("--mode", "gevent", "--threads", "4", "--workload", "noop", "--duration", "2", "--quiet", dsn=dsn)
    assert result.code == 0 and result.doc is not None, result.stderr
    assert len(result.doc["timeline"]) >= 2 and result.doc["totals"]["ok"] > 0 and result.doc["complete"]


def test_gevent_refuses_what_would_block_or_cannot_be_patched() -> None:
    cases = {
        ("--driver", "psycopg"): "--mode gevent runs psycopg2, made cooperative by psycogreen",
        ("--cluster", "ray"): "--mode gevent runs on local worker processes",
        ("--chunk", "8"): "--chunk is the async modes' concurrency; --mode gevent has none",
    }
    for args, message in cases.items():
        result = run_cli("--mode", "gevent", *args)
        assert result.code == 2 and message in result.stderr, (args, result.stderr)
