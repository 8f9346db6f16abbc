"""The anatomy and exemplar figures merge by adding, like the latency histograms."""

from __future__ import annotations

from types import SimpleNamespace

from runner.measure.anatomy import Anatomy, repeat_warning
from runner.measure.exemplars import Exemplars, shorten_params, slowest


def _trace(statements: int, db_ns: int, pool_ns: int, texts: dict[str, int] | None) -> SimpleNamespace:
    return SimpleNamespace(statements=statements, rows=2, streamed=0, db_ns=db_ns, pool_wait_ns=pool_ns, texts=texts, calls=None)


def test_python_is_what_is_left_and_merging_adds() -> None:
    a, b = Anatomy(), Anatomy()
    a.record(_trace(2, 3_000_000, 1_000_000, {"SELECT 1": 2}), 10_000_000)
    b.record(_trace(4, 1_000_000, 0, {"SELECT 1": 1, "SELECT 2": 3}), 2_000_000)
    merged = Anatomy.from_dict(a.to_dict())
    merged.merge(Anatomy.from_dict(b.to_dict()))
    summary = merged.summary()
    assert summary["ops"] == 2 and summary["statements_per_op"] == 3 and summary["statements_max"] == 4
    assert summary["rows_per_op"] == 2
    assert abs(summary["python_ms"]["max"] - 6.0) <= 0.06  # 10 ms - 3 ms db - 1 ms pool wait, within 1 %
    assert summary["most_repeated"] == {"statement": "SELECT 1", "per_op": 1.5}
    assert repeat_warning("read", summary) is None


def test_the_raw_layer_reports_pool_wait_only() -> None:
    raw = Anatomy()
    raw.record(_trace(0, 0, 5_000, None), 1_000_000)
    summary = raw.summary()
    assert summary["db_ms"] is None and summary["python_ms"] is None and summary["statements_per_op"] is None
    assert summary["pool_wait_ms"]["max"] > 0


def test_a_repeated_statement_is_named() -> None:
    lazy = Anatomy()
    for _ in range(3):
        lazy.record(_trace(11, 1, 0, {"SELECT parent": 1, "SELECT child WHERE parent_id = $1": 10}), 10)
    warning = repeat_warning("read", lazy.summary())
    assert warning is not None and "10.0 times per op" in warning and "SELECT child" in warning


def test_exemplars_keep_the_slowest_and_merge_across_workers() -> None:
    kept = Exemplars(2)
    for latency in (5, 1, 9, 3, 7):
        kept.offer("read", latency * 1_000_000, [("SELECT $1", [latency])])
    mine = kept.take()
    assert [e["latency_ms"] for e in mine["read"]] == [9.0, 7.0]
    assert mine["read"][0]["statements"] == [{"statement": "SELECT $1", "parameters": [9]}]
    assert kept.take() == {}  # taken: the measured part starts empty
    other = {"read": [{"latency_ms": 8.0, "statements": []}]}
    merged = slowest({0: mine, 1: other}, 2)
    assert [(e["worker"], e["latency_ms"]) for e in merged["read"]] == [(0, 9.0), (1, 8.0)]


def test_parameters_are_shortened_and_json() -> None:
    long = "x" * 500
    assert shorten_params([1, None, long, b"ab"]) == [1, None, "x" * 61 + "...", "ab"]
    assert shorten_params({"name": 2.5}) == {"name": 2.5}
    assert len(shorten_params(list(range(1000)))) == 100
