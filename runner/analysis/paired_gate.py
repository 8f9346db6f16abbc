"""`runner compare --run A_DIR B_DIR [run options]`: the timing gate that resolves a few percent on
a noisy machine.

The same run options are run in two checkouts (main's and the pull request's), interleaved round
by round (A B, then B A, ...) on one server, each run a `python -m runner` of its own with the
checkout as its working directory and first on its import path, so the two versions of the
app's code never meet in one interpreter. A drift of the machine (another job, the server's
autovacuum, a cache) falls on both runs of a round alike and cancels in the round's ratio B/A;
each timing figure gets the paired ratio with its 95 % interval (runner.advise.paired). A
--fail-if on a timing fails only when the whole interval is past its threshold, passes only when
the whole interval is on the right side of it, and otherwise says it can't tell, with the
interval's width, instead of passing. The anatomy's counts are judged as `compare` judges them.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson

from runner.advise.paired import Ratio, paired_ratio
from runner.analysis.compare import ANATOMY_COUNTS, RUN_METRICS, judged_row, repeated_statement, rules_against
from runner.dsn import child_env
from runner.errors import ExitCode, UsageError
from runner.result import CPU_PER_OP, Result, is_count

DEFAULT_ROUNDS = 6
# Options a round's run cannot take: the gate owns the output, the server and the repeats.
REFUSED = ("--output", "--repeat", "--jsonl", "--prometheus-port", "--dsn", "--cluster")


@dataclass(frozen=True)
class Side:
    label: str  # "A" or "B"
    directory: Path


def check_run_options(options: tuple[str, ...]) -> None:
    for option in options:
        name = option.split("=", 1)[0]
        if name in REFUSED:
            raise UsageError(f"compare --run: {name} is the gate's own (it runs each side once per round, on one server, to stdout): leave it out")


def sides(a: str, b: str) -> tuple[Side, Side]:
    found = []
    for label, given in (("A", a), ("B", b)):
        directory = Path(given).resolve()
        if not directory.is_dir():
            raise UsageError(f"compare --run: {label} must be a directory (a checkout of the code to measure), got {given!r}")
        found.append(Side(label, directory))
    return found[0], found[1]


def run_side(side: Side, options: tuple[str, ...], dsn: str, running: list[subprocess.Popen[str]] | None = None) -> dict[str, Any]:
    """One run of the options in one checkout: its document. A run refused or failed before it
    measured anything ends the gate with its own line. `running` holds the process while it runs
    (a SIGTERM to the gate is passed on to it)."""
    env = child_env(dsn)
    env["PYTHONPATH"] = os.pathsep.join([str(side.directory), *filter(None, [env.get("PYTHONPATH")])])
    argv = [sys.executable, "-m", "runner", *options, "--quiet"]
    with subprocess.Popen(argv, cwd=side.directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        if running is not None:
            running.append(child)
        try:
            stdout, stderr = child.communicate()
        finally:
            if running is not None:
                running.remove(child)
    if not stdout.strip():
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"compare --run: {side.label}'s run in {side.directory} ended with exit {child.returncode}: {last.removeprefix('runner: error: ')}")
    doc: dict[str, Any] = orjson.loads(stdout)
    return doc


def _timing_figures(a: Result, b: Result) -> list[tuple[str, str, bool]]:
    """(figure, label, higher is better) the rounds pair: throughput and each shared op's p50, p99."""
    figures = [("ops_per_s", "ops/s", True)]
    for name in CPU_PER_OP:  # CPU per op: what the client's (or server's) code costs, paired like a timing
        if a.figure(name) is not None and b.figure(name) is not None:
            figures.append((name, RUN_METRICS[name][0], False))
    if a.options.duration_s is None and b.options.duration_s is None:
        figures.append(("wall_s", "wall s", False))
    for op in sorted(set(a.ops) & set(b.ops)):
        figures += [(f"{op}.p50", f"{op} p50 ms", False), (f"{op}.p99", f"{op} p99 ms", False)]
    return figures


