"""The experiment `runner advise` runs, and its answer (`kind: advice`).

1. Screening: each candidate family at each process count climbs a concurrency ladder (1, 2, 4,
   ... ops in flight per process, within --max-connections), one short step each (--screen-step),
   until its throughput has fallen past its best or levelled off; then the ladder's top, once, so
   the law of scalability (runner.advise.usl) fitted to each climb spans the range asked and the
   answer says where the peak is and why (contention, coherency).
2. Confirmation: the best candidate against each other family's best, in paired, interleaved
   rounds (runner.advise.paired) on the same server, until the ratio's 95 % interval excludes 1
   or the rounds (or the budget) run out: a ranking that survives the machine's noise, or
   "can't tell" when none does. One round runs the leader once beside every challenger still
   undecided (A B C, then C B A), so the leader's runs are shared rather than repeated.

Every step is a real run on one server (runner.run.bench), each on freshly made tables.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from runner.advise.families import Candidate, Family, ladder
from runner.advise.paired import Ratio, paired_ratio
from runner.advise.usl import Fit, fit
from runner.analysis.checks import Check, parse_check
from runner.analysis.report import SCHEMA_VERSION, environment
from runner.errors import ExitCode
from runner.output import ResultStream
from runner.result import Result
from runner.run import Interrupted, Outcome, bench
from runner.spec import RunSpec

PAST_PEAK = 0.9  # a climb stops once a level's throughput is below this share of its best
# ... or once it has levelled off: this many levels in a row that beat its best by less than
# FLAT_GAIN (a flat climb only adds connections; the ladder's top is still measured, once).
FLAT_GAIN = 1.05
FLAT_LEVELS = 2
MIN_ROUNDS = 3  # paired rounds before an early verdict
STEP_OVERHEAD_S = 2.0  # a step's cost beyond its measured time at first guess: tables, workers starting


@dataclass(frozen=True)
class AdviseSpec:
    families: tuple[Family, ...]
    procs: tuple[int, ...]
    max_connections: int
    max_width: int
    slos: tuple[str, ...]
    budget_s: float
    rounds: int  # most paired rounds per comparison
    step_s: float  # a confirmation run's measured seconds
    step_warmup_s: float
    # A screening step's: short, since it only has to find each climb's shape (its peak is then
    # confirmed in paired rounds of step_s).
    screen_s: float
    screen_warmup_s: float

    def lengths(self, phase: str) -> tuple[float, float]:
        """(measured, warm-up) seconds of a step of `phase`."""
        return (self.screen_s, self.screen_warmup_s) if phase == "screen" else (self.step_s, self.step_warmup_s)

    def checks(self, config: RunSpec) -> list[Check]:
        ops = tuple(op.name for op in config.workload_ops.ops)
        return [parse_check(text, ops, "--slo") for text in self.slos]


@dataclass
class Experiment:
    """What has been measured so far, and the clock it is measured against."""

    spec: AdviseSpec
    started: float = field(default_factory=time.monotonic)
    step_cost_s: dict[str, float] = field(default_factory=dict)  # the dearest step so far, per phase
    steps: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None

    def affords(self, steps: int = 1, phase: str = "screen") -> bool:
        """Whether `steps` more of `phase` fit in the budget, at its dearest step's cost so far."""
        cost = self.step_cost_s.get(phase) or sum(self.spec.lengths(phase)) + STEP_OVERHEAD_S
        return time.monotonic() - self.started + steps * cost <= self.spec.budget_s


def _step(candidate: Candidate, doc: dict[str, Any], checks: list[Check], phase: str) -> dict[str, Any]:
    """One measured step, as the advice lists it."""
    result = Result(doc, candidate.label)
    ok = result.figure("ok") or 0.0
    cpu_s = sum(float(w["cpu_measured_s"]) for w in doc["workers"])
    judged = [check.evaluate(doc) for check in checks]
    return {
        "phase": phase,
        "family": candidate.family.name,
        "mode": candidate.family.mode,
        "driver": candidate.family.driver,
        "procs": candidate.procs,
        "width": candidate.width,
        "connections": candidate.connections,
        "ops_per_s": result.figure("ops_per_s"),
        "p99_ms": max((result.figure(f"{op}.p99") or 0.0 for op in result.ops), default=None),
        "mean_ms": _mean_ms(doc),
        "errors": int(result.figure("errors") or 0),
        "client_cpu_us_per_op": round(cpu_s * 1e6 / ok, 1) if ok else None,
        "client_limited": bool(doc["client"]["bottleneck"]["limited"]),
        "complete": result.complete,
        "meets_slos": all(c["pass"] for c in judged),
        "broken": [c["check"] for c in judged if not c["pass"]],
    }


