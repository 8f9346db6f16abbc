"""The anatomy and exemplar figures merge by adding, like the latency histograms."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from runner.measure.anatomy import MAX_TEXTS, PARTS, Anatomy, repeat_warning
from runner.measure.exemplars import Exemplars, shorten_params, slowest
from runner.measure.histogram import LatencyHistogram


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
    assert summary["most_repeated"] == {"statement": "SELECT 1", "per_op": 1.5, "per_try": 1.5}
    assert repeat_warning("read", summary) is None


def test_statements_a_retried_op_sent_again_are_no_n_plus_1() -> None:
    """tpcb under --retries sent its 5 statements on each of ~6 tries and was called N+1 ("6.3
    times per op"); the warning reads the count per try. The same count in one try still warns."""
    retried, lazy = Anatomy(), Anatomy()
    retried.record(_trace(30, 0, 0, {"UPDATE branches": 6, "UPDATE tellers": 6}), 1_000_000, retries=5)  # 6 tries
    lazy.record(_trace(30, 0, 0, {"SELECT child": 6}), 1_000_000)
    merged = Anatomy.from_dict(retried.to_dict())  # attempts cross the wire
    summary = merged.summary()
    assert summary["most_repeated"]["per_op"] == 6 and summary["most_repeated"]["per_try"] == 1
    assert repeat_warning("transfer", summary) is None
    assert repeat_warning("read", lazy.summary()) is not None


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


def _one_at_a_time(traces: list[SimpleNamespace], latencies: list[int]) -> dict[str, object]:
    """The figures op by op, written out plainly: what record_many's batch must leave."""
    out: dict[str, object] = {"ops": 0, "statements": 0, "max": 0, "rows": 0, "streamed": 0, "db_timed": True}
    parts: dict[str, list[int]] = {"pool_wait": [], "db": [], "python": []}
    texts: Counter[str] = Counter()
    for trace, latency in zip(traces, latencies, strict=True):
        out["ops"] += 1  # type: ignore[operator]
        parts["pool_wait"].append(trace.pool_wait_ns)
        if trace.texts is None:
            out["db_timed"] = False
            continue
        out["statements"] += trace.statements  # type: ignore[operator]
        out["max"] = max(out["max"], trace.statements)  # type: ignore[call-overload]
        out["rows"] += trace.rows  # type: ignore[operator]
        out["streamed"] += trace.streamed  # type: ignore[operator]
        parts["db"].append(trace.db_ns)
        parts["python"].append(max(0, latency - trace.db_ns - trace.pool_wait_ns))
        for text, count in trace.texts.items():
            if text in texts or len(texts) < MAX_TEXTS:
                texts[text] += count
    out["texts"] = dict(texts)
    for part, values in parts.items():
        hist = LatencyHistogram()
        for value in values:
            hist.record(value)
        out[part] = hist.to_dict()
    return out


def _figures(anatomy: Anatomy) -> dict[str, object]:
    wire = anatomy.to_dict()
    return {
        "ops": wire["ops"], "statements": wire["statements"], "max": wire["statements_max"], "rows": wire["rows"],
        "streamed": wire["streamed"], "db_timed": wire["db_timed"], "texts": wire["texts"],
        **{part: wire[part] for part in PARTS},
    }


statement_sets = st.lists(st.dictionaries(st.sampled_from([f"SELECT {i}" for i in range(40)]), st.integers(1, 3), max_size=12), min_size=1, max_size=6)


@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**8), st.integers(0, 10**7), st.integers(1, 10**8), st.integers(0, 3)), min_size=1, max_size=60),
    statement_sets,
    st.booleans(),
)
def test_a_batch_leaves_the_figures_of_its_ops_one_at_a_time(draws: list[tuple[int, int, int, int, int]], shapes: list[dict[str, int]], raw: bool) -> None:
    # The recorder folds each op type's ops in as one batch: statement sets repeat across ops
    # (each added once, times its ops), parts of 0 are counted in bulk, a negative python part
    # is 0, and past MAX_TEXTS distinct statements only those already kept are counted.
    traces = [
        SimpleNamespace(statements=s, rows=s * 2, streamed=s % 2, db_ns=db, pool_wait_ns=pool, texts=None if raw else shapes[k % len(shapes)], calls=None)
        for s, db, pool, _, k in draws
    ]
    latencies = [latency for *_, latency, _ in draws]
    batch = Anatomy()
    batch.record_many(traces, latencies)
    assert _figures(batch) == _one_at_a_time(traces, latencies)


def test_past_max_texts_only_the_statements_kept_first_are_counted() -> None:
    first = {f"SELECT {i}": 1 for i in range(MAX_TEXTS - 4)}
    second = {f"SELECT {i}": 2 for i in range(MAX_TEXTS - 8, MAX_TEXTS + 8)}
    traces = [SimpleNamespace(statements=1, rows=0, streamed=0, db_ns=1, pool_wait_ns=0, texts=(first, second)[i % 2], calls=None) for i in range(6)]
    batch = Anatomy()
    batch.record_many(traces, [10] * 6)
    assert len(batch.texts) == MAX_TEXTS and batch.texts["SELECT 0"] == 3 and batch.texts[f"SELECT {MAX_TEXTS - 5}"] == 9
    assert _figures(batch) == _one_at_a_time(traces, [10] * 6)
