"""One mergeable latency histogram over integer nanoseconds (HdrHistogram underneath).

Two significant digits keep every reported quantile within 1 % of the recorded value. Values
outside the trackable range are counted in `overflow`, never dropped silently.

On the wire (to_dict, merge_dict) the buckets travel as hdrh's own varint run-length stream in
base64, without its zlib layer and its header, and the collector adds them straight into its
histograms' buckets with hdrh's C functions (decode, add_array): no HdrHistogram is built per
record, and no Python runs per bucket. Decoding hdrh's full encoding into a new HdrHistogram and
adding it cost the collector ~64 µs per histogram, nine histograms per worker per interval
(53 % of a core at 1,000 workers, #34); this costs ~7 µs.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import functools
import math
import threading
from bisect import bisect_left
from itertools import accumulate, compress
from operator import mul
from typing import Any, NamedTuple

from hdrh.histogram import HdrHistogram
from pyhdrh import add_array, decode, encode

LOWEST_NS = 1
HIGHEST_NS = 3_600_000_000_000  # one hour: an op slower than that is counted as overflow
SIGNIFICANT_DIGITS = 2  # <= 1 % relative error
LAYOUT = (LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)
QUANTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}
NS_PER_MS = 1_000_000
WORD_BYTES = 8  # a bucket count: hdrh's 64-bit word


def percent(name: str) -> float:
    """A percentile's name as the document writes it -> its percent: p99_9 -> 99.9, p97_5 -> 97.5."""
    return float(name[1:].replace("_", "."))


def _index_constants() -> tuple[int, int]:
    layout = HdrHistogram(*LAYOUT)
    assert layout.unit_magnitude == 0  # LOWEST_NS = 1: counts_index assumes it
    assert layout.sub_bucket_half_count == 1 << layout.sub_bucket_half_count_magnitude  # it cancels out below
    return layout.sub_bucket_mask, layout.sub_bucket_half_count_magnitude


_MASK, _HALF_MAGNITUDE = _index_constants()
_SHIFT = _HALF_MAGNITUDE + 1
COUNTS_LEN = HdrHistogram(*LAYOUT).counts_len


class _Scratch(threading.local):
    """A thread's buckets to decode one wire histogram into before adding the decoded range
    (zeroed again after each use, so only that range is ever written)."""

    def __init__(self) -> None:
        self.counts = (ctypes.c_int64 * COUNTS_LEN)()
        self.address = ctypes.addressof(self.counts)


_scratch = _Scratch()


@functools.cache
def _bucket_values() -> tuple[list[int], list[int], list[int]]:
    """Per bucket: the lowest and highest value hdrh's get_value_at_percentile returns for it,
    and the value its get_mean_value weighs it by. Read once from hdrh, so reading a histogram is
    C over its buckets (accumulate, bisect, map) and not hdrh's Python loop or iterator over all
    4,608 of them: a mean cost ~10 ms that way, and a run's report reads hundreds (#31: a
    third of an advise step's time, under cProfile)."""
    hdr = HdrHistogram(*LAYOUT)
    starts = [hdr.get_value_from_index(index) for index in range(COUNTS_LEN)]
    lowest = [hdr.get_lowest_equivalent_value(value) for value in starts]
    highest = [hdr.get_highest_equivalent_value(value) for value in starts]
    return lowest, highest, [hdr._hdr_median_equiv_value(value) for value in highest]


def counts_index(value: int) -> int:
    """hdrh's _counts_index_for(value) for a positive value, for LAYOUT: the bucket is the power of
    two above `value | sub_bucket_mask` (hdrh: 64 - clz), the sub-bucket its top bits. hdrh's
    `((bucket + 1) << half_magnitude) - half_count` is `bucket << half_magnitude`."""
    bucket = (value | _MASK).bit_length() - _SHIFT
    return (bucket << _HALF_MAGNITUDE) + (value >> bucket)


class LayoutError(ValueError):
    """Two histograms with different bucket layouts cannot be merged by adding buckets."""


