"""The run over time: one entry per interval, the seed's connection graph as data."""

from __future__ import annotations

from typing import Any

from runner.measure.bin_figures import latency_figures, op_figures
from runner.measure.collector import Collector, IntervalBin, stage_of
from runner.measure.sample import Sample

NS_PER_S = 1_000_000_000


def _states(samples: list[Sample]) -> dict[str, int]:
    """The most connections seen in each state during one interval."""
    return {
        "total": max((s.total for s in samples), default=0),
        "active": max((s.active for s in samples), default=0),
        "idle": max((s.idle for s in samples), default=0),
        "idle_in_transaction": max((s.idle_in_transaction for s in samples), default=0),
    }


def build_timeline(collector: Collector, samples: list[Sample]) -> list[dict[str, Any]]:
    """Every bin from the first to the last, timed from the start barrier (the moment the
    workers were released). A bin no record landed in is kept, with zero ops: a stall shows.
    With --stages (the collector's bounds), each entry names its step."""
    bounds = collector.stage_bounds
    entries = []
    previous_ns = 0
    for index in range(1, max(collector.timeline, default=0) + 1):
        interval_bin = collector.interval_bin(index)
        entry = timeline_entry(interval_bin, samples, previous_ns, collector.go_ns)
        if bounds:
            entry["stage"] = stage_of(bounds, collector.middle_s(index, interval_bin))
        entries.append(entry)
        previous_ns = interval_bin.t_ns
    return entries


def stage_summaries(collector: Collector, stages: tuple[tuple[str, float, float], ...]) -> list[dict[str, Any]]:
    """Per step: the intervals that ended in it, added up (ops, rates, per-op latency), as the
    collector added each bin into its step when it settled (all have, once it is closed)."""
    assert collector.stage_bounds and collector.settled_below > max(collector.timeline, default=0), "a closed collector, made with the stages' bounds"
    out = []
    for index, ((kind, seconds, goal), (start, end), by_op) in enumerate(zip(stages, collector.stage_bounds, collector.stage_by_op, strict=True)):
        ok = sum(t.ok for t in by_op.values())
        errors = sum(t.error_count for t in by_op.values())
        out.append({
            "index": index, "kind": kind, "target": goal, "start_s": round(start, 6), "end_s": round(end, 6),
            "ops": ok + errors, "ok": ok, "errors": errors, "ops_per_s": round(ok / seconds, 3),
            "by_op": {name: {"ops": t.ok + t.error_count, **latency_figures(t.hist)} for name, t in sorted(by_op.items())},
        })
    return out


def _op_entries(interval_bin: IntervalBin) -> dict[str, dict[str, Any]]:
    """Each op type's entry in a bin: from its histograms, or as the bin kept them when it settled."""
    if interval_bin.settled is not None:
        return {name: {"ops": op.ok + op.errors, **op.figures} for name, op in sorted(interval_bin.settled.items())}
    return {name: {"ops": t.ok + t.error_count, **op_figures(t.hist, t.anatomy)} for name, t in sorted(interval_bin.by_op.items())}


def _counts(interval_bin: IntervalBin) -> tuple[int, int]:
    """The bin's ok and failed ops."""
    if interval_bin.settled is not None:
        return sum(op.ok for op in interval_bin.settled.values()), sum(op.errors for op in interval_bin.settled.values())
    return sum(t.ok for t in interval_bin.by_op.values()), sum(t.error_count for t in interval_bin.by_op.values())


def timeline_entry(interval_bin: IntervalBin, samples: list[Sample], previous_ns: int, go_ns: int) -> dict[str, Any]:
    """One interval: every worker's deltas added, and the server's connections during it.

    `bin.t_ns` and `previous_ns` count from the workers' release; the samples are on the
    parent's clock, which released them at `go_ns`.
    """
    seconds = max(interval_bin.t_ns - previous_ns, 1) / NS_PER_S
    ok, errors = _counts(interval_bin)
    return {
        "elapsed_s": round(interval_bin.t_ns / NS_PER_S, 3),
        "ops": ok + errors,
        "ok": ok,
        "errors": errors,
        "ops_per_s": round(ok / seconds, 3),
        "by_op": _op_entries(interval_bin),
        "pool_checked_out": interval_bin.pool_checked_out,
        "server_connections": _states([s for s in samples if go_ns + previous_ns < s.t_ns <= go_ns + interval_bin.t_ns]),
    }