def _counts(a: Result, b: Result) -> list[tuple[str, str]]:
    return [
        (f"{op}.{count}", f"{op} {count}")
        for op in sorted(set(a.ops) & set(b.ops))
        for count in ANATOMY_COUNTS
        if a.figure(f"{op}.{count}") is not None and b.figure(f"{op}.{count}") is not None
    ]


def _median(results: list[Result], figure: str) -> float:
    return statistics.median(v for v in (r.figure(figure) for r in results) if v is not None)


def paired_rows(results_a: list[Result], results_b: list[Result]) -> list[dict[str, Any]]:
    """One row per figure: the medians over the rounds, and for a timing the paired ratio B/A with
    its 95 % interval (delta, low and high in %)."""
    rows = []
    first_a, first_b = results_a[0], results_b[0]
    for figure, label, higher_is_better in _timing_figures(first_a, first_b):
        pairs = [(a.figure(figure), b.figure(figure)) for a, b in zip(results_a, results_b, strict=True)]
        ratio = paired_ratio([(x, y) for x, y in pairs if x is not None and y is not None])
        rows.append(_timing_row(figure, label, higher_is_better, _median(results_a, figure), _median(results_b, figure), ratio))
    for figure, label in _counts(first_a, first_b):
        value_a, value_b = _median(results_a, figure), _median(results_b, figure)
        rows.append(
            {
                "metric": label,
                "figure": figure,
                "a": value_a,
                "b": value_b,
                "delta_pct": round((value_b - value_a) / value_a * 100, 2) if value_a else None,
                "low_pct": None,
                "high_pct": None,
                "rounds": len(results_a),
                "verdict": "changed (a count)" if value_a != value_b else "the same (a count)",
            }
        )
    return rows


def _pct(ratio: float) -> float:
    return round((ratio - 1) * 100, 2)


def _timing_row(figure: str, label: str, higher_is_better: bool, value_a: float, value_b: float, ratio: Ratio | None) -> dict[str, Any]:
    row: dict[str, Any] = {"metric": label, "figure": figure, "a": value_a, "b": value_b}
    if ratio is None:
        return {**row, "delta_pct": None, "low_pct": None, "high_pct": None, "rounds": 0, "verdict": "can't tell: fewer than two paired rounds"}
    interval = f"{_pct(ratio.ratio):+.1f}% [{_pct(ratio.low):+.1f}%, {_pct(ratio.high):+.1f}%]"
    if not ratio.decided:
        verdict = f"{interval}: no change this machine can resolve (±{ratio.half_width:.0%})"
    else:
        better = (ratio.ratio > 1) == higher_is_better
        verdict = f"{interval}: B {'better' if better else 'worse'}"
    return {**row, "delta_pct": _pct(ratio.ratio), "low_pct": _pct(ratio.low), "high_pct": _pct(ratio.high), "rounds": ratio.rounds, "verdict": verdict}


def judge(texts: tuple[str, ...], rows: list[dict[str, Any]], a: Result, b: Result) -> list[dict[str, Any]]:
    """Each --fail-if against the paired rows: fail, pass, or can't tell (a timing whose interval
    straddles the threshold)."""
    judged = []
    lacking = "the rounds have no {figure} (a count needs --anatomy; wall_s is not paired on --duration runs)"
    for rule, row in rules_against(texts, rows, lacking):
        if is_count(row["figure"]):
            fail, decided = rule.past(row), True
        elif row["low_pct"] is None:
            fail, decided = False, False
        else:
            low, high = row["low_pct"], row["high_pct"]
            fail = high < rule.threshold if rule.side == "<" else low > rule.threshold
            passed = low >= rule.threshold if rule.side == "<" else high <= rule.threshold
            decided = fail or passed
        detail = repeated_statement(row["figure"], a, b) if fail and is_count(row["figure"]) else None
        judged.append(judged_row(rule, row, fail, detail, low_pct=row["low_pct"], high_pct=row["high_pct"], decided=decided))
    return judged


