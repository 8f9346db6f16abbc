"""The run over time: one entry per interval, the seed's connection graph as data."""

from __future__ import annotations

from typing import Any

from runner.measure.collector import Collector, IntervalBin, OpTotals
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


def build_timeline(collector: Collector, samples: list[Sample], bounds: list[tuple[float, float]] | None = None) -> list[dict[str, Any]]:
    """Every bin from the first to the last, timed from the start barrier (the moment the
    workers were released). A bin no record landed in is kept, with zero ops: a stall shows.
    With --stages (`bounds`: each step's start and end in seconds), each entry names its step."""
    entries = []
    previous_ns = 0
    for index in range(1, max(collector.timeline, default=0) + 1):
        interval_bin = collector.interval_bin(index)
        entry = timeline_entry(interval_bin, samples, previous_ns, collector.go_ns)
        if bounds:
            entry["stage"] = stage_of(bounds, _middle_s(collector, interval_bin))
        entries.append(entry)
        previous_ns = interval_bin.t_ns
    return entries


def _middle_s(collector: Collector, interval_bin: IntervalBin) -> float:
    """The middle of the interval that ended at the bin's time: where its ops mostly ran."""
    return max(0.0, (interval_bin.t_ns - collector.interval_ns / 2) / NS_PER_S)


def stage_of(bounds: list[tuple[float, float]], t_s: float) -> int:
    """The step an interval ending `t_s` after the barrier belongs to (the last one after the end)."""
    for index, (_, end) in enumerate(bounds):
        if t_s <= end + 1e-6:
            return index
    return len(bounds) - 1


def _latency_entry(totals: OpTotals) -> dict[str, Any]:
    """One op type's ops, p50 and p99 (a timeline entry's and a step's)."""
    summary = totals.hist.summary_ms()  # once: it walks the histogram for every quantile
    return {"ops": totals.ok + totals.error_count, "p50_ms": summary["p50"], "p99_ms": summary["p99"]}


def stage_summaries(collector: Collector, stages: tuple[tuple[str, float, float], ...], bounds: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """Per step: the intervals that ended in it, added up (ops, rates, per-op latency)."""
    merged: list[dict[str, OpTotals]] = [{} for _ in bounds]
    for interval_bin in collector.timeline.values():
        by_op = merged[stage_of(bounds, _middle_s(collector, interval_bin))]
        for name, totals in interval_bin.by_op.items():
            target = by_op.setdefault(name, OpTotals())
            target.ok += totals.ok
            target.errors.update(totals.errors)
            target.hist.merge(totals.hist)
    out = []
    for index, ((kind, seconds, goal), (start, end), by_op) in enumerate(zip(stages, bounds, merged, strict=True)):
        ok = sum(t.ok for t in by_op.values())
        errors = sum(t.error_count for t in by_op.values())
        out.append({
            "index": index, "kind": kind, "target": goal, "start_s": round(start, 6), "end_s": round(end, 6),
            "ops": ok + errors, "ok": ok, "errors": errors, "ops_per_s": round(ok / seconds, 3),
            "by_op": {name: _latency_entry(t) for name, t in sorted(by_op.items())},
        })
    return out


def _anatomy_entry(totals: OpTotals) -> dict[str, Any] | None:
    """The interval's anatomy, cut to what a plot over time needs."""
    if totals.anatomy is None:
        return None
    full = totals.anatomy.summary()
    return {
        "statements_per_op": full["statements_per_op"],
        "pool_wait_p99_ms": full["pool_wait_ms"]["p99"],
        "db_p50_ms": full["db_ms"]["p50"] if full["db_ms"] else None,
        "python_p50_ms": full["python_ms"]["p50"] if full["python_ms"] else None,
    }


def _op_entry(totals: OpTotals) -> dict[str, Any]:
    return {**_latency_entry(totals), "anatomy": _anatomy_entry(totals)}


def timeline_entry(interval_bin: IntervalBin, samples: list[Sample], previous_ns: int, go_ns: int) -> dict[str, Any]:
    """One interval: every worker's deltas added, and the server's connections during it.

    `bin.t_ns` and `previous_ns` count from the workers' release; the samples are on the
    parent's clock, which released them at `go_ns`.
    """
    seconds = max(interval_bin.t_ns - previous_ns, 1) / NS_PER_S
    ok = sum(t.ok for t in interval_bin.by_op.values())
    errors = sum(t.error_count for t in interval_bin.by_op.values())
    return {
        "elapsed_s": round(interval_bin.t_ns / NS_PER_S, 3),
        "ops": ok + errors,
        "ok": ok,
        "errors": errors,
        "ops_per_s": round(ok / seconds, 3),
        "by_op": {name: _op_entry(t) for name, t in sorted(interval_bin.by_op.items())},
        "pool_checked_out": interval_bin.pool_checked_out,
        "server_connections": _states([s for s in samples if go_ns + previous_ns < s.t_ns <= go_ns + interval_bin.t_ns]),
    }
