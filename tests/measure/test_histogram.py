from __future__ import annotations

from collections.abc import Callable

import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given
from hypothesis import strategies as st

from runner.measure.histogram import HIGHEST_NS, LAYOUT, LatencyHistogram, LayoutError, _value_at_percentile, counts_index

latencies = st.lists(st.integers(min_value=1, max_value=HIGHEST_NS), max_size=300)


def _of(values: list[int]) -> LatencyHistogram:
    hist = LatencyHistogram()
    for value in values:
        hist.record(value)
    return hist


@given(latencies, latencies)
def test_merging_parts_equals_recording_the_whole(left: list[int], right: list[int]) -> None:
    merged = _of(left)
    merged.merge(LatencyHistogram.from_dict(_of(right).to_dict()))  # across the wire, as workers do
    whole = _of(left + right)
    assert merged.count == whole.count == len(left) + len(right)
    assert merged.summary_ms() == whole.summary_ms()


@given(st.lists(st.integers(min_value=1_000, max_value=10**11), min_size=1, max_size=500))
def test_quantiles_within_one_percent(values: list[int]) -> None:
    hist = _of(values)
    ordered = sorted(values)
    for pct in (50.0, 90.0, 99.0):
        rank = max(1, -(-len(ordered) * pct // 100))  # nearest-rank definition
        exact = ordered[int(rank) - 1]
        assert abs(hist.quantile_ns(pct) - exact) <= 0.01 * exact
    assert abs(hist.max_ns() - ordered[-1]) <= 0.01 * ordered[-1]


@given(st.integers(min_value=1, max_value=HIGHEST_NS * 4))
def test_counts_index_is_hdrhs_own(value: int) -> None:
    assert counts_index(value) == HdrHistogram(*LAYOUT)._counts_index_for(value)


@given(st.lists(st.integers(min_value=0, max_value=HIGHEST_NS * 2), max_size=200))
def test_record_leaves_the_state_hdrh_record_value_leaves(values: list[int]) -> None:
    # record() indexes the buckets itself (the worker's hot path): every bucket, the count, the
    # minimum and the maximum must be what hdrh's own record_value gives, 0 and overflow included.
    ours, reference = LatencyHistogram(), HdrHistogram(*LAYOUT)
    edges = [2**k + d for k in range(0, 42) for d in (-1, 0, 1)]
    overflowed = 0
    for value in values + edges:
        ours.record(value)
        overflowed += not reference.record_value(value)
    hdr = ours._hdr
    assert list(hdr.counts) == list(reference.counts)
    assert (hdr.total_count, hdr.min_value, hdr.max_value) == (reference.total_count, reference.min_value, reference.max_value)
    assert ours.overflow == overflowed


@given(st.lists(st.integers(min_value=1, max_value=HIGHEST_NS), max_size=300), st.lists(st.sampled_from([0, HIGHEST_NS * 3]), max_size=2))
def test_record_many_leaves_the_state_record_leaves(values: list[int], odd: list[int]) -> None:
    # The recorder's batches take record_many's inline loop unless a 0 or an out-of-range value
    # is among them; either way every bucket, the count, min, max and overflow are record()'s.
    for batch in (values, values + odd):
        many, one = LatencyHistogram(), LatencyHistogram()
        many.record(7_000)  # a histogram that already holds values: min and max are compared too
        one.record(7_000)
        many.record_many(batch)
        for value in batch:
            one.record(value)
        assert many.count == one.count  # read before the buckets are settled: kept current as values come
        settled = many._settled()
        assert list(settled.counts) == list(one._hdr.counts)
        assert (settled.total_count, settled.min_value, settled.max_value) == (one._hdr.total_count, one._hdr.min_value, one._hdr.max_value)
        assert many.to_dict() == one.to_dict() and many.quantile_ns(50) == one.quantile_ns(50)
        assert (many.overflow, many.overflow_max_ns) == (one.overflow, one.overflow_max_ns)


def test_out_of_range_values_are_counted_not_dropped() -> None:
    hist = _of([5_000, 6_000, HIGHEST_NS * 10])
    assert hist.count == 3
    assert hist.overflow == 1
    assert hist.max_ns() == HIGHEST_NS * 10
    assert hist.quantile_ns(100.0) == HIGHEST_NS * 10


def test_quantiles_are_ordered() -> None:
    summary = _of(list(range(1_000, 1_000_000, 997))).summary_ms()
    assert summary["p50"] <= summary["p90"] <= summary["p99"] <= summary["p99_9"] <= summary["max"]


def test_merge_refuses_another_layout() -> None:
    wire = _of([1_000]).to_dict()
    wire["layout"] = [1, 1_000, 3]
    with pytest.raises(LayoutError):
        LatencyHistogram.from_dict(wire)


def test_empty_histogram_reports_zeros() -> None:
    assert _of([]).summary_ms()["p99"] == 0.0


READERS: dict[str, Callable[[LatencyHistogram], object]] = {
    "quantile": lambda h: [h.quantile_ns(p) for p in (50, 99, 100)],
    "max": lambda h: h.max_ns(),
    "mean": lambda h: h.mean_ns(),
    "cumulative": lambda h: h.cumulative([10_000, 1_000_000, 10**9]),
    "wire": lambda h: h.to_dict(),
    "merged into": lambda h: (lambda into: (into.merge(h), into.to_dict()))(LatencyHistogram())[1],
    "merged from": lambda h: (lambda other: (other.merge(h), h.merge(other), h.to_dict()))(LatencyHistogram())[2],
}


@pytest.mark.parametrize("reader", list(READERS))
@given(st.lists(st.integers(min_value=1, max_value=10**10), min_size=1, max_size=50))
def test_every_read_sees_what_record_many_counted(reader: str, values: list[int]) -> None:
    # record_many counts into a list first: each way of reading must see those values, as the
    # first read on a histogram.
    many, one = LatencyHistogram(), LatencyHistogram()
    many.record_many(values)
    for value in values:
        one.record(value)
    assert READERS[reader](many) == READERS[reader](one)


@given(latencies, latencies, st.integers(min_value=0, max_value=3), st.lists(st.sampled_from([HIGHEST_NS * 3]), max_size=1))
def test_the_wire_form_adds_into_the_buckets_a_direct_merge_gives(left: list[int], right: list[int], zeros: int, over: list[int]) -> None:
    """The collector adds a worker's wire histogram into its own buckets (merge_dict); every
    bucket, the count, min, max, overflow and so every quantile are what merging the worker's
    histogram object gives: the same quantiles as before the wire form changed (#34)."""
    sent = _of(right + over)
    sent.record_zeros(zeros)
    by_wire, by_object = _of(left), _of(left)
    by_wire.merge_dict(sent.to_dict())
    by_object.merge(sent)
    wired, direct = by_wire._settled(), by_object._settled()
    assert list(wired.counts) == list(direct.counts)
    assert (wired.total_count, wired.get_max_value()) == (direct.total_count, direct.get_max_value())  # to the bucket
    if left and sent._hdr.total_count:  # hdrh's own add takes an empty side's minimum as 0
        assert wired.get_lowest_equivalent_value(wired.min_value) == direct.get_lowest_equivalent_value(direct.min_value)
    assert (by_wire.overflow, by_wire.overflow_max_ns) == (by_object.overflow, by_object.overflow_max_ns)
    assert by_wire.summary_ms(("p95",)) == by_object.summary_ms(("p95",))
    # Twice, as many workers' records land in one bin: the scratch buckets were cleared between.
    by_wire.merge_dict(sent.to_dict())
    by_object.merge(sent)
    assert list(by_wire._settled().counts) == list(by_object._settled().counts)


@given(st.lists(st.integers(min_value=0, max_value=HIGHEST_NS), max_size=300), st.floats(min_value=0.0, max_value=100.0))
def test_quantiles_and_mean_are_hdrhs_own_readings(values: list[int], percentile: float) -> None:
    """Read by bisection and a table of bucket values (C over the buckets), the figures are what
    hdrh's own Python loops over every bucket give, to the nanosecond."""
    hist = _of(values)
    hdr = hist._settled()
    for pct in (percentile, 0.0, 50.0, 99.9, 100.0):
        assert _value_at_percentile(hist._cumulative(), pct) == (hdr.get_value_at_percentile(pct) if values else 0)
    assert hist.mean_ns() == (float(hdr.get_mean_value()) if values else 0.0)
