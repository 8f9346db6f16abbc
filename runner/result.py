"""A run's result document, typed where the analysis reads it (pyperf's Run and Benchmark).

`Result` wraps one document as written and answers what `--check`, `compare` and `--fail-if`
ask of it, by the same figure names: `result.figure("read.p99")` is the run's value (the median
run's, with --repeat), `result.spread("read.p99")` its min, median and max over the runs, and
`result.options` the options that made it, typed again. The document is kept whole, so `dump()`
writes back what was read, and a figure is read in this one place.

Figures (as `runner --check` takes them):

    ops_per_s | ok | ops | errors | error_rate | unfinished | dropped | wall_s | connections.peak
    OP.(ops_per_s | ok | ops | errors | error_rate | Q
        | statements_per_op | rows_per_op | streamed_per_op | repeated_per_op
        | pool_wait.Q | db.Q | python.Q)
    Q: p50 | p90 | p99 | p99_9 | max | mean, or any percentile pN or pN_M (p95, p97_5)

repeated_per_op is the op's most repeated statement's count per op (`.anatomy.most_repeated`).
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from dataclasses import dataclass
from typing import Any

from runner.errors import UsageError
from runner.spec import Options

# schema_version -> what changed in it (the format history, as pyperf keeps one).
FORMATS = {1: "the first documented layout: .config, .totals, .timeline, .workers, .repeat, .checks (runner 0.1)"}

RUN_FIGURES = (
    "ops_per_s", "ok", "ops", "errors", "error_rate", "outcomes", "outcome_rate", "unfinished", "dropped", "wall_s", "connections.peak",
    "client_cpu_ms_per_op", "server_cpu_ms_per_op",
)
CPU_PER_OP = ("client_cpu_ms_per_op", "server_cpu_ms_per_op")  # None where unknown (another server's CPU)
QUANTILES = ("p50", "p90", "p99", "p99_9", "max", "mean")
OP_COUNTS = ("ops_per_s", "ok", "ops", "errors", "error_rate", "outcomes", "outcome_rate")
ANATOMY_PARTS = ("pool_wait", "db", "python")
# Counts per op from the anatomy: the same for the same --seed on any machine (no spread needed).
ANATOMY_COUNTS = ("statements_per_op", "rows_per_op", "streamed_per_op", "repeated_per_op")
# Figures --repeat keeps per run, and where: run-wide in .repeat, per op in .repeat.by_op.OP.
REPEATED_RUN = {"ops_per_s": "ops_per_s", "wall_s": "wall_s", "connections.peak": "server_peak", **{name: name for name in CPU_PER_OP}}
REPEATED_OP = ("p50", "p99")
# Any other percentile, k6's way: p95, p97_5 (p(97.5) in a check), computed for the run when a
# --check or an SLO names it, beside the fixed ones.
PERCENTILE = re.compile(r"^p(?:[1-9]\d?|0)(?:_\d+)?$")


def is_quantile(name: str) -> bool:
    return name in QUANTILES or PERCENTILE.match(name) is not None


def is_figure(name: str, ops: tuple[str, ...]) -> bool:
    """Whether `name` is a figure of a run of a workload with these op types."""
    if name in RUN_FIGURES:
        return True
    op, _, rest = name.partition(".")
    if op not in ops:
        return False
    part, _, quantile = rest.partition(".")
    return rest in OP_COUNTS + ANATOMY_COUNTS or is_quantile(rest) or (part in ANATOMY_PARTS and is_quantile(quantile))


def is_count(name: str) -> bool:
    """An anatomy count per op (statements, rows): deterministic for a --seed."""
    return name.partition(".")[2] in ANATOMY_COUNTS


def is_latency(name: str) -> bool:
    """A time, in ms: an op's quantile, or a quantile of its pool wait, database or Python time."""
    rest = name.partition(".")[2]
    return is_quantile(rest) or rest.partition(".")[0] in ANATOMY_PARTS


@dataclass(frozen=True)
class Spread:
    """A figure over --repeat's runs."""

    min: float
    median: float
    max: float

    def overlaps(self, other: Spread) -> bool:
        return not (self.max < other.min or other.max < self.min)


