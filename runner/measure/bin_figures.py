"""What a timeline entry shows of one op type in one interval bin: its p50 and p99, and its
anatomy cut to what a plot over time needs. Read from the bin's histograms while the bin can still
get records, and kept instead of them once it cannot (runner.measure.collector: a settled bin)."""

from __future__ import annotations

from typing import Any

from runner.measure.anatomy import Anatomy
from runner.measure.histogram import LatencyHistogram


def latency_figures(hist: LatencyHistogram) -> dict[str, Any]:
    """p50 and p99 in ms (a timeline entry's and a step's)."""
    summary = hist.summary_ms()  # once: it walks the histogram for every quantile
    return {"p50_ms": summary["p50"], "p99_ms": summary["p99"]}


def anatomy_figures(anatomy: Anatomy | None) -> dict[str, Any] | None:
    """The interval's anatomy, cut to what a plot over time needs."""
    if anatomy is None:
        return None
    full = anatomy.summary()
    return {
        "statements_per_op": full["statements_per_op"],
        "pool_wait_p99_ms": full["pool_wait_ms"]["p99"],
        "db_p50_ms": full["db_ms"]["p50"] if full["db_ms"] else None,
        "python_p50_ms": full["python_ms"]["p50"] if full["python_ms"] else None,
    }


def op_figures(hist: LatencyHistogram, anatomy: Anatomy | None) -> dict[str, Any]:
    """An op type's figures in one bin, without its count (which a late record can still change)."""
    return {**latency_figures(hist), "anatomy": anatomy_figures(anatomy)}
