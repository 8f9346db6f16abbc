"""--check EXPR: pass/fail conditions over a run's own figures, for CI (k6's thresholds).

Grammar (one expression per --check):

    check  := figure op number [unit]
    figure := ops_per_s | ok | ops | errors | error_rate | outcomes | outcome_rate | unfinished | dropped | wall_s
            | connections.peak | OP.(ops_per_s | ok | errors | error_rate | outcomes | outcome_rate | p50 | p90 | p99 | p99_9 | max | mean
                                 | any percentile: p95, p97_5 or k6's p(97.5)
                                 | statements_per_op | pool_wait.p99 | db.p99 | python.p99 ...)
    op     := <  <=  >  >=  ==  !=
    unit   := ms | s | us (latencies, compared in ms) | % (error_rate, outcome_rate: compared as a share) | /s

Parsed once at start-up, so a bad expression ends the run before it starts (exit 2).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.errors import UsageError
from runner.result import CPU_PER_OP, QUANTILES, RUN_FIGURES, Result, is_figure, is_latency, is_quantile

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt,
}
EXPRESSION = re.compile(r"^\s*([A-Za-z_][\w.\-]*(?:\(\d+(?:\.\d+)?\))?)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*(ms|s|us|%|/s)?\s*$")
K6_PERCENTILE = re.compile(r"p\((\d+)(?:\.(\d+))?\)$")  # k6's p(97.5), written p97_5 in the document
TO_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001}


@dataclass(frozen=True)
class Check:
    text: str
    figure: str
    compare: str
    threshold: float  # in the figure's own unit: ms for latencies, a share (0-1) for error_rate

    def measure(self, doc: dict[str, Any]) -> float | None:
        """The figure in the document; None when the run has none (e.g. no op of that type ran)."""
        return Result(doc).figure(self.figure)

    def evaluate(self, doc: dict[str, Any]) -> dict[str, Any]:
        value = self.measure(doc)
        passed = value is not None and OPERATORS[self.compare](value, self.threshold)
        return {"check": self.text, "figure": self.figure, "value": value, "threshold": self.threshold, "pass": passed}


def parse_check(text: str, ops: tuple[str, ...], option: str = "--check") -> Check:
    """One expression, checked against the workload's op types; UsageError says what is wrong
    (naming `option`: --check, or runner capacity's --slo, which has the same grammar)."""
    match = EXPRESSION.match(text)
    if match is None:
        raise UsageError(f"{option} {text!r}: write FIGURE OP NUMBER[UNIT], e.g. 'read.p99 < 50ms' or 'ops_per_s >= 800'")
    figure, compare, number, unit = match.groups()
    figure = _canonical(figure)
    if not is_figure(figure, ops):
        raise UsageError(
            f"{option} {text!r}: unknown figure {figure!r}: one of {', '.join(RUN_FIGURES)}, or OP.p99 (and p50, p90, "
            f"p99_9, max, mean, any percentile as p95 or p(97.5), ops_per_s, errors, error_rate, outcomes, outcome_rate, "
            "statements_per_op, db.p99, pool_wait.p99, python.p99) "
            f"for an op type of the workload ({', '.join(ops)})"
        )
    threshold = float(number)
    if is_latency(figure) or figure in CPU_PER_OP:
        if unit not in (None, *TO_MS):
            raise UsageError(f"{option} {text!r}: {figure} is a time: give ms, s or us")
        threshold *= TO_MS[unit or "ms"]
    elif figure.endswith(("error_rate", "outcome_rate")):
        if unit not in (None, "%"):
            raise UsageError(f"{option} {text!r}: {figure.rpartition('.')[2]} is a share: give it in % (e.g. 1%) or as 0.01")
        threshold = threshold / 100 if unit == "%" else threshold
    elif unit not in (None, "/s") or (unit == "/s" and not figure.endswith("ops_per_s")):
        raise UsageError(f"{option} {text!r}: {figure} takes no unit {unit!r}")
    return Check(text.strip(), figure, compare, threshold)


def _canonical(figure: str) -> str:
    """k6's p(97.5) as the document names it: p97_5."""
    match = K6_PERCENTILE.search(figure)
    if match is None:
        return figure
    whole, fraction = match.groups()
    return figure[: match.start()] + f"p{whole}" + (f"_{fraction}" if fraction else "")


def named_percentiles(texts: tuple[str, ...]) -> tuple[str, ...]:
    """The percentiles beyond the fixed ones that these checks (or SLOs) name: the run computes
    them for every op (and its anatomy's parts) so that the checks can read them."""
    found: list[str] = []
    for text in texts:
        match = EXPRESSION.match(text)
        if match is not None:
            name = _canonical(match.group(1)).rpartition(".")[2]
            if name not in QUANTILES and is_quantile(name) and name not in found:
                found.append(name)
    return tuple(found)


def failed_lines(results: list[dict[str, Any]], median: bool) -> list[str]:
    """One line per failed check for stderr."""
    where = " (the median run)" if median else ""
    return [
        f"check failed{where}: {r['check']}: measured {'nothing (no such op ran)' if r['value'] is None else show(r['value'])}"
        for r in results
        if not r["pass"]
    ]


def show(value: float) -> str:
    """A measured figure as the check lines print it."""
    return f"{value:.4g}"