@dataclass(frozen=True)
class Result:
    doc: dict[str, Any]
    name: str = "result"  # where it came from: a file, or file:line

    @classmethod
    def from_dict(cls, doc: Any, name: str = "result") -> Result:
        """A run's document (not a capacity search's) of a schema version this runner reads."""
        if not isinstance(doc, dict) or "totals" not in doc or "schema_version" not in doc:
            raise UsageError(f"{name} is not a run's result document")
        if doc["schema_version"] not in FORMATS:
            raise UsageError(f"{name} is a schema-version-{doc['schema_version']} document; this runner reads {', '.join(map(str, FORMATS))}")
        return cls(doc, name)

    def dump(self) -> dict[str, Any]:
        return self.doc

    @property
    def schema_version(self) -> int:
        return int(self.doc["schema_version"])

    @property
    def complete(self) -> bool:
        return bool(self.doc["complete"])

    @property
    def ops(self) -> tuple[str, ...]:
        """The op types that ran."""
        return tuple(sorted(self.doc["totals"]["by_op"]))

    @property
    def runs(self) -> int:
        """How many runs the document summarises (--repeat)."""
        return int((self.doc.get("repeat") or {}).get("runs", 1))

    @property
    def options(self) -> Options:
        """The options that made the run, from `.config` (the DSN masked as written)."""
        config = self.doc["config"]
        known = {f.name for f in dataclasses.fields(Options)}
        values = {name: _tuples(value) for name, value in config.items() if name in known}
        return Options(**values)

    def figure(self, name: str) -> float | None:
        """The figure's value (the median run's with --repeat); None when the run has none (no op
        of that type ran, or the anatomy was off)."""
        totals = self.doc["totals"]
        if name in RUN_FIGURES:
            return _count(totals, name)
        op, _, rest = name.partition(".")
        summary = totals["by_op"].get(op)
        if summary is None:
            return None
        if rest in OP_COUNTS:
            return _count(summary, rest)
        if is_quantile(rest):  # one not computed for this run (no check named it) is None
            value = summary["latency_ms"].get(rest)
            return None if value is None else float(value)
        anatomy = summary.get("anatomy")
        if anatomy is None:
            return None
        if rest in ANATOMY_COUNTS:
            value = (anatomy.get("most_repeated") or {}).get("per_op") if rest == "repeated_per_op" else anatomy.get(rest)
            return None if value is None else float(value)
        part, _, quantile = rest.partition(".")
        figures = anatomy.get(f"{part}_ms")
        value = None if figures is None else figures.get(quantile)
        return None if value is None else float(value)

    def most_repeated(self, op: str) -> tuple[str, float] | None:
        """The op's most repeated statement and its count per op (with the anatomy on)."""
        summary = self.doc["totals"]["by_op"].get(op) or {}
        repeated = (summary.get("anatomy") or {}).get("most_repeated")
        return None if not repeated else (str(repeated["statement"]), float(repeated["per_op"]))

    def spread(self, name: str) -> Spread | None:
        """The figure over the runs of a --repeat document; None for one run, or a figure --repeat
        does not keep per run."""
        repeat = self.doc.get("repeat")
        if not repeat:
            return None
        if name == "errors":  # no summary of its own: each run's count
            counts = sorted(float(run["errors"]) for run in repeat["per_run"])
            return Spread(counts[0], statistics.median(counts), counts[-1])
        if name in REPEATED_RUN:
            figures = repeat.get(REPEATED_RUN[name])  # a CPU figure: absent before it was kept, null when unknown
            if figures is None:
                return None
        else:
            op, _, quantile = name.partition(".")
            if quantile not in REPEATED_OP or op not in repeat["by_op"]:
                return None
            figures = repeat["by_op"][op][quantile]
        return Spread(float(figures["min"]), float(figures["median"]), float(figures["max"]))


def _count(totals: dict[str, Any], name: str) -> float | None:
    if name in CPU_PER_OP:
        value = totals.get(name)
        return None if value is None else float(value)
    if name == "connections.peak":
        return float(totals["connections"]["server_peak"])
    if name == "error_rate":
        return totals["errors"] / totals["ops"] if totals["ops"] else 0.0
    if name in ("outcomes", "outcome_rate"):  # ops that ended in an answer the workload declared (in ok)
        outcomes = sum((totals.get("outcomes") or {}).values())
        return float(outcomes) if name == "outcomes" else (outcomes / totals["ops"] if totals["ops"] else 0.0)
    return float(totals[name])


def _tuples(value: Any) -> Any:
    """JSON's lists back into the tuples Options holds (pg_settings, stages, checks)."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


def read_one(path: str, command: str) -> Result:
    """The one run's result a file holds, for a command that takes one per file (compare,
    explain); any schema version (compare says when two differ)."""
    from runner.analysis.results import is_capacity
    from runner.analysis.results import load as documents

    found = documents([path])
    if len(found) != 1:
        raise UsageError(f"{path} holds {len(found)} results: {command} takes one per file")
    name, doc = found[0]
    if is_capacity(doc):
        what = "an advice" if doc.get("kind") == "advice" else "a capacity search"
        raise UsageError(f"{name} is {what}: {command} takes a run's document (runner report draws {what})")
    return Result(doc, name)


def load(paths: list[str]) -> list[Result]:
    """Every run's result in the files (a document, documents appended, --jsonl or a sweep's lines)."""
    from runner.analysis.results import is_capacity
    from runner.analysis.results import load as documents

    return [Result.from_dict(doc, name) for name, doc in documents(paths) if not is_capacity(doc)]
