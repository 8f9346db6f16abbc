"""Run the search: one open-loop run per step on one server, each judged against the SLOs.

A step passes when every SLO holds and the offered rate was served: no op failed (unless an SLO
is about errors or error_rate, which then decides), none was dropped at --max-inflight (unless an
SLO is about dropped), none was left unissued or unfinished. A step that did not complete (a worker died, a signal) ends the search.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from runner.analysis.checks import Check, parse_check, show
from runner.analysis.report import SCHEMA_VERSION, environment
from runner.capacity.search import Search, SearchSpec
from runner.errors import ExitCode, UsageError
from runner.measure.histogram import percent
from runner.output import ResultStream
from runner.result import Result, is_quantile
from runner.run import Interrupted, Outcome, bench
from runner.spec import RunSpec

MIN_STEP_OPS = 20  # a step offering fewer ops than this cannot say much about a p99
# Ops due in the last moments of a step that the loop had not issued when the step ended are
# stragglers of the schedule, not a client that fell behind (a client behind its schedule shows
# in the latencies, which count from when each op was due): up to this much of the schedule, and
# one per worker for how its share rounds, they do not fail a step.
STRAGGLER_S = 0.05
TAIL_SAMPLES = 10  # a percentile rests on at least this many ops beyond it: p99 on 1,000 ops
TAIL_FROM = 90.0  # percentiles from p90 up rest on their tail's few samples


def _tail_share(name: str) -> float | None:
    """p99 -> 0.99; None for what rests on the bulk of the ops (p50, mean) or on one (max)."""
    if name in ("mean", "max") or not is_quantile(name) or percent(name) < TAIL_FROM:
        return None
    return percent(name) / 100


ERROR_FIGURES = ("errors", "error_rate")
OUTCOME_EXIT = {"converged": ExitCode.OK, "max_rate": ExitCode.OK, "none_passed": ExitCode.CHECKS, "max_steps": ExitCode.INCOMPLETE}


@dataclass(frozen=True)
class CapacitySpec:
    slos: tuple[str, ...]
    search: SearchSpec
    step_s: float  # the measured part of each step
    step_warmup_s: float  # before it, on the same workers, at the step's rate

    def checks(self, config: RunSpec) -> list[Check]:
        if not self.slos:
            raise UsageError("runner capacity needs at least one --slo, e.g. --slo 'read.p99 < 50ms'")
        ops = tuple(op.name for op in config.workload_ops.ops)
        return [parse_check(text, ops, "--slo") for text in self.slos]

    def step_config(self, config: RunSpec, rate: float) -> RunSpec:
        # The SLOs ride as the step's checks: a percentile only they name (p95) is computed for it.
        return config.replace(rate_per_s=rate, duration_s=self.step_s, warmup_s=self.step_warmup_s, warmup_ops=0, checks=self.slos)


def judge(doc: dict[str, Any], checks: list[Check]) -> dict[str, Any]:
    """One step's entry in `.steps`: its figures, the SLOs' results, and what broke."""
    result = Result(doc, "step")
    figure = result.figure
    totals = doc["totals"]
    schedule = totals["schedule"]  # the open loop's own figures, no --check's
    results = [check.evaluate(doc) for check in checks]
    broken = [f"{r['check']} (measured {'nothing' if r['value'] is None else show(r['value'])})" for r in results if not r["pass"]]
    named = {check.figure.rpartition(".")[2] for check in checks}  # an SLO on a figure replaces its default
    errors = int(figure("errors") or 0)
    if errors and not named & {"errors", "error_rate"}:
        classes = ", ".join(f"{name} {n}" for name, n in sorted(totals["errors_by_class"].items()))
        broken.append(f"{errors} ops failed ({classes})")
    stragglers = stragglers_allowed(schedule["rate_per_s"], result.options.procs)
    unserved = {
        f"dropped at --max-inflight {schedule['max_inflight']}": 0 if "dropped" in named else int(figure("dropped") or 0),
        "never issued (the client fell behind)": schedule["not_issued"] if schedule["not_issued"] > stragglers else 0,
        "unfinished": int(figure("unfinished") or 0),
    }
    if any(unserved.values()):
        broken.append("rate not served: " + ", ".join(f"{n} ops {what}" for what, n in unserved.items() if n))
    if not result.complete:  # cut short: its figures judge nothing (ops due after the stop were "never issued")
        broken = []
    bottleneck = doc["client"]["bottleneck"]
    return {
        "rate_per_s": schedule["rate_per_s"],
        "pass": not broken and result.complete,
        "broken": broken,
        "checks": results,
        "ops_per_s": figure("ops_per_s"),
        "ok": totals["ok"],
        "errors": errors,
        "dropped": totals["dropped"],
        "not_issued": schedule["not_issued"],
        "stragglers_allowed": stragglers,
        "unfinished": totals["unfinished"],
        "late_ops": schedule["late_ops"],
        "latency_ms": {name: op["latency_ms"] for name, op in totals["by_op"].items()},
        "server_connections_peak": totals["connections"]["server_peak"],
        "client_limited": bottleneck["limited"],
        "complete": result.complete,
        "stop_reason": doc["stop_reason"],
        "warnings": thin_tails(doc, checks),
    }


def stragglers_allowed(rate_per_s: float, procs: int) -> int:
    """How many ops due but never issued by a step's end do not fail it (see STRAGGLER_S)."""
    return procs + math.ceil(rate_per_s * STRAGGLER_S)