def _mean_ms(doc: dict[str, Any]) -> float | None:
    """Every successful op's mean latency, across op types: with the connections held it gives the
    closed loop's ceiling (Little's law: throughput = ops in flight / mean latency)."""
    by_op = doc["totals"]["by_op"].values()
    ok = sum(op["ok"] for op in by_op)
    return round(sum(op["ok"] * op["latency_ms"]["mean"] for op in by_op) / ok, 4) if ok else None


def _usable(step: dict[str, Any]) -> bool:
    return bool(step["complete"] and step["meets_slos"] and not step["errors"])


def advise(config: RunSpec, spec: AdviseSpec, stream: ResultStream | None = None, stderr: TextIO = sys.stderr) -> Outcome:
    """Screen, fit, confirm; the answer as one document."""
    checks = spec.checks(config)
    experiment = Experiment(spec)
    server: dict[str, Any] | None = None
    with bench(config, stream, reuse=True) as opened:

        def measure(candidate: Candidate, phase: str) -> dict[str, Any] | None:
            nonlocal server
            began = time.monotonic()
            try:
                doc = opened.measure(candidate.spec(config, *spec.lengths(phase), spec.slos))
            except Interrupted as exc:
                experiment.stop_reason = f"interrupted by {exc} before {candidate.label} was measured"
                return None
            experiment.step_cost_s[phase] = max(experiment.step_cost_s.get(phase, 0.0), time.monotonic() - began)
            server = server or doc["server"]
            step = _step(candidate, doc, checks, phase)
            experiment.steps.append(step)
            if not config.quiet:
                stderr.write(_step_line(len(experiment.steps), candidate, step) + "\n")
            if opened.signals.received:
                experiment.stop_reason = f"interrupted by {signal.Signals(opened.signals.received[0]).name} after {len(experiment.steps)} steps"
                return None
            return step

        climbs = _screen(spec, experiment, measure)
        comparisons = _confirm(spec, experiment, climbs, measure) if experiment.stop_reason is None else []
        signal_exit = opened.signal_exit()
    doc = _document(config, spec, experiment, climbs, comparisons, server)
    code = signal_exit or (ExitCode.INCOMPLETE if not doc["complete"] else ExitCode.OK)
    return Outcome(doc, code)


Measure = Callable[[Candidate, str], "dict[str, Any] | None"]


def _screen(spec: AdviseSpec, experiment: Experiment, measure: Measure) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Each (family, procs) up its ladder, one level for all of them at a time, so a budget that
    runs out leaves every family measured as far as the others; then each climb that stopped
    short of its ladder's top (past its peak, or level) measured there once."""
    climbs: dict[tuple[str, int], list[dict[str, Any]]] = {(f.name, p): [] for f in spec.families for p in spec.procs}
    families = {f.name: f for f in spec.families}
    widths = {key: ladder(key[1], spec.max_connections, spec.max_width) for key in climbs}
    done: set[tuple[str, int]] = {key for key, levels in widths.items() if not levels}
    flat = dict.fromkeys(climbs, 0)

    def measured_at(key: tuple[str, int], width: int, where: str) -> dict[str, Any] | None:
        """One screening step, if the budget affords it (None: it does not, or a stop)."""
        if not experiment.affords():
            experiment.stop_reason = experiment.stop_reason or f"the --budget ran out while screening ({where})"
            return None
        return measure(Candidate(families[key[0]], key[1], width), "screen")

    level = 0
    while len(done) < len(climbs):
        for key in climbs:
            if key in done:
                continue
            if level >= len(widths[key]):
                done.add(key)
                continue
            step = measured_at(key, widths[key][level], f"level {level + 1}")
            if step is None:
                return climbs
            before = max((s["ops_per_s"] or 0.0 for s in climbs[key]), default=0.0)
            climbs[key].append(step)
            measured = step["ops_per_s"] or 0.0
            flat[key] = 0 if measured >= FLAT_GAIN * before else flat[key] + 1
            if not _usable(step) or measured < PAST_PEAK * max(before, measured) or flat[key] >= FLAT_LEVELS:
                done.add(key)  # past its peak, level, or past what the SLOs (or the server) allow
        level += 1
    for key, steps in climbs.items():
        # The top, so the law is fitted across the range asked rather than extrapolated from the
        # first few levels (#31: fitted to 1, 2, 4 only, it predicted 64 in flight 60-90 % low).
        if steps and _usable(steps[-1]) and steps[-1]["width"] != widths[key][-1]:
            step = measured_at(key, widths[key][-1], "the ladders' tops")
            if step is None:
                return climbs
            steps.append(step)
    return climbs


