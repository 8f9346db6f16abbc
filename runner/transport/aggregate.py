"""A node's workers' interval records merged where they run: one record per node per interval.

One parent reading every worker's record spends its CPU per record: on Ray 0.57-0.95 ms of
Ray's own per streamed item (bench/cluster.py --ray-items), before its decode and merge, so 1,000
workers at 1 s took most of a core. On Ray, each node with workers has one aggregator
(runner.transport.ray.NodeAggregator) that reads its workers' streams and hands the parent:

- every record that is not a measured interval as it came (start, go, warm-up, final), so a
  worker's liveness, its end and its errors are still its own;
- the measured intervals that went to one timeline bin as one `merged` record (the same binning
  rule as the parent's, runner.measure.collector.bin_index), with each worker's place in its
  sequence and its own counts (cumulative), and each worker's probe lateness (a histogram,
  cumulative) every TOTALS_EVERY of its intervals and when it ends;
- a worker's stream ending or failing as its own event.

A bin goes once every live worker of the node has passed it, or FLUSH_WAIT intervals after its
first record came (a slow worker's late record then goes in a record of its own: the parent adds
bins, whatever their number). Before any record passed on as it came, everything pending goes
first: the parent sees each worker's records in its sequence.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from runner.measure.collector import OpTotals, bin_index, totals_of
from runner.measure.histogram import LatencyHistogram
from runner.measure.records import WIRE_VERSION, IntervalRecord, MergedEntry, MergedRecord, WorkerTotals, decode

NS_PER_S = 1_000_000_000
TOTALS_EVERY = 10  # a worker's probe lateness reaches the parent every this many intervals (and at its end)
FLUSH_WAIT = 1.0  # intervals a bin waits for the node's slowest worker after its first record

# What an aggregator hands the parent, in order: ("line", worker, bytes) a worker's record as it
# came; ("merged", workers, bytes) a merged record and the workers it speaks for; ("ended",
# worker, None) its stream ended; ("lost", worker, reason) its stream failed.
Item = tuple[str, Any, Any]


@dataclass
class _Bin:
    """The node's intervals in one timeline bin so far."""

    first_s: float  # when its first record came (the aggregator's clock)
    t_ns: int = 0
    ops: dict[str, OpTotals] = field(default_factory=dict)
    pool_checked_out: int = 0
    late_ops: int = 0
    max_lag_ns: int = 0
    entries: dict[int, MergedEntry] = field(default_factory=dict)


@dataclass
class _Worker:
    last_bin: int = 0
    last_t_ns: int = 0
    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # ok, errors, dropped, unfinished so far
    tick_lag: LatencyHistogram = field(default_factory=LatencyHistogram)
    unsent: int = 0  # intervals since its totals last went
    live: bool = True