def thin_tails(doc: dict[str, Any], checks: list[Check]) -> list[str]:
    """An SLO on a percentile that the step measured from too few ops to rest on (a p99 from 150
    ops is its second-slowest op): flagged, since it decided the step all the same."""
    found = []
    for check in checks:
        op, _, rest = check.figure.partition(".")
        share = _tail_share(rest.rpartition(".")[2])
        ok = Result(doc, "step").figure(f"{op}.ok")
        if share is None or ok is None:
            continue
        needed = math.ceil(TAIL_SAMPLES / (1 - share))
        if ok < needed:
            found.append(
                f"{check.text}: {rest} from {ok:,.0f} ops, fewer than the {needed:,} it rests on ({TAIL_SAMPLES} beyond it): "
                "a longer --step (or a higher rate) measures it"
            )
    return found


def _step_line(number: int, step: dict[str, Any]) -> str:
    latency = ", ".join(f"{name} p99 {lat['p99']:.1f} ms" for name, lat in step["latency_ms"].items())
    if not step["complete"]:
        verdict = f"INCOMPLETE ({step['stop_reason']}): not judged"
    else:
        verdict = "pass" if step["pass"] else "FAIL: " + "; ".join(step["broken"])
    return f"runner: capacity step {number}: {step['rate_per_s']:g}/s offered, {step['ops_per_s']:g} ops/s, {latency}: {verdict}"


def _warnings(steps: list[dict[str, Any]], capacity: float | None, first_failing: float | None) -> list[str]:
    found = []
    failing = next((s for s in steps if s["rate_per_s"] == first_failing), None)
    if failing is not None and failing["client_limited"]:
        found.append(
            f"the client limited the step at {first_failing:g}/s (see .client.bottleneck of a run at that rate): "
            "the capacity found may be the client's, not the server's; add --procs or hosts"
        )
    deciding = [s for s in steps if s["rate_per_s"] in (capacity, first_failing)]  # the two steps the answer rests on
    found += [f"the step at {step['rate_per_s']:g}/s decided on {warning}" for step in deciding for warning in step["warnings"]]
    return found


def find_capacity(config: RunSpec, spec: CapacitySpec, stream: ResultStream | None = None, stderr: TextIO = sys.stderr) -> Outcome:
    """The search, its steps and its answer as one document (`kind: capacity`)."""
    checks = spec.checks(config)
    search = Search(dataclasses.replace(spec.search, min_per_s=max(spec.search.min_per_s, MIN_STEP_OPS / spec.step_s)))
    steps: list[dict[str, Any]] = []
    server: dict[str, Any] | None = None
    stop_reason = None
    with bench(config, stream, reuse=True) as opened:
        while (rate := search.next_rate()) is not None:
            try:
                doc = opened.measure(spec.step_config(config, round(rate, 3)))
            except Interrupted as exc:
                stop_reason = f"interrupted by {exc} before the step at {rate:g}/s was measured"
                break
            server = server or doc["server"]
            steps.append(judge(doc, checks))
            if not config.quiet:
                stderr.write(_step_line(len(steps), steps[-1]) + "\n")
            if not doc["complete"]:
                stop_reason = f"the step at {rate:g}/s did not complete: {doc['stop_reason']}"
                break
            search.record(rate, steps[-1]["pass"])
        signal_exit = opened.signal_exit()
    if stop_reason is None and search.outcome == "max_steps":
        stop_reason = f"--max-steps {spec.search.max_steps} ran out before the precision was reached"
    passing = [s["rate_per_s"] for s in steps if s["pass"]]
    failing = [s for s in steps if not s["pass"] and s["complete"]]
    first_failing = min(failing, key=lambda s: s["rate_per_s"]) if failing else None
    result = {
        "kind": "capacity",
        "schema_version": SCHEMA_VERSION,
        "complete": stop_reason is None,
        "stop_reason": stop_reason,
        "outcome": search.outcome,
        "capacity_per_s": max(passing) if passing else None,
        "first_failing_per_s": first_failing["rate_per_s"] if first_failing else None,
        "broken": first_failing["broken"] if first_failing else [],
        "slos": list(spec.slos),
        "search": {
            "start_rate_per_s": spec.search.start_per_s,
            "growth": spec.search.growth,
            "precision": spec.search.precision,
            "max_rate_per_s": spec.search.max_per_s,
            "max_steps": spec.search.max_steps,
            "step_s": spec.step_s,
            "step_warmup_s": spec.step_warmup_s,
        },
        "warnings": _warnings(steps, max(passing) if passing else None, first_failing["rate_per_s"] if first_failing else None),
        "steps": steps,
        "config": config.to_report(),
        "environment": environment(),
        "server": server,
    }
    if signal_exit is not None:
        code = signal_exit
    elif stop_reason is not None:
        code = ExitCode.INCOMPLETE
    else:
        code = OUTCOME_EXIT[search.outcome or "converged"]
    return Outcome(result, code)


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """The answer in words, for stderr."""
    slos = " and ".join(doc["slos"])
    lines = []
    if doc["capacity_per_s"] is None:
        lines.append(f"capacity: no rate met {slos} (lowest tried: {min((s['rate_per_s'] for s in doc['steps']), default=0):g}/s)")
    elif doc["first_failing_per_s"] is None:
        why = "every rate up to --max-rate" if doc["outcome"] == "max_rate" else "every step before the search stopped"
        lines.append(f"capacity: at least {doc['capacity_per_s']:g}/s: {why} met {slos}")
    else:
        lines.append(f"capacity: {doc['capacity_per_s']:g}/s met {slos}; {doc['first_failing_per_s']:g}/s did not: " + "; ".join(doc["broken"]))
    lines += [f"warning: {w}" for w in doc["warnings"]]
    if not doc["complete"]:
        lines.append(f"INCOMPLETE: {doc['stop_reason']}")
    return [f"runner: {line}" for line in lines]
