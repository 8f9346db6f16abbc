"""What one op type's successful ops were made of: statements and rows per op, and histograms of
pool wait, database time and the rest (Python: ORM, session, object loading).

Recorded in the worker per interval, sent as a delta, merged by the collector by adding, as the
latency histograms are. `python` is the op's latency minus its pool wait and database time, so
the three parts add up to the latency of each op.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter, sub
from typing import Any, Protocol, cast

from runner.measure.histogram import LatencyHistogram

NS_PER_MS = 1_000_000
MAX_TEXTS = 32  # distinct statement texts kept per op type and interval (ORM SQL is cached: few)
TEXT_CHARS = 160  # a statement is named by its first characters
REPEAT_WARNING = 5.0  # a statement sent this many times per op on average: likely N+1
PARTS = ("pool_wait", "db", "python")
_TEXTS, _POOL_WAIT, _STATEMENTS = attrgetter("texts"), attrgetter("pool_wait_ns"), attrgetter("statements")
_ROWS, _STREAMED, _DB_NS = attrgetter("rows"), attrgetter("streamed"), attrgetter("db_ns")


class Trace(Protocol):
    """One op's figures as the worker's instrumentation collected them."""

    statements: int
    rows: int
    streamed: int
    db_ns: int
    pool_wait_ns: int
    texts: dict[str, int] | None
    calls: list[tuple[str, Any]] | None  # --exemplars: (statement, parameters) in order


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= TEXT_CHARS else flat[: TEXT_CHARS - 3] + "..."


@dataclass
class Anatomy:
    ops: int = 0  # successful ops traced
    attempts: int = 0  # their tries: ops plus their retries (--retries), whose statements they also sent
    statements: int = 0
    statements_max: int = 0
    rows: int = 0  # returned by statements whose rows the driver buffered at execution
    streamed: int = 0  # statements read through a server-side cursor: their rows are not counted
    db_timed: bool = True  # False: the layer cannot see its statements (raw): db and python unknown
    texts: Counter[str] = field(default_factory=Counter)  # statement (shortened) -> times sent
    hists: dict[str, LatencyHistogram] = field(default_factory=lambda: {part: LatencyHistogram() for part in PARTS})
    zeros: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PARTS, 0))  # not yet in hists

    def record(self, trace: Trace, latency_ns: int, retries: int = 0) -> None:
        """One op's trace and latency: a batch of one."""
        self.record_many([trace], [latency_ns], retries)

    def record_many(self, traces: list[Trace], latencies_ns: list[int], retries: int = 0) -> None:
        """Each op's trace and latency, as the worker's recorder folds a batch of one op type in.

        The worker's hot path: each figure is taken across the batch at once (map, sum, one
        histogram loop), not op by op; a part that is 0 (no pool checkout, no statement: the
        no-op workload, a raw op's db) is only counted here and enters its histogram in bulk."""
        count = len(traces)
        if not count:
            return
        texts = list(map(_TEXTS, traces))
        unseen = texts.count(None)  # the raw layer's ops: only the pool wait is seen
        if unseen and unseen < count:  # both kinds: never from one worker (its layer is fixed)
            for trace, latency_ns in zip(traces, latencies_ns, strict=True):
                self.record_many([trace], [latency_ns])
            self.attempts += retries
            return
        self.ops += count
        self.attempts += count + retries
        pools = list(map(_POOL_WAIT, traces))
        self._record_part("pool_wait", pools)
        if unseen:
            self.db_timed = False
            return
        statements = list(map(_STATEMENTS, traces))
        self.statements += sum(statements)
        most = max(statements)
        if most > self.statements_max:
            self.statements_max = most
        self.rows += sum(map(_ROWS, traces))
        self.streamed += sum(map(_STREAMED, traces))
        dbs = list(map(_DB_NS, traces))
        self._record_part("db", dbs)
        python = list(map(sub, map(sub, latencies_ns, dbs), pools))
        if min(python) < 0:  # never a negative part
            python = [max(0, part) for part in python]
        self.hists["python"].record_many(python)
        # Ops of one type send the same statements: each distinct set is added once, times its ops.
        # Most often every op of the batch sent the first one's: comparing the dicts (in C) is
        # then a third of what hashing each op's statement set costs.
        sets = cast("list[dict[str, int]]", texts)
        if sets.count(sets[0]) == count:
            self._keep(sets[0].items(), count)
            return
        for shape, times in Counter(map(tuple, map(dict.items, sets))).items():
            self._keep(shape, times)

    def _record_part(self, part: str, values: list[int]) -> None:
        zeros = values.count(0)
        self.zeros[part] += zeros
        if zeros < len(values):
            self.hists[part].record_many([value for value in values if value] if zeros else values)

    def _keep(self, texts: Iterable[tuple[str, int]], times: int = 1) -> None:
        """Add statement counts (`times` over); past MAX_TEXTS distinct statements, only those
        already kept."""
        kept = self.texts
        for text, count in texts:
            if text in kept or len(kept) < MAX_TEXTS:
                kept[text] += count * times

    def _flush_zeros(self) -> None:
        for part, count in self.zeros.items():
            self.hists[part].record_zeros(count)
        self.zeros = dict.fromkeys(PARTS, 0)

    def merge(self, other: Anatomy) -> None:
        self._flush_zeros()
        other._flush_zeros()
        self.ops += other.ops
        self.attempts += other.attempts
        self.statements += other.statements
        self.statements_max = max(self.statements_max, other.statements_max)
        self.rows += other.rows
        self.streamed += other.streamed
        self.db_timed = self.db_timed and other.db_timed
        self._keep(other.texts.items())
        for part in PARTS:
            self.hists[part].merge(other.hists[part])

    def to_dict(self) -> dict[str, Any]:
        self._flush_zeros()
        return {
            "ops": self.ops,
            "attempts": self.attempts,
            "statements": self.statements,
            "statements_max": self.statements_max,
            "rows": self.rows,
            "streamed": self.streamed,
            "db_timed": self.db_timed,
            "texts": {_short(text): count for text, count in self.texts.items()},
            **{part: self.hists[part].to_dict() for part in PARTS},
        }

    def merge_dict(self, data: dict[str, Any]) -> None:
        """Add a wire anatomy (to_dict) without building one: the collector's hot path."""
        self._flush_zeros()
        self.ops += data["ops"]
        self.attempts += data["attempts"]
        self.statements += data["statements"]
        self.statements_max = max(self.statements_max, data["statements_max"])
        self.rows += data["rows"]
        self.streamed += data["streamed"]
        self.db_timed = self.db_timed and data["db_timed"]
        self._keep(data["texts"].items())
        for part in PARTS:
            self.hists[part].merge_dict(data[part])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Anatomy:
        anatomy = cls()
        anatomy.merge_dict(data)
        return anatomy

    def most_repeated(self) -> tuple[str, float, float] | None:
        """The statement sent most often, and how many times per op and per try on average (a
        retried op sent its statements again on each try: that is no N+1)."""
        if not self.texts or not self.ops:
            return None
        text, count = self.texts.most_common(1)[0]
        return text, count / self.ops, count / max(self.attempts, self.ops)

    def summary(self, percentiles: tuple[str, ...] = ()) -> dict[str, Any]:
        """The report's figures: per-op means and each part's quantiles in milliseconds."""
        self._flush_zeros()
        repeated = self.most_repeated()
        seen = self.db_timed and self.ops > 0
        return {
            "ops": self.ops,
            "statements_per_op": round(self.statements / self.ops, 3) if seen else None,
            "statements_max": self.statements_max if seen else None,
            "rows_per_op": round(self.rows / self.ops, 3) if seen else None,
            "streamed_per_op": round(self.streamed / self.ops, 3) if seen else None,
            "most_repeated": None if repeated is None else {"statement": repeated[0], "per_op": round(repeated[1], 3), "per_try": round(repeated[2], 3)},
            **{
                f"{part}_ms": self.hists[part].summary_ms(percentiles) if self.db_timed or part == "pool_wait" else None
                for part in PARTS
            },
        }


def anatomy_line(op: str, summary: dict[str, Any]) -> str:
    """One line of the human summary for one op type."""
    if summary["db_ms"] is None:
        parts = [f"{op}: pool wait p99 {summary['pool_wait_ms']['p99']:.2f} ms", "statements, db and python not seen (raw layer)"]
    else:
        parts = [
            f"{op}: {summary['statements_per_op']:.1f} statements/op",
            f"pool wait p99 {summary['pool_wait_ms']['p99']:.2f} ms",
            f"db p50 {summary['db_ms']['p50']:.2f} ms",
            f"python p50 {summary['python_ms']['p50']:.2f} ms",
        ]
    return "anatomy " + ", ".join(parts)


def repeat_warning(op: str, summary: dict[str, Any]) -> str | None:
    """The N+1 signature: one statement sent many times by each op."""
    repeated = summary["most_repeated"]
    if repeated is None or repeated["per_try"] < REPEAT_WARNING:  # per try: --retries repeats statements, not N+1
        return None
    return (
        f"{op} sends one statement {repeated['per_op']:.1f} times per op ({summary['statements_per_op']:.1f} statements/op), "
        f"likely N+1 (lazy loading): {repeated['statement']}"
    )