def judged_line(result: dict[str, Any], rounds: int) -> str:
    """A failed or undecided --fail-if, as stderr says it."""
    if is_count(result["figure"]):
        delta = "from nothing" if result["delta_pct"] is None else f"{result['delta_pct']:+.1f}%"
        detail = f" ({result['detail']})" if result["detail"] else ""
        return f"{result['fail_if']}: {result['metric']} changed {delta}{detail}"
    if result["low_pct"] is None:
        return f"{result['fail_if']}: can't tell: fewer than two paired rounds"
    interval = f"{result['delta_pct']:+.1f}% [{result['low_pct']:+.1f}%, {result['high_pct']:+.1f}%] over {rounds} paired rounds"
    if result["fail"]:
        return f"{result['fail_if']}: {result['metric']} changed {interval}"
    width = (result["high_pct"] - result["low_pct"]) / 2
    return f"{result['fail_if']}: can't tell: {result['metric']} changed {interval}, ±{width:.1f}% straddles the threshold; run more --rounds"


@dataclass
class Gate:
    """The rounds measured so far, and why they stopped early (None: all ran)."""

    a: list[Result]
    b: list[Result]
    stopped: str | None = None
    signal: int | None = None  # the signal that stopped them


def measure_rounds(sides_: tuple[Side, Side], options: tuple[str, ...], rounds: int, dsn: str, stderr: TextIO) -> Gate:
    """`rounds` paired rounds, A B then B A. A Ctrl-C reaches the run under way too (one process
    group), which reports what it measured; a SIGTERM is passed on to it. Either ends the rounds."""
    gate = Gate([], [])
    running: list[subprocess.Popen[str]] = []

    def received(number: int, _frame: Any) -> None:
        gate.signal = gate.signal or number
        if number == signal.SIGTERM:
            for child in running:
                child.send_signal(number)

    previous = {sig: signal.signal(sig, received) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for number in range(rounds):
            order = sides_ if number % 2 == 0 else sides_[::-1]
            measured: dict[str, Result] = {}
            for side in order:
                doc = run_side(side, options, dsn, running)
                measured[side.label] = Result.from_dict(doc, f"{side.label} round {number + 1}")
                if gate.signal is not None or not doc.get("complete", True):
                    break
            if gate.signal is not None:
                gate.stopped = f"interrupted by {signal.Signals(gate.signal).name} in round {number + 1}"
                break
            if len(measured) < 2:
                gate.stopped = f"round {number + 1}: {next(iter(measured))}'s run was incomplete"
                break
            gate.a.append(measured["A"])
            gate.b.append(measured["B"])
            a_rate, b_rate = measured["A"].figure("ops_per_s") or 0.0, measured["B"].figure("ops_per_s") or 0.0
            stderr.write(f"runner: round {number + 1} of {rounds} ({' '.join(s.label for s in order)}): A {a_rate:,.1f} ops/s, B {b_rate:,.1f} ops/s\n")
            stderr.flush()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return gate


def document(sides_: tuple[Side, Side], gate: Gate, rows: list[dict[str, Any]], judged: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "a": str(sides_[0].directory),
        "b": str(sides_[1].directory),
        "paired": True,
        "rounds": len(gate.a),
        "complete": gate.stopped is None,
        "stopped": gate.stopped,
        "warnings": [],
        "rows": rows,
        "fail_if": judged,
    }


def exit_code(gate: Gate, judged: list[dict[str, Any]]) -> ExitCode:
    """7 when a --fail-if failed; 130/143 when a signal stopped the rounds; 4 when a --fail-if could
    not be decided or a run was incomplete."""
    if any(result["fail"] for result in judged):
        return ExitCode.CHECKS
    if gate.signal is not None:
        return ExitCode.INTERRUPTED if gate.signal == signal.SIGINT else ExitCode.TERMINATED
    if gate.stopped is not None or not all(result["decided"] for result in judged):
        return ExitCode.INCOMPLETE
    return ExitCode.OK


def render(rows: list[dict[str, Any]], rounds: int) -> str:
    lines = [f"paired over {rounds} rounds (B/A, 95 % interval)", f"{'metric':<28} {'A':>12} {'B':>12}  verdict"]
    for row in rows:
        lines.append(f"{row['metric']:<28} {row['a']:>12.2f} {row['b']:>12.2f}  {row['verdict']}")
    return "\n".join(lines)
