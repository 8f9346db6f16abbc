"""`runner compare A B`: two results side by side, deltas, and whether they exceed the noise."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runner.errors import UsageError
from runner.result import ANATOMY_COUNTS, Result, is_count

# The run-wide rows: figure name (runner.result, as --check and --fail-if name it) -> (label, higher is better).
RUN_METRICS: dict[str, tuple[str, bool]] = {
    "ops_per_s": ("ops/s", True),
    "wall_s": ("wall s", False),
    "connections.peak": ("peak server connections", False),
    "errors": ("errors", False),
    "client_cpu_ms_per_op": ("client CPU ms/op", False),
    "server_cpu_ms_per_op": ("server CPU ms/op", False),
}


def _metrics(a: Result, b: Result) -> list[tuple[str, str, bool]]:
    """(figure, label, higher is better) for every row: the run's, then p50 and p99 of each op both
    ran, then each anatomy count both measured (statements, rows per op: fewer is better)."""
    metrics = [(figure, label, better) for figure, (label, better) in RUN_METRICS.items() if a.figure(figure) is not None and b.figure(figure) is not None]
    for op in sorted(set(a.ops) & set(b.ops)):
        for q in ("p50", "p99"):
            metrics.append((f"{op}.{q}", f"{op} {q} ms", False))
        for count in ANATOMY_COUNTS:
            figure = f"{op}.{count}"
            if a.figure(figure) is not None and b.figure(figure) is not None:
                metrics.append((figure, f"{op} {count}", False))
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
    if is_count(figure):  # the same for the same --seed anywhere: any change is the code's
        beyond = value_a != value_b
        verdict = "changed (a count: no spread needed)" if beyond else "the same (a count: no spread needed)"
    elif figure == "wall_s" and (a.options.duration_s is not None or b.options.duration_s is not None):
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
        "figure": figure,
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


# FIGURE < -N% | FIGURE > +N%; a count's may be absolute (`> +0`) and name every op (`*.statements_per_op`).
FAIL_IF = re.compile(r"^\s*(\*?[A-Za-z_]*[\w.\-]*)\s*([<>])\s*([+-]?\d+(?:\.\d+)?)\s*(%?)\s*$")
WRITE = "write FIGURE < -N% or FIGURE > +N%, e.g. 'ops_per_s < -5%', 'read.p99 > +10%' or 'read.statements_per_op > +0'"
@dataclass(frozen=True)
class FailIf:
    text: str
    figure: str  # "ops_per_s", "read.p99", "*.statements_per_op"
    side: str  # "<" or ">"
    threshold: float
    percent: bool  # a change in %, else in the figure's own unit (counts only)

    def matches(self, row: dict[str, Any]) -> bool:
        if self.figure.startswith("*."):
            return str(row["figure"]).partition(".")[2] == self.figure[2:]
        return bool(row["figure"] == self.figure)

    def past(self, row: dict[str, Any]) -> bool:
        delta = row["delta_pct"] if self.percent else row["b"] - row["a"]
        if delta is None:  # from 0 to something: any rise is past a "> +N%", any fall past a "< -N%"
            return (row["b"] > row["a"]) == (self.side == ">") and row["b"] != row["a"]
        return bool(delta < self.threshold if self.side == "<" else delta > self.threshold)


def parse_fail_if(text: str) -> FailIf:
    """`'ops_per_s < -5%'`, `'read.p99 > +10%'`, `'read.statements_per_op > +0'`, `'*.rows_per_op > +0%'`."""
    match = FAIL_IF.match(text)
    if match is None:
        raise UsageError(f"--fail-if {text!r}: {WRITE}")
    figure, side, number, percent = match.groups()
    op, _, rest = figure.partition(".")
    timing = figure in RUN_METRICS or (op != "*" and rest in ("p50", "p99"))
    if not timing and not (rest in ANATOMY_COUNTS and op):
        raise UsageError(
            f"--fail-if {text!r}: unknown figure {figure!r}: one of {', '.join(RUN_METRICS)}, OP.p50, OP.p99, "
            f"or OP.COUNT (COUNT one of {', '.join(ANATOMY_COUNTS)}; OP * for every op)"
        )
    if timing and not percent:
        raise UsageError(f"--fail-if {text!r}: {WRITE}")
    return FailIf(text, figure, side, float(number), bool(percent))


def rules_against(texts: tuple[str, ...], rows: list[dict[str, Any]], lacking: str) -> Iterator[tuple[FailIf, dict[str, Any]]]:
    """Each --fail-if with each row it names (`*.` names one per op); `lacking` says why a rule
    that names none could not: one line, exit 2."""
    for text in texts:
        rule = parse_fail_if(text)
        matched = [row for row in rows if rule.matches(row)]
        if not matched:
            raise UsageError(f"--fail-if {text!r}: {lacking.format(figure=repr(rule.figure))}")
        for row in matched:
            yield rule, row


def fail_ifs(texts: tuple[str, ...], rows: list[dict[str, Any]], a: Result | None = None, b: Result | None = None) -> list[dict[str, Any]]:
    """Each --fail-if against the compared rows: a timing figure fails only past its threshold *and*
    beyond both results' spread, so noise never fails a build; a count (statements per op) fails
    past its threshold alone, and says which statement B repeats."""
    results = []
    for rule, row in rules_against(texts, rows, "the two results have no {figure} in common (a count needs --anatomy on both)"):
        if row["significant"] is None:
            raise UsageError(f"--fail-if {rule.text!r}: needs --repeat runs on both sides to know the spread (e.g. --repeat 3)")
        fail = rule.past(row) and bool(row["significant"])
        detail = repeated_statement(row["figure"], a, b) if fail and is_count(row["figure"]) else None
        results.append(judged_row(rule, row, fail, detail, beyond_spread=row["significant"]))
    return results


def judged_row(rule: FailIf, row: dict[str, Any], fail: bool, detail: str | None, **more: Any) -> dict[str, Any]:
    """One --fail-if on one row, as `fail_if[]` lists it."""
    return {"fail_if": rule.text, "metric": row["metric"], "figure": row["figure"], "delta_pct": row["delta_pct"], **more, "fail": fail, "detail": detail}


def repeated_statement(figure: str, a: Result | None, b: Result | None) -> str | None:
    """What B's op repeats, and how often against A: the statement a lost joinedload multiplied."""
    op = figure.partition(".")[0]
    found_b = b.most_repeated(op) if b is not None else None
    if found_b is None:
        return None
    found_a = a.most_repeated(op) if a is not None else None
    before = f"; A: {found_a[1]:g} per op" + ("" if found_a[0] == found_b[0] else f" of its own most repeated, {found_a[0]!r}") if found_a else ""
    return f"B's most repeated statement, {found_b[1]:g} per op{before}: {found_b[0]}"


def fail_line(result: dict[str, Any]) -> str:
    """One failed --fail-if, as stderr says it."""
    delta = "from nothing" if result["delta_pct"] is None else f"{result['delta_pct']:+.1f}%"
    why = "" if is_count(result["figure"]) else ", beyond the spread"
    detail = f" ({result['detail']})" if result["detail"] else ""
    return f"{result['fail_if']}: {result['metric']} changed {delta}{why}{detail}"