class NodeMerge:
    """The merging part of a node's aggregator (no Ray in it: tested on its own)."""

    def __init__(self, workers: Iterable[int], interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_ns = int(interval_s * NS_PER_S)
        self._wait_s = FLUSH_WAIT * interval_s
        self._clock = clock
        self._workers = {worker: _Worker() for worker in workers}
        self._bins: dict[int, _Bin] = {}

    def add(self, worker: int, line: bytes) -> list[Item]:
        """A record from `worker`'s stream: merged if it is a measured interval, else passed on
        (after everything pending, with the worker's totals if it is its final record)."""
        record = decode(line)
        if record["kind"] == "interval" and record["phase"] == "measure":
            self._merge(worker, record)
            return []
        final = record["kind"] == "final"
        if final:
            self._workers[worker].live = False
        return [*self.flush({worker} if final else set()), ("line", worker, line)]

    def gone(self, worker: int, reason: str | None) -> list[Item]:
        """`worker`'s stream ended (`reason` None) or failed: what is pending, its totals (unless
        its final record took them), then that."""
        state = self._workers[worker]
        unsent = {worker} if state.live else set()
        state.live = False
        return [*self.flush(unsent), ("ended", worker, None) if reason is None else ("lost", worker, reason)]

    def due(self) -> list[Item]:
        """The bins every live worker has passed, or that waited long enough, lowest first."""
        now = self._clock()
        lowest = min((w.last_bin for w in self._workers.values() if w.live), default=None)
        ready = []
        for index in sorted(self._bins):
            passed = lowest is None or index <= lowest  # every live worker has sent its record for it
            if not passed and now - self._bins[index].first_s < self._wait_s:
                break  # in order: a later bin never goes before an earlier one
            ready.append(index)
        return self._send(ready, set())

    def flush(self, totals_for: set[int]) -> list[Item]:
        """Every pending bin, with the totals of `totals_for` (in a record of their own if none is)."""
        return self._send(sorted(self._bins), totals_for)

    def _merge(self, worker: int, record: IntervalRecord) -> None:
        state = self._workers[worker]
        index = bin_index(self._interval_ns, record["t_ns"], state.last_bin, state.last_t_ns)
        state.last_bin, state.last_t_ns = max(state.last_bin, index), record["t_ns"]
        state.tick_lag.merge_dict(record["tick_lag"])
        state.unsent += 1
        pending = self._bins.get(index)
        if pending is None:
            pending = self._bins[index] = _Bin(first_s=self._clock())
        pending.t_ns = max(pending.t_ns, record["t_ns"])
        pending.pool_checked_out += record["pool_checked_out"]
        pending.late_ops += record["schedule"]["late_ops"]
        pending.max_lag_ns = max(pending.max_lag_ns, record["schedule"]["max_lag_ns"])
        counts = state.counts
        for name, delta in record["ops"].items():
            totals_of(pending.ops, name).add(delta, histograms=True)
            counts[0] += delta["ok"]
            counts[1] += sum(delta["errors"].values())
            counts[2] += delta["dropped"]
            counts[3] += delta["unfinished"]
        entry = pending.entries.get(worker)
        if entry is None:
            entry = pending.entries[worker] = {"worker": worker, "seqs": [record["seq"], record["seq"]], "t_ns": 0, "bin": index, "counts": []}
        entry["seqs"][1], entry["t_ns"], entry["counts"] = record["seq"], record["t_ns"], list(counts)  # as of this record

    def _send(self, indexes: list[int], totals_for: set[int]) -> list[Item]:
        items: list[Item] = []
        for n, index in enumerate(indexes):
            pending = self._bins.pop(index)
            last = n == len(indexes) - 1
            items.append(self._record(index, pending, self._totals(totals_for if last else set())))
        if not indexes and totals_for:
            items.append(self._record(None, _Bin(first_s=0.0), self._totals(totals_for)))
        return items

    def _totals(self, forced: set[int]) -> list[WorkerTotals]:
        """The probe lateness of the workers in `forced` and of those due theirs (cumulative: a
        worker's every interval merged so far, the pending bins' included)."""
        out: list[WorkerTotals] = []
        for worker, state in self._workers.items():
            if worker in forced or state.unsent >= TOTALS_EVERY:
                state.unsent = 0
                out.append({"worker": worker, "tick_lag": state.tick_lag.to_dict()})
        return out

    def _record(self, index: int | None, pending: _Bin, totals: list[WorkerTotals]) -> Item:
        record: MergedRecord = {
            "v": WIRE_VERSION,
            "kind": "merged",
            "bin": index,
            "t_ns": pending.t_ns,
            "ops": {name: totals.to_delta() for name, totals in pending.ops.items()},
            "pool_checked_out": pending.pool_checked_out,
            "schedule": {"late_ops": pending.late_ops, "max_lag_ns": pending.max_lag_ns},
            "workers": list(pending.entries.values()),
            "totals": totals,
        }
        workers = tuple(sorted({*pending.entries, *(t["worker"] for t in totals)}))
        return ("merged", workers, orjson.dumps(record))
