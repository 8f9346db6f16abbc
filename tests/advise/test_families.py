"""The candidates: families, ladders within the connection budget, each a RunSpec."""

from __future__ import annotations

import pytest

from runner.advise.families import FAMILIES, Candidate, ladder, parse_families
from runner.errors import UsageError
from runner.resolve import spec
from tests.conftest import run_cli


def test_families_are_parsed_in_order_and_an_unknown_one_is_named() -> None:
    assert [f.name for f in parse_families("window, sync,window")] == ["window", "sync"]
    with pytest.raises(UsageError, match="'trio'"):
        parse_families("sync,trio")


def test_the_ladder_keeps_within_the_connection_budget() -> None:
    assert ladder(1, 64, 64) == [1, 2, 4, 8, 16, 32, 64]
    assert ladder(2, 10, 64) == [1, 2, 4]  # 2 processes x 8 would hold 16 connections
    assert ladder(4, 3, 64) == []


def test_a_candidate_is_the_users_options_with_its_mode_driver_and_width() -> None:
    base = spec(workload="sleep", seed=7, read_ratio=0.3, keys="zipf:0.9", warmup_ops=100, ops=5000)
    sync = Candidate(FAMILIES["sync-psycopg"], 2, 8).spec(base, 3.0, 1.0)
    assert (sync.mode, sync.worker_driver, sync.procs, sync.threads, sync.duration_s, sync.ops) == ("sync", "psycopg", 2, 8, 3.0, None)
    assert (sync.seed, sync.read_ratio, sync.keys, sync.workload) == (7, 0.3, "zipf:0.9", "sleep")  # the user's, kept
    window = Candidate(FAMILIES["window"], 1, 16).spec(base, 3.0, 1.0)
    assert (window.mode, window.worker_driver, window.chunk, window.warmup_s) == ("window", "asyncpg", 16, 1.0)
    assert Candidate(FAMILIES["window"], 3, 16).connections == 48


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--candidates", "sync,fibers"), "--candidates 'sync,fibers'"),
        (("--slo", "read.p99 < soon"), "--slo"),
        (("--budget", "forever"), "--budget"),
        (("--max-connections", "0"), "at least 1"),
        (("--procs", "2"), "No such option"),
    ],
)
def test_bad_advice_options_are_one_line_and_exit_2(args: tuple[str, ...], needle: str) -> None:
    result = run_cli("advise", "--workload", "sleep", *args)
    assert result.code == 2 and needle in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_the_gevent_family_is_greenlets_on_psycopg2() -> None:
    (family,) = parse_families("gevent")
    candidate = Candidate(family, 2, 16)
    resolved = candidate.spec(spec(workload="point-select"), 1.0, 0.5)
    assert (resolved.mode, resolved.driver, resolved.threads, resolved.procs) == ("gevent", "psycopg2", 16, 2)
    assert candidate.label == "gevent procs=2 threads=16" and candidate.connections == 32
