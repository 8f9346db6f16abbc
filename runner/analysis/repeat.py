"""--repeat N: the same configuration N times, summarised so users see the noise."""

from __future__ import annotations

import statistics
from typing import Any


def spread(values: list[float]) -> dict[str, float]:
    """min / median / max, mean and stdev, and the spread (max - min) as a % of the median."""
    median = statistics.median(values)
    return {
        "min": round(min(values), 4),
        "median": round(median, 4),
        "max": round(max(values), 4),
        "mean": round(statistics.fmean(values), 4),
        "stdev": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "spread_pct": round((max(values) - min(values)) / median * 100, 2) if median else 0.0,
    }


def _known_spread(values: list[float | None]) -> dict[str, float] | None:
    """The spread of a figure every run knows; None if one did not (the server's CPU on another server)."""
    return None if any(v is None for v in values) else spread([float(v) for v in values if v is not None])


def combine(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run's document (by ops/s), with every run's figures under `.repeat`."""
    ordered = sorted(docs, key=lambda d: d["totals"]["ops_per_s"])
    op_names = sorted({name for d in docs for name in d["totals"]["by_op"]})
    return {
        **ordered[(len(ordered) - 1) // 2],
        "complete": all(d["complete"] for d in docs),
        "repeat": _figures(docs, op_names),
    }


def _figures(docs: list[dict[str, Any]], op_names: list[str]) -> dict[str, Any]:
    """`.repeat`: each figure --repeat keeps, over the runs, and every run's own."""
    return {
        "runs": len(docs),
        "ops_per_s": spread([d["totals"]["ops_per_s"] for d in docs]),
        "wall_s": spread([d["totals"]["wall_s"] for d in docs]),
        "server_peak": spread([float(d["totals"]["connections"]["server_peak"]) for d in docs]),
        **{name: _known_spread([d["totals"].get(name) for d in docs]) for name in ("client_cpu_ms_per_op", "server_cpu_ms_per_op")},
        "by_op": {
            name: {quantile: spread([d["totals"]["by_op"][name]["latency_ms"][quantile] for d in docs if name in d["totals"]["by_op"]]) for quantile in ("p50", "p99")}
            for name in op_names
        },
        "per_run": [
            {
                "ops_per_s": d["totals"]["ops_per_s"],
                "wall_s": d["totals"]["wall_s"],
                "ok": d["totals"]["ok"],
                "errors": d["totals"]["errors"],
                "complete": d["complete"],
            }
            for d in docs
        ],
    }