class LatencyHistogram:
    """Record, merge, and read quantiles of latencies in nanoseconds."""

    def __init__(self) -> None:
        self._hdr = HdrHistogram(*LAYOUT)
        self._fresh: list[int] | None = None  # record_many's bucket counts not yet in _hdr's (see _settled)
        self.overflow = 0
        self.overflow_max_ns = 0

    def record(self, latency_ns: int) -> None:
        """One value. This runs once per op on the worker's hot path, so the bucket index is
        computed here in one expression (counts_index above) instead of through hdrh's
        record_value, which makes six Python calls for the same arithmetic."""
        hdr = self._hdr
        index = counts_index(latency_ns) if latency_ns > 0 else -1
        if 0 <= index < hdr.counts_len:
            hdr.counts[index] += 1
            hdr.total_count += 1
            if latency_ns < hdr.min_value:
                hdr.min_value = latency_ns
            if latency_ns > hdr.max_value:
                hdr.max_value = latency_ns
        elif not hdr.record_value(latency_ns):  # 0 (hdrh's own path), or out of range
            self.overflow += 1
            self.overflow_max_ns = max(self.overflow_max_ns, latency_ns)

    def record_many(self, values: list[int]) -> None:
        """Each of `values`, leaving the state record(value) would leave for each in turn: the
        worker's batch of one op type's latencies (runner.worker.recorder). The bucket arithmetic
        is written out in the loop: a call per value was most of the cost of recording it."""
        if not values:
            return
        low, high = min(values), max(values)
        hdr = self._hdr
        if low <= 0 or counts_index(high) >= hdr.counts_len:  # 0 or out of range among them: in turn
            for value in values:
                self.record(value)
            return
        # Counted in a list first: an item of hdrh's ctypes array costs ~10 times a list's to
        # read and write, and these are most of the worker's values. _settled adds them in.
        counts = self._fresh
        if counts is None:
            counts = self._fresh = [0] * hdr.counts_len
        mask, shift, magnitude = _MASK, _SHIFT, _HALF_MAGNITUDE
        for value in values:
            bucket = (value | mask).bit_length() - shift
            counts[(bucket << magnitude) + (value >> bucket)] += 1
        hdr.total_count += len(values)
        if low < hdr.min_value:
            hdr.min_value = low
        if high > hdr.max_value:
            hdr.max_value = high

    def _settled(self) -> HdrHistogram:
        """The HdrHistogram with every recorded value in its buckets."""
        fresh = self._fresh
        if fresh is not None:
            counts = self._hdr.counts
            for index in compress(range(len(fresh)), fresh):  # the buckets that got values
                counts[index] += fresh[index]
            self._fresh = None
        return self._hdr

    def record_zeros(self, count: int) -> None:
        """`count` values of 0 at once (an op that waited for no pool or sent no statement)."""
        if count:
            self._settled().record_value(0, count)

    @property
    def count(self) -> int:
        """Every recorded value, including those out of range (record_many counts the tracked ones as it goes)."""
        return self._hdr.total_count + self.overflow

    def merge(self, other: LatencyHistogram) -> None:
        """Add `other`'s buckets to this histogram."""
        self._settled().add(other._settled())
        self.overflow += other.overflow
        self.overflow_max_ns = max(self.overflow_max_ns, other.overflow_max_ns)

    def quantile_ns(self, percentile: float, read: Reading | None = None) -> int:
        """The nearest-rank value at `percentile` (0-100): the smallest value with at least that
        share of the values at or below it. Overflowed values rank above every tracked one.
        `read`: this histogram's buckets and cumulative counts, when several quantiles are read."""
        tracked = self._hdr.total_count
        if self.count == 0:
            return 0
        rank = max(1, math.ceil(percentile / 100.0 * self.count - 1e-9))
        if rank > tracked:
            return self.overflow_max_ns
        # HdrHistogram rounds percentile * count to the nearest rank; aim a quarter below ours.
        return _value_at_percentile(read or self._cumulative(), 100.0 * (rank - 0.25) / tracked)

    def _cumulative(self) -> Reading:
        """The buckets, the first one used, the counts from it to the last one used, and the values
        at or below each (~700 buckets of a latency, not all 4,608: a long run's report reads
        thousands)."""
        hdr = self._settled()
        low, used = _used(hdr)
        return Reading(hdr, low, used, list(accumulate(used)))

    def max_ns(self, hdr: HdrHistogram | None = None) -> int:
        if self.overflow:
            return self.overflow_max_ns
        return int((hdr or self._settled()).get_max_value()) if self._hdr.total_count else 0

    def mean_ns(self, read: Reading | None = None) -> float:
        """Mean of the tracked values (overflowed values are reported apart, by count)."""
        if not self._hdr.total_count:
            return 0.0
        hdr, low, used, _ = read or self._cumulative()
        weights = _bucket_values()[2][low : low + len(used)]
        return float(sum(map(mul, used, weights))) / hdr.total_count  # hdrh's get_mean_value

    def cumulative(self, bounds_ns: list[int]) -> list[int]:
        """How many values are at or below each bound (a Prometheus histogram's buckets), each
        recorded value taken at the top of its HdrHistogram bucket (within 1 %)."""
        counts = [0] * len(bounds_ns)
        if self._hdr.total_count:
            for item in self._settled().get_recorded_iterator():
                for i, bound in enumerate(bounds_ns):
                    if item.value_iterated_to <= bound:
                        counts[i] += item.count_added_in_this_iter_step
        return counts

    def summary_ms(self, extra: tuple[str, ...] = ()) -> dict[str, float]:
        """mean, p50, p90, p99, p99.9 and max in milliseconds; and each of `extra` (p95, p97_5)."""
        read = self._cumulative()  # one read for every figure
        out = {"mean": self.mean_ns(read) / NS_PER_MS}
        for name, pct in QUANTILES.items():
            out[name] = self.quantile_ns(pct, read) / NS_PER_MS
        for name in extra:
            out[name] = self.quantile_ns(percent(name), read) / NS_PER_MS
        out["max"] = self.max_ns(read.hdr) / NS_PER_MS
        return {k: round(v, 4) for k, v in out.items()}

    def to_dict(self) -> dict[str, Any]:
        """The wire form: the layout, the buckets up to the last one used as hdrh's varint stream
        (zero runs as one negative varint) in base64, the lowest and highest value, the overflow."""
        hdr = self._settled()
        counts = ""
        if hdr.total_count:
            limit = (counts_index(hdr.max_value) if hdr.max_value > 0 else 0) + 1
            room = limit * (WORD_BYTES + 1)  # a varint's worst case
            buffer = (ctypes.c_byte * room)()
            length = encode(ctypes.addressof(hdr.counts), limit, WORD_BYTES, ctypes.addressof(buffer), room)
            counts = base64.b64encode(ctypes.string_at(buffer, length)).decode("ascii")
        return {
            "layout": list(LAYOUT),
            "counts": counts,
            "min_ns": hdr.min_value if hdr.total_count else 0,
            "max_ns": hdr.max_value,
            "overflow": self.overflow,
            "overflow_max_ns": self.overflow_max_ns,
        }

    def merge_dict(self, data: dict[str, Any]) -> None:
        """Add a wire histogram's buckets to this one's (the collector's hot path: see the top)."""
        if data["layout"] != _LAYOUT_LIST:
            raise LayoutError(f"histogram layout {data['layout']} is not {_LAYOUT_LIST}")
        self.overflow += data["overflow"]
        if data["overflow_max_ns"] > self.overflow_max_ns:
            self.overflow_max_ns = data["overflow_max_ns"]
        if data["counts"]:
            _add_wire(self._settled(), data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyHistogram:
        hist = cls()
        hist.merge_dict(data)
        return hist


_LAYOUT_LIST = list(LAYOUT)


def _add_wire(hdr: HdrHistogram, data: dict[str, Any]) -> None:
    """Add a wire histogram's buckets (non-empty) into `hdr`'s: decoded into the thread's scratch
    array, the used range added and cleared in C."""
    scratch = _scratch.address
    read = decode(binascii.a2b_base64(data["counts"]), 0, scratch, COUNTS_LEN, WORD_BYTES)
    low, high = read["min_nonzero_index"], read["max_nonzero_index"]
    offset, width = low * WORD_BYTES, high - low + 1
    add_array(ctypes.addressof(hdr.counts) + offset, scratch + offset, width, WORD_BYTES)
    ctypes.memset(scratch + offset, 0, width * WORD_BYTES)
    hdr.total_count += read["total"]
    if data["min_ns"] < hdr.min_value:
        hdr.min_value = data["min_ns"]
    if data["max_ns"] > hdr.max_value:
        hdr.max_value = data["max_ns"]


class Reading(NamedTuple):
    """A histogram's buckets as its figures are read from them (LatencyHistogram._cumulative)."""

    hdr: HdrHistogram
    low: int  # the first bucket used
    used: list[int]  # the counts from it to the last bucket used
    cumulative: list[int]  # the values at or below each of those


def _used(hdr: HdrHistogram) -> tuple[int, list[int]]:
    """The first bucket used and the counts from it to the last used, by the lowest and highest
    value; all of them if those do not account for every value (they always should)."""
    high = counts_index(hdr.max_value) if hdr.max_value > 0 else 0
    low = counts_index(hdr.min_value) if 0 < hdr.min_value <= hdr.max_value else 0
    used = hdr.counts[low : high + 1]
    if sum(used) != hdr.total_count:
        return 0, hdr.counts[:]
    return low, used


def _value_at_percentile(read: Reading, percentile: float) -> int:
    """hdrh's get_value_at_percentile, by bisection of the cumulative counts."""
    target = max(int(min(percentile, 100.0) * read.hdr.total_count / 100 + 0.5), 1)
    index = bisect_left(read.cumulative, target)
    if index >= len(read.cumulative):
        return 0
    lowest, highest, _ = _bucket_values()
    return highest[read.low + index] if percentile else lowest[read.low + index]
