"""`runner compare A B`: two results side by side, deltas, and whether they exceed the noise."""

from __future__ import annotations

import re
from typing import Any

from runner.errors import UsageError

# (name, path into .totals, path into .repeat, higher is better)
Metric = tuple[str, tuple[str, ...], tuple[str, ...] | None, bool]


# The run-wide rows, by the figure name --fail-if uses for them (the --check names).
RUN_METRICS: dict[str, Metric] = {
    "ops_per_s": ("ops/s", ("ops_per_s",), ("ops_per_s",), True),
    "wall_s": ("wall s", ("wall_s",), ("wall_s",), False),
    "connections.peak": ("peak server connections", ("connections", "server_peak"), ("server_peak",), False),
    "errors": ("errors", ("errors",), None, False),
}


def _metrics(a: dict[str, Any], b: dict[str, Any]) -> list[Metric]:
    metrics = list(RUN_METRICS.values())
    for op in sorted(set(a["totals"]["by_op"]) & set(b["totals"]["by_op"])):
        for q in ("p50", "p99"):
            metrics.append((f"{op} {q} ms", ("by_op", op, "latency_ms", q), ("by_op", op, q), False))
    return metrics


def _get(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


def _range(doc: dict[str, Any], path: tuple[str, ...] | None) -> tuple[float, float] | None:
    if path is None or not doc.get("repeat"):
        return None
    summary = _get(doc["repeat"], path)
    return summary["min"], summary["max"]


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric: A's and B's value (medians when repeated), delta %, and a verdict."""
    rows = []
    for name, path, repeat_path, higher_is_better in _metrics(a, b):
        value_a, value_b = float(_get(a["totals"], path)), float(_get(b["totals"], path))
        range_a, range_b = _range(a, repeat_path), _range(b, repeat_path)
        if range_a and range_b:
            beyond = range_a[1] < range_b[0] or range_b[1] < range_a[0]
            verdict = "beyond the spread" if beyond else "within the spread"
        else:
            beyond, verdict = None, "unknown (use --repeat on both)"
        if beyond and value_a != value_b:
            better = (value_b > value_a) == higher_is_better
            verdict += ": B better" if better else ": B worse"
        rows.append(
            {
                "metric": name,
                "a": value_a,
                "b": value_b,
                "delta_pct": round((value_b - value_a) / value_a * 100, 2) if value_a else None,
                "significant": beyond,
                "verdict": verdict,
            }
        )
    return rows


def render(rows: list[dict[str, Any]], name_a: str, name_b: str) -> str:
    lines = [f"A = {name_a}", f"B = {name_b}", f"{'metric':<28} {'A':>12} {'B':>12} {'delta':>9}  verdict"]
    for row in rows:
        delta = f"{row['delta_pct']:+.1f}%" if row["delta_pct"] is not None else "n/a"
        lines.append(f"{row['metric']:<28} {row['a']:>12.2f} {row['b']:>12.2f} {delta:>9}  {row['verdict']}")
    return "\n".join(lines)


FAIL_IF = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*([<>])\s*([+-]?\d+(?:\.\d+)?)\s*%\s*$")
def parse_fail_if(text: str) -> tuple[str, str, float]:
    """`'ops_per_s < -5%'` -> ("ops/s", "<", -5.0); `'read.p99 > +10%'` -> ("read p99 ms", ">", 10.0)."""
    match = FAIL_IF.match(text)
    if match is None:
        raise UsageError(f"--fail-if {text!r}: write FIGURE < -N% or FIGURE > +N%, e.g. 'ops_per_s < -5%' or 'read.p99 > +10%'")
    figure, side, number = match.groups()
    op, _, quantile = figure.partition(".")
    metric = RUN_METRICS[figure][0] if figure in RUN_METRICS else (f"{op} {quantile} ms" if quantile in ("p50", "p99") else None)
    if metric is None:
        raise UsageError(f"--fail-if {text!r}: unknown figure {figure!r}: one of {', '.join(RUN_METRICS)}, or OP.p50, OP.p99")
    return metric, side, float(number)


def fail_ifs(texts: tuple[str, ...], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each --fail-if against the compared rows: it fails only past its threshold *and* beyond
    both results' spread, so noise never fails a build."""
    by_metric = {row["metric"]: row for row in rows}
    results = []
    for text in texts:
        metric, side, threshold = parse_fail_if(text)
        row = by_metric.get(metric)
        if row is None:
            raise UsageError(f"--fail-if {text!r}: the two results have no {metric!r} in common")
        if row["significant"] is None:
            raise UsageError(f"--fail-if {text!r}: needs --repeat runs on both sides to know the spread (e.g. --repeat 3)")
        delta = row["delta_pct"]
        past = delta is not None and (delta < threshold if side == "<" else delta > threshold)
        results.append({"fail_if": text, "metric": metric, "delta_pct": delta, "beyond_spread": row["significant"], "fail": bool(past and row["significant"])})
    return results
