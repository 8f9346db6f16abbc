"""`runner compare A B`: two results side by side, deltas, and whether they exceed the noise."""

from __future__ import annotations

import re
from typing import Any

from runner.errors import UsageError
from runner.result import Result

# The run-wide rows: figure name (runner.result, as --check and --fail-if name it) -> (label, higher is better).
RUN_METRICS: dict[str, tuple[str, bool]] = {
    "ops_per_s": ("ops/s", True),
    "wall_s": ("wall s", False),
    "connections.peak": ("peak server connections", False),
    "errors": ("errors", False),
}


def _metrics(a: Result, b: Result) -> list[tuple[str, str, bool]]:
    """(figure, label, higher is better) for every row: the run's, then p50 and p99 of each op both ran."""
    metrics = [(figure, label, better) for figure, (label, better) in RUN_METRICS.items()]
    for op in sorted(set(a.ops) & set(b.ops)):
        for q in ("p50", "p99"):
            metrics.append((f"{op}.{q}", f"{op} {q} ms", False))
    return metrics


def mismatch(a: Result, b: Result) -> list[str]:
    """What makes two documents compare poorly, one line each (a different schema is refused)."""
    if a.schema_version != b.schema_version:
        raise UsageError(
            f"A is a schema-version-{a.schema_version} document and B a version-{b.schema_version} one: "
            "compare two documents of one version (run the older configuration again)"
        )
    found = []
    workloads = [(result.doc.get("config") or {}).get("workload") for result in (a, b)]
    if workloads[0] != workloads[1]:
        found.append(f"A ran workload {workloads[0]!r} and B {workloads[1]!r}: only the ops they share are compared")
    return found


def compare(a: Result, b: Result) -> list[dict[str, Any]]:
    """One row per metric: A's and B's value (with --repeat, the median of the runs' values, each
    percentile's too), delta %, and a verdict: beyond or within the runs' spread."""
    try:
        return [_row(a, b, *metric) for metric in _metrics(a, b)]
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise UsageError(f"a document lacks a figure compare needs ({exc!s}): not a run's document of this version") from None


def _row(a: Result, b: Result, figure: str, label: str, higher_is_better: bool) -> dict[str, Any]:
    spread_a, spread_b = a.spread(figure), b.spread(figure)
    value_a = spread_a.median if spread_a else _value(a, figure)
    value_b = spread_b.median if spread_b else _value(b, figure)
    beyond: bool | None
    if figure == "wall_s" and (a.options.duration_s is not None or b.options.duration_s is not None):
        beyond, verdict = False, "set by --duration: not a measurement"
    elif spread_a and spread_b:
        beyond = not spread_a.overlaps(spread_b)
        verdict = "beyond the spread" if beyond else "within the spread"
    else:
        missing = " and ".join(side for side, spread in (("A", spread_a), ("B", spread_b)) if not spread)
        beyond, verdict = None, f"unknown (no spread: run {missing} with --repeat)"
    if beyond and value_a != value_b:
        better = (value_b > value_a) == higher_is_better
        verdict += ": B better" if better else ": B worse"
    return {
        "metric": label,
        "a": value_a,
        "b": value_b,
        "delta_pct": round((value_b - value_a) / value_a * 100, 2) if value_a else None,
        "significant": beyond,
        "verdict": verdict,
    }


def _value(result: Result, figure: str) -> float:
    value = result.figure(figure)
    if value is None:
        raise KeyError(figure)
    return value


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
