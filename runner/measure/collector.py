"""Merge the workers' records: add only. Rates and percentiles are derived later, once (report.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from runner.measure.histogram import LatencyHistogram
from runner.measure.records import IntervalRecord, Record, WireError

NS_PER_S = 1_000_000_000


@dataclass
class OpTotals:
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    hist: LatencyHistogram = field(default_factory=LatencyHistogram)
    dropped: int = 0

    def add(self, ok: int, errors: dict[str, int], hist: LatencyHistogram, dropped: int) -> None:
        self.ok += ok
        self.dropped += dropped
        self.errors.update(errors)
        self.hist.merge(hist)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass
class TimelineSlot:
    """Every worker's n-th interval, added together."""

    t_ns: int = 0  # latest end of the interval among the workers (monotonic)
    by_op: dict[str, OpTotals] = field(default_factory=dict)
    pool_checked_out: int = 0


@dataclass
class WorkerState:
    worker_id: int
    planned_ops: int | None  # None: bounded by --duration
    pid: int | None = None
    status: str = "starting"  # starting -> ready -> done | stopped | failed | died
    reason: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    cpu_user_s: float = 0.0
    cpu_sys_s: float = 0.0
    cpu_measured_s: float = 0.0
    max_rss_kb: int = 0
    exitcode: int | None = None
    by_op: dict[str, OpTotals] = field(default_factory=dict)
    next_seq: int = 0
    last_t_ns: int = 0  # end of the latest measured interval this worker reported

    @property
    def ok(self) -> int:
        return sum(t.ok for t in self.by_op.values())

    @property
    def errors(self) -> int:
        return sum(t.error_count for t in self.by_op.values())

    @property
    def dropped(self) -> int:
        return sum(t.dropped for t in self.by_op.values())

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "failed", "died")


class Collector:
    def __init__(self, planned_ops: list[int | None], interval_s: float) -> None:
        self.interval_ns = int(interval_s * NS_PER_S)
        self.go_ns = 0  # set by the supervisor when it releases the workers
        self.workers = [WorkerState(i, n) for i, n in enumerate(planned_ops)]
        self.by_op: dict[str, OpTotals] = {}
        self.warmup_by_op: dict[str, OpTotals] = {}  # kept apart: never in totals or the timeline
        self.timeline: dict[int, TimelineSlot] = {}
        self.late_ops = 0  # open loop: ops issued more than 1 ms behind their schedule
        self.max_lag_ns = 0

    def add(self, record: Record) -> None:
        worker = self.workers[record["worker"]]
        if record["seq"] != worker.next_seq:
            raise WireError(f"worker {worker.worker_id}: record {record['seq']} after {worker.next_seq - 1}")
        worker.next_seq += 1
        if record["kind"] == "start":
            worker.pid, worker.status = record["pid"], "ready"
        elif record["kind"] == "interval":
            self._add_interval(worker, record)
        else:
            worker.status, worker.reason = record["status"], record["reason"]
            worker.start_ns, worker.end_ns = record["start_ns"], record["end_ns"]
            worker.cpu_user_s, worker.cpu_sys_s = record["cpu_user_s"], record["cpu_sys_s"]
            worker.max_rss_kb = record["max_rss_kb"]
            worker.cpu_measured_s = record["cpu_measured_s"]

    def _add_interval(self, worker: WorkerState, record: IntervalRecord) -> None:
        if record["phase"] == "warmup":
            targets = [self.warmup_by_op]
        else:
            # Binned by when the interval ended, counted from the start barrier: a worker whose
            # timer ran late (a starved CPU) still lands its ops in the right second.
            worker.last_t_ns = record["t_ns"]
            self.late_ops += record["schedule"]["late_ops"]
            self.max_lag_ns = max(self.max_lag_ns, record["schedule"]["max_lag_ns"])
            slot = self.timeline.setdefault(self.slot_of(record["t_ns"]), TimelineSlot())
            slot.t_ns = max(slot.t_ns, record["t_ns"])
            slot.pool_checked_out += record["pool_checked_out"]
            targets = [worker.by_op, self.by_op, slot.by_op]
        for name, delta in record["ops"].items():
            hist = LatencyHistogram.from_dict(delta["hist"])  # decoded once, added to each target
            for totals in targets:
                totals.setdefault(name, OpTotals()).add(delta["ok"], delta["errors"], hist, delta["dropped"])

    def slot_of(self, t_ns: int) -> int:
        """Slot n covers ((n-1) x interval, n x interval] after the start barrier."""
        return max(1, -(-(t_ns - self.go_ns) // self.interval_ns))

    def slot(self, index: int) -> TimelineSlot:
        """Timeline slot `index`; an empty one (ending at its nominal time) if no record landed in it."""
        return self.timeline.get(index) or TimelineSlot(t_ns=self.go_ns + index * self.interval_ns)

    def mark_died(self, worker_id: int, exitcode: int | None) -> None:
        """A worker whose pipe closed without a final record."""
        worker = self.workers[worker_id]
        worker.exitcode = exitcode
        if not worker.finished:
            worker.status = "died"
            worker.reason = f"exited with code {exitcode} before its final record"

    def ok_by_op(self) -> dict[str, int]:
        """Successful ops per op type, warm-up included: what the database must reflect."""
        ok: dict[str, int] = {}
        for totals in (self.by_op, self.warmup_by_op):
            for name, t in totals.items():
                ok[name] = ok.get(name, 0) + t.ok
        return ok

    @property
    def all_ready(self) -> bool:
        return all(w.status != "starting" for w in self.workers)
