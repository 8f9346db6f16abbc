"""--isolation and --retries: tpcb's one branch row, updated by every transaction, is the
contention; repeatable read makes concurrent updates of it fail with 40001."""

from __future__ import annotations

import random

import pytest

from runner.worker.retry import BACKOFF_CAP_S, Retrier, sqlstate
from tests.conftest import query, run_cli, run_runner

CONTENDED = ("--workload", "tpcb", "--ops", "300", "--quiet")


class _Failure(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.sqlstate = code


def test_only_serialization_failures_and_deadlocks_are_retried() -> None:
    retrier = Retrier(2, random.Random(1))
    assert retrier.again(_Failure("40001"), 0) and retrier.again(_Failure("40P01"), 1)
    assert not retrier.again(_Failure("40001"), 2)  # its tries are used up
    assert not retrier.again(_Failure("57014"), 0)  # a cancelled statement is the op's error
    assert not retrier.again(ValueError("no sqlstate"), 0)
    assert all(0 <= retrier.backoff_s(n) <= BACKOFF_CAP_S for n in range(1, 30))
    assert sqlstate(_Failure("40P01")) == "40P01"


@pytest.mark.system
def test_without_retries_the_conflicts_are_failures(dsn: str) -> None:
    result = run_runner(*CONTENDED, "--isolation", "repeatable-read", "--chunk", "8", "--retries", "0", dsn=dsn)
    assert result.code == 5, result.stderr  # some ops failed
    doc = result.doc
    assert doc is not None
    assert doc["server"]["settings"]["default_transaction_isolation"] == "repeatable read"
    assert doc["totals"]["errors_by_class"].get("SerializationError", 0) > 0
    assert doc["totals"]["retries"] == {"retried": 0, "by_class": {}, "succeeded_after_retry": 0, "failed_after_retries": {}}


@pytest.mark.system
def test_with_retries_the_same_conflicts_succeed_on_a_later_try(dsn: str) -> None:
    result = run_runner(*CONTENDED, "--isolation", "repeatable-read", "--chunk", "8", "--retries", "30", dsn=dsn)
    doc = result.doc
    assert doc is not None, result.stderr
    retries = doc["totals"]["by_op"]["tpcb"]["retries"]
    assert retries["retried"] > 0 and retries["by_class"].get("SerializationError") == retries["retried"]
    assert retries["succeeded_after_retry"] > 0
    assert doc["totals"]["errors"] <= 3  # 30 tries each: a conflict that never clears is rare
    # every committed transaction is one history row, however many tries it took
    assert query(dsn, "SELECT count(*) FROM runner.history") == doc["totals"]["ok"]
    # A retried op sent its statements again on each try: per op they repeat, per try they do
    # not, and that is no N+1 (tpcb was called "6.3 times per op, likely N+1").
    repeated = doc["totals"]["by_op"]["tpcb"]["anatomy"]["most_repeated"]
    assert repeated["per_try"] <= 1 < repeated["per_op"], repeated
    loud = run_runner(*CONTENDED[:-1], "--isolation", "repeatable-read", "--retries", "5", dsn=dsn).stderr
    assert "tries retried (SerializationError" in loud and "N+1" not in loud


@pytest.mark.system
def test_ops_that_use_up_their_retries_are_counted_by_their_last_error(dsn: str) -> None:
    args = ("--isolation", "serializable", "--retries", "1", "--mode", "sync", "--threads", "6", "--layer", "raw")
    doc = run_runner(*CONTENDED, *args, dsn=dsn).doc
    assert doc is not None
    assert doc["config"]["isolation"] == "serializable" and doc["config"]["retries"] == 1
    assert doc["server"]["settings"]["default_transaction_isolation"] == "serializable"
    retries = doc["totals"]["retries"]
    assert retries["failed_after_retries"] == doc["totals"]["errors_by_class"]  # every failure had its one retry
    assert sum(retries["failed_after_retries"].values()) > 0


@pytest.mark.parametrize(("args", "needle"), [(("--retries", "-1"), "--retries must not be negative"), (("--isolation", "chaos"), "--isolation")])
def test_bad_values_are_one_line(args: tuple[str, ...], needle: str) -> None:
    result = run_cli("--ops", "10", *args)
    assert result.code == 2 and needle in result.stderr and result.stderr.count("\n") == 1