def _best(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    usable = [s for s in steps if _usable(s)]
    return max(usable, key=lambda s: s["ops_per_s"] or 0.0) if usable else None


def _candidate_of(step: dict[str, Any], spec: AdviseSpec) -> Candidate:
    family = next(f for f in spec.families if f.name == step["family"])
    return Candidate(family, step["procs"], step["width"])


def _confirm(spec: AdviseSpec, experiment: Experiment, climbs: dict[tuple[str, int], list[dict[str, Any]]], measure: Measure) -> list[dict[str, Any]]:
    """The leader against each other family's best, in paired interleaved rounds; and, where that
    best holds another number of connections, against the family's best at the leader's own
    (sync or async asked at equal connections, not only at each one's best)."""
    bests = {family.name: _best([s for (name, _), steps in climbs.items() if name == family.name for s in steps]) for family in spec.families}
    ranked = sorted((b for b in bests.values() if b is not None), key=lambda s: -(s["ops_per_s"] or 0.0))
    if len(ranked) < 2:
        return []
    leader = _candidate_of(ranked[0], spec)
    challengers: dict[str, Candidate] = {}
    for other_step in ranked[1:]:
        other = _candidate_of(other_step, spec)
        challengers.setdefault(other.label, other)
        if other_step["connections"] != leader.connections:
            same = _best([s for (name, _), steps in climbs.items() if name == other_step["family"] for s in steps if s["connections"] == leader.connections])
            if same is not None:
                equal = _candidate_of(same, spec)
                challengers.setdefault(equal.label, equal)
    pairs, ratios = _rounds(leader, list(challengers.values()), spec, experiment, measure)
    comparisons = [_comparison(leader, other, pairs[label], ratios[label]) for label, other in challengers.items()]
    if experiment.stop_reason is None and any(c["rounds"] < MIN_ROUNDS and not c["decided"] for c in comparisons):
        experiment.stop_reason = "the --budget ran out while confirming"
    return comparisons


def _settled(ratio: Ratio | None) -> bool:
    return ratio is not None and ratio.rounds >= MIN_ROUNDS and ratio.decided


def _rounds(
    leader: Candidate, challengers: list[Candidate], spec: AdviseSpec, experiment: Experiment, measure: Measure
) -> tuple[dict[str, list[tuple[float, float]]], dict[str, Ratio | None]]:
    """Rounds of the leader and every challenger still undecided, in one order and then its
    reverse (A B C, C B A: each pair's mean position is the same, so a drifting machine favours
    neither), until each ratio's interval excludes 1, --rounds, or the budget."""
    pairs: dict[str, list[tuple[float, float]]] = {c.label: [] for c in challengers}
    ratios: dict[str, Ratio | None] = dict.fromkeys(pairs)
    for number in range(spec.rounds):
        undecided = [c for c in challengers if not _settled(ratios[c.label])]
        if not undecided or not experiment.affords(1 + len(undecided), "confirm"):
            break
        order = [leader, *undecided] if number % 2 == 0 else [*reversed(undecided), leader]
        measured: dict[str, float] = {}
        for candidate in order:
            step = measure(candidate, "confirm")
            if step is None:
                return pairs, ratios
            measured[candidate.label] = step["ops_per_s"] or 0.0
        for other in undecided:
            pairs[other.label].append((measured[leader.label], measured[other.label]))
            ratios[other.label] = paired_ratio(pairs[other.label])
    return pairs, ratios


def _comparison(leader: Candidate, other: Candidate, pairs: list[tuple[float, float]], ratio: Ratio | None) -> dict[str, Any]:
    """The screening's leader over the other (> 1: the leader is faster), with its 95 % interval."""
    base = {"a": leader.label, "b": other.label, "connections_a": leader.connections, "connections_b": other.connections, "rounds": len(pairs)}
    if ratio is None:
        return {
            **base,
            "ratio": None,
            "low": None,
            "high": None,
            "decided": False,
            "faster": None,
            "verdict": f"can't tell: {len(pairs)} paired round(s), too few for an interval",
        }
    over, low, high = 1 / ratio.ratio, 1 / ratio.high, 1 / ratio.low  # paired_ratio is B/A
    if not ratio.decided:
        verdict = f"{leader.label} against {other.label}: can't tell, within ±{ratio.half_width:.0%} on this machine ({ratio.rounds} rounds): pick by other criteria"
        faster = None
    elif over > 1:
        verdict, faster = f"{leader.label} is {over:.2f}x {other.label} [{low:.2f}, {high:.2f}]", leader.label
    else:
        verdict, faster = f"{other.label} is {1 / over:.2f}x {leader.label} [{1 / high:.2f}, {1 / low:.2f}]", other.label
    if leader.connections == other.connections:
        verdict += f" at {leader.connections} connections"
    return {
        **base,
        "rounds": ratio.rounds,
        "ratio": round(over, 4),
        "low": round(low, 4),
        "high": round(high, 4),
        "decided": ratio.decided,
        "faster": faster,
        "verdict": verdict,
    }


def _points(steps: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """A climb as (ops in flight in all, ops/s): what the law is fitted to."""
    return [(float(s["width"] * s["procs"]), float(s["ops_per_s"] or 0.0)) for s in steps if s["complete"]]


def _fits(climbs: dict[tuple[str, int], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for (family, procs), steps in climbs.items():
        points = _points(steps)
        law: Fit | None = fit(points)
        peak = law.peak_concurrency if law else None
        out.append(
            {
                "family": family,
                "procs": procs,
                "points": [{"concurrency": n, "ops_per_s": x} for n, x in points],
                "lambda_per_s": round(law.lam, 3) if law else None,
                "sigma": round(law.sigma, 5) if law else None,
                "kappa": round(law.kappa, 7) if law else None,
                "peak_concurrency": round(peak, 1) if peak else None,
                "peak_ops_per_s": round(law.throughput(peak), 1) if law and peak else None,
            }
        )
    return out


def _document(
    config: RunSpec,
    spec: AdviseSpec,
    experiment: Experiment,
    climbs: dict[tuple[str, int], list[dict[str, Any]]],
    comparisons: list[dict[str, Any]],
    server: dict[str, Any] | None,
) -> dict[str, Any]:
    fits = _fits(climbs)
    screened = [s for s in experiment.steps if s["phase"] == "screen"]
    best = _best(screened)
    overturned = next((c for c in comparisons if c["decided"] and c["faster"] == c["b"]), None)
    if overturned is not None:  # the paired rounds put another family ahead of the screening's leader
        best = next(s for s in screened if _candidate_of(s, spec).label == overturned["b"])
    warnings = []
    if screened and all(s["client_limited"] for s in screened):
        warnings.append("the client limited every candidate: the answer is this host's client, not the server's; more hosts (--cluster ray) would raise it")
    recommendation = None
    if best is not None:
        climb = climbs.get((best["family"], best["procs"]), [])
        law = fit(_points(climb))
        confirmed = [
            s["ops_per_s"]
            for s in experiment.steps
            if s["phase"] == "confirm" and s["family"] == best["family"] and s["procs"] == best["procs"] and s["width"] == best["width"]
        ]
        undecided = [c for c in comparisons if not c["decided"]]
        recommendation = {
            "family": best["family"],
            "mode": best["mode"],
            "driver": best["driver"],
            "procs": best["procs"],
            "width_option": _candidate_of(best, spec).family.width_option,
            "width": best["width"],
            "pool_size": best["width"],
            "connections": best["connections"],
            "ops_per_s": round(sorted(confirmed)[len(confirmed) // 2], 1) if confirmed else best["ops_per_s"],
            "p99_ms": best["p99_ms"],
            # The law fitted to its climb, at its concurrency: what the screening's curve says it does.
            "predicted_ops_per_s": round(law.throughput(best["connections"]), 1) if law else None,
            "decided": bool(comparisons) and not undecided,
            "verdict": _verdict(best, _candidate_of(best, spec).family.width_option, comparisons, undecided),
        }
    return {
        "kind": "advice",
        "schema_version": SCHEMA_VERSION,
        "complete": experiment.stop_reason is None,
        "stop_reason": experiment.stop_reason,
        "goal": "the highest closed-loop throughput" + (f" meeting {' and '.join(spec.slos)}" if spec.slos else ""),
        "constraints": {"max_connections": spec.max_connections, "slos": list(spec.slos), "budget_s": spec.budget_s},
        "design": {
            "families": [f.name for f in spec.families],
            "procs": list(spec.procs),
            "max_width": spec.max_width,
            "step_s": spec.step_s,
            "step_warmup_s": spec.step_warmup_s,
            "screen_s": spec.screen_s,
            "screen_warmup_s": spec.screen_warmup_s,
            "rounds": spec.rounds,
        },
        "elapsed_s": round(time.monotonic() - experiment.started, 1),
        "recommendation": recommendation,
        "comparisons": comparisons,
        "fits": fits,
        "steps": experiment.steps,
        "warnings": warnings,
        "config": config.to_report(),
        "environment": environment(),
        "server": server,
    }


def _verdict(best: dict[str, Any], width_option: str, comparisons: list[dict[str, Any]], undecided: list[dict[str, Any]]) -> str:
    use = f"--mode {best['mode']} --driver {best['driver']} --procs {best['procs']} --{width_option} {best['width']}"
    if not comparisons:
        return f"use {use} (the only family measured: nothing to confirm it against)"
    if undecided:
        return f"use {use}, but " + "; ".join(c["verdict"] for c in undecided)
    return f"use {use}: " + "; ".join(c["verdict"] for c in comparisons)


def _step_line(number: int, candidate: Candidate, step: dict[str, Any]) -> str:
    flags = (
        ""
        if _usable(step)
        else " (not usable: "
        + ", ".join(
            why for why, bad in (("incomplete", not step["complete"]), ("errors", step["errors"]), ("SLO " + "; ".join(step["broken"]), not step["meets_slos"])) if bad
        )
        + ")"
    )
    return f"runner: advise {step['phase']} {number}: {candidate.label}: {step['ops_per_s']:.1f} ops/s, p99 {step['p99_ms'] or 0:.1f} ms{flags}"


def summary_lines(doc: dict[str, Any]) -> list[str]:
    lines = []
    recommendation = doc["recommendation"]
    if recommendation is None:
        lines.append("advice: no candidate ran cleanly" + (f" and met {' and '.join(doc['constraints']['slos'])}" if doc["constraints"]["slos"] else ""))
    else:
        lines.append(f"advice: {recommendation['verdict']}")
        lines.append(
            f"advice: {recommendation['ops_per_s']:.1f} ops/s measured, p99 {recommendation['p99_ms']:.1f} ms, "
            f"{recommendation['connections']} connections held"
            + (f"; {recommendation['predicted_ops_per_s']:.1f} predicted by its fitted curve" if recommendation["predicted_ops_per_s"] else "")
        )
    lines += [f"warning: {w}" for w in doc["warnings"]]
    if not doc["complete"]:
        lines.append(f"INCOMPLETE: {doc['stop_reason']}")
    return lines
