"""Merge the workers' records: add only. Rates and percentiles are derived later, once (report.py),
except a settled timeline bin's, read once when it settles (see Collector._settle)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner.measure.anatomy import Anatomy
from runner.measure.bin_figures import op_figures
from runner.measure.histogram import LatencyHistogram
from runner.measure.records import IntervalRecord, MergedRecord, OpDelta, Record, WireError
from runner.measure.status import WorkerStatus

NS_PER_S = 1_000_000_000
RUNNING = (WorkerStatus.STARTING, WorkerStatus.READY)  # not WorkerStatus.finished


@dataclass
class OpTotals:
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: dict[str, str] = field(default_factory=dict)  # class -> the first message seen
    hist: LatencyHistogram = field(default_factory=LatencyHistogram)
    dropped: int = 0
    unfinished: int = 0
    anatomy: Anatomy | None = None  # None: --no-anatomy, or no op of this type succeeded
    retries: Counter[str] = field(default_factory=Counter)  # --retries: retried tries by class
    retried_ok: int = 0  # ops that succeeded after a retry
    gave_up: Counter[str] = field(default_factory=Counter)  # ops that failed on their last try, by class
    outcomes: Counter[str] = field(default_factory=Counter)  # ok ops that ended in a declared outcome, by class

    def add(self, delta: OpDelta, histograms: bool) -> None:
        """Add an interval's delta; its histograms too unless `histograms` is False (counts only:
        the run's and a worker's own totals, whose histograms are the bins' added up at the end)."""
        self.ok += delta["ok"]
        self.dropped += delta["dropped"]
        self.unfinished += delta["unfinished"]
        self.retried_ok += delta["retried_ok"]
        # Mostly empty, and Counter.update costs ~1.5 µs even then: a tenth of a record's merge.
        if delta["errors"]:
            self.errors.update(delta["errors"])
        for name, message in delta["error_samples"].items():
            self.error_samples.setdefault(name, message)
        if delta["retries"]:
            self.retries.update(delta["retries"])
        if delta["gave_up"]:
            self.gave_up.update(delta["gave_up"])
        if delta["outcomes"]:
            self.outcomes.update(delta["outcomes"])
        if histograms:
            self.add_histograms(delta)

    def add_histograms(self, delta: OpDelta) -> None:
        """Only a delta's latencies and anatomy: into totals that counted it already."""
        self.hist.merge_dict(delta["hist"])  # added straight from the wire: see runner.measure.histogram
        if delta["anatomy"]:
            self._anatomy().merge_dict(delta["anatomy"])

    def to_delta(self) -> OpDelta:
        """These totals as one wire delta (a node's merged intervals)."""
        return {
            "ok": self.ok, "dropped": self.dropped, "unfinished": self.unfinished, "retried_ok": self.retried_ok,
            "errors": dict(self.errors), "error_samples": dict(self.error_samples), "retries": dict(self.retries),
            "gave_up": dict(self.gave_up), "outcomes": dict(self.outcomes),
            "hist": self.hist.to_dict(),
            "anatomy": self.anatomy.to_dict() if self.anatomy is not None else None,
        }

    def merge_anatomy(self, anatomy: Anatomy) -> None:
        self._anatomy().merge(anatomy)

    def _anatomy(self) -> Anatomy:
        """The anatomy to add to, made on first use."""
        if self.anatomy is None:
            self.anatomy = Anatomy()
        return self.anatomy

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def totals_of(by_op: dict[str, OpTotals], name: str) -> OpTotals:
    """The op's totals, made on first use (not `setdefault(name, OpTotals())`, which would build
    a histogram on every call)."""
    totals = by_op.get(name)
    if totals is None:
        totals = by_op[name] = OpTotals()
    return totals


@dataclass
class SettledOp:
    """One op type in a settled bin: its counts, and the figures its timeline entry shows."""

    ok: int
    errors: int
    figures: dict[str, Any]  # bin_figures.op_figures: p50, p99, the anatomy's four


@dataclass
class IntervalBin:
    """Every worker's intervals that ended in one bin after the start barrier, added together."""

    t_ns: int = 0  # latest end of those intervals, since each worker's release
    by_op: dict[str, OpTotals] = field(default_factory=dict)  # emptied when the bin settles
    pool_checked_out: int = 0
    settled: dict[str, SettledOp] | None = None  # once settled: what its timeline entry shows, per op type


@dataclass
class WorkerState:
    worker_id: int
    planned_ops: int | None  # None: bounded by --duration
    pid: int | None = None
    host: str | None = None
    node: str | None = None  # the cluster's node id (Ray); None locally
    loop: str | None = None  # the event loop's class in an async worker
    settings: dict[str, str] = field(default_factory=dict)  # as the worker's session reports them
    status: WorkerStatus = WorkerStatus.STARTING
    reason: str | None = None
    go_wall_ns: int | None = None  # wall clock at release (for the start spread only)
    end_ns: int | None = None  # end of its measured part since its release
    cpu_user_s: float = 0.0
    cpu_sys_s: float = 0.0
    cpu_measured_s: float = 0.0
    max_rss_kb: int = 0
    exitcode: int | None = None
    by_op: dict[str, OpTotals] = field(default_factory=dict)
    tick_lag: LatencyHistogram = field(default_factory=LatencyHistogram)  # its probe timer's lateness
    exemplars: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # its slowest ops (--exemplars)
    next_seq: int = 0
    last_t_ns: int = 0  # end of the latest measured interval this worker reported
    last_bin: int = 0  # the timeline bin that interval went to
    counts: list[int] | None = None  # ok, errors, dropped, unfinished as its node's aggregator counted them (Ray)
    tick_lag_wire: dict[str, Any] | None = None  # its aggregator's latest (cumulative) tick_lag, read at close

    @property
    def ok(self) -> int:
        return self.counts[0] if self.counts else sum(t.ok for t in self.by_op.values())

    @property
    def errors(self) -> int:
        return self.counts[1] if self.counts else sum(t.error_count for t in self.by_op.values())

    @property
    def dropped(self) -> int:
        return self.counts[2] if self.counts else sum(t.dropped for t in self.by_op.values())

    @property
    def unfinished(self) -> int:
        return self.counts[3] if self.counts else sum(t.unfinished for t in self.by_op.values())

    @property
    def finished(self) -> bool:
        return self.status.finished


def bin_of(interval_ns: int, t_ns: int) -> int:
    """The bin of an interval record that ended `t_ns` after its worker's release: the last
    multiple of the interval it passed. A worker cuts its intervals at those multiples, never
    before and always a little after (its timer's lateness, the send): bin n holds the
    interval cut at n x interval + lateness, and a last, partial one cut before the next
    multiple. Binning by the next multiple instead put every interval one bin late and left
    bin 1 empty, so the first entry's rate divided a second's ops by the lateness."""
    return max(1, t_ns // interval_ns)


def bin_index(interval_ns: int, t_ns: int, last_bin: int, last_t_ns: int) -> int:
    """The bin of a worker's interval record, given where its previous one went: binned by when
    the interval ended, counted from the worker's own release (a worker whose timer ran late, a
    starved CPU, still lands its ops in the right second, and no two hosts' clocks are ever
    compared). The parent's collector and a node's aggregator both bin by this rule."""
    index = bin_of(interval_ns, t_ns)
    if index <= last_bin and t_ns - last_t_ns >= interval_ns // 2:
        # The last, partial interval cut in the bin of the worker's previous one, but most of an
        # interval after it (a --stages run ending just before a multiple): its own bin, or its
        # ops count in the step before. A short tail joins the previous bin, whose rate a few
        # ops over a few ms would otherwise spike.
        index = last_bin + 1
    return index


def stage_of(bounds: list[tuple[float, float]], t_s: float) -> int:
    """The --stages step an interval ending `t_s` after the barrier belongs to (the last one after the end)."""
    for index, (_, end) in enumerate(bounds):
        if t_s <= end + 1e-6:
            return index
    return len(bounds) - 1


class Collector:
    """The run's totals, each worker's, and the timeline's bins, from the workers' records.

    A bin below every running worker's latest can get no more records: it settles. Its
    histograms are added into the run's totals (and its --stages step's), its timeline figures
    read once, and the histograms dropped: a long run's parent holds per bin what its timeline
    entry shows, not nine histograms per op type (#29 item 11, at --interval 0.1: 2.1 MB/s with
    full buckets, 110 kB/s packed, 26-29 kB/s now, the connection samples included). A record that still reaches a settled bin (a worker
    the parent stopped waiting for, whose pipe held more) adds its counts to the bin and its
    latencies to the run's and the step's totals; that bin's percentiles stay those it settled with.
    """

    def __init__(self, planned_ops: list[int | None], interval_s: float, stage_bounds: list[tuple[float, float]] | None = None) -> None:
        self.interval_ns = int(interval_s * NS_PER_S)
        self.stage_bounds = stage_bounds  # --stages: each step's start and end in seconds since the barrier
        self.stage_by_op: list[dict[str, OpTotals]] = [{} for _ in stage_bounds or ()]  # each step's settled bins, added
        self.go_ns = 0  # the parent's clock when it released the workers (for its own samples)
        self.workers = [WorkerState(i, n) for i, n in enumerate(planned_ops)]
        self.by_op: dict[str, OpTotals] = {}
        self.warmup_by_op: dict[str, OpTotals] = {}  # kept apart: never in totals or the timeline
        self.timeline: dict[int, IntervalBin] = {}
        self.late_ops = 0  # open loop: ops issued more than 1 ms behind their schedule
        self.max_lag_ns = 0
        self.observer: Callable[[str, OpDelta, LatencyHistogram, Anatomy | None], None] | None = None  # --prometheus-port
        self.settled_below = 1  # the bins below it are settled (see _settle)

    def add(self, record: Record) -> None:
        worker = self.workers[record["worker"]]
        if record["seq"] != worker.next_seq:
            raise WireError(f"worker {worker.worker_id}: record {record['seq']} after {worker.next_seq - 1}")
        worker.next_seq += 1
        if record["kind"] == "start":
            worker.pid, worker.status = record["pid"], WorkerStatus.READY
            worker.host, worker.node, worker.loop = record["host"], record["node"], record["loop"]
            worker.settings = record["settings"]
        elif record["kind"] == "go":
            worker.go_wall_ns = record["wall_ns"]
        elif record["kind"] == "interval":
            self._add_interval(worker, record)
        else:
            worker.status, worker.reason = WorkerStatus(record["status"]), record["reason"]
            worker.end_ns = record["end_ns"] if worker.go_wall_ns is not None else None
            worker.cpu_user_s, worker.cpu_sys_s = record["cpu_user_s"], record["cpu_sys_s"]
            worker.max_rss_kb = record["max_rss_kb"]
            worker.cpu_measured_s = record["cpu_measured_s"]
            worker.exemplars = record["exemplars"]

    def _add_interval(self, worker: WorkerState, record: IntervalRecord) -> None:
        if record["phase"] == "warmup":
            for name, delta in record["ops"].items():
                totals_of(self.warmup_by_op, name).add(delta, histograms=True)  # kept apart: never in totals or the timeline
            return
        index = bin_index(self.interval_ns, record["t_ns"], worker.last_bin, worker.last_t_ns)
        worker.last_bin = max(worker.last_bin, index)
        worker.last_t_ns = record["t_ns"]
        worker.tick_lag.merge_dict(record["tick_lag"])
        self._add_to_bin(index, record["t_ns"], record["ops"], record["pool_checked_out"], record["schedule"])
        for name, delta in record["ops"].items():
            totals_of(worker.by_op, name).add(delta, histograms=False)

    def add_merged(self, record: MergedRecord) -> None:
        """A node's merged intervals (runner.transport.aggregate): its workers' places in their
        sequences and bins move on, their counts and probe lateness are replaced by the cumulative
        ones it carries, and the merged ops go to the bin as one worker's would."""
        for entry in record["workers"]:
            worker = self.workers[entry["worker"]]
            first, last = entry["seqs"]
            if first != worker.next_seq:
                raise WireError(f"worker {worker.worker_id}: merged records {first}-{last} after {worker.next_seq - 1}")
            worker.next_seq = last + 1
            worker.last_bin = max(worker.last_bin, entry["bin"])
            worker.last_t_ns = entry["t_ns"]
            worker.counts = entry["counts"]
        for totals in record["totals"]:  # kept as it came: each replaces the last, so only one is ever read
            self.workers[totals["worker"]].tick_lag_wire = totals["tick_lag"]
        if record["bin"] is not None:
            self._add_to_bin(record["bin"], record["t_ns"], record["ops"], record["pool_checked_out"], record["schedule"])

    def _add_to_bin(self, index: int, t_ns: int, ops: dict[str, OpDelta], pool_checked_out: int, schedule: dict[str, int]) -> None:
        """Measured ops into timeline bin `index` and the run's counts."""
        self.late_ops += schedule["late_ops"]
        self.max_lag_ns = max(self.max_lag_ns, schedule["max_lag_ns"])
        interval_bin = self.timeline.get(index)
        if interval_bin is None:
            interval_bin = self.timeline[index] = IntervalBin()
            self._settle_below_running()
        interval_bin.t_ns = max(interval_bin.t_ns, t_ns)
        interval_bin.pool_checked_out += pool_checked_out
        for name, delta in ops.items():
            if interval_bin.settled is None:
                totals_of(interval_bin.by_op, name).add(delta, histograms=True)
            else:
                self._add_late(interval_bin.settled, self._step_by_op(index, interval_bin), name, delta)
            if self.observer is not None:  # --prometheus-port: the record's own histograms, built
                self.observer(name, delta, LatencyHistogram.from_dict(delta["hist"]), Anatomy.from_dict(delta["anatomy"]) if delta["anatomy"] else None)
            # The run's counts as they come; its histograms are the bins' added up as each settles
            # (close settles the last ones), not once per record.
            totals_of(self.by_op, name).add(delta, histograms=False)

    def _settle_below_running(self) -> None:
        """Settle the bins no record can reach any more: a running worker's records go to its
        latest bin or later, so every bin below all of theirs is settled."""
        # Once a bin, over every worker: the status compared directly, not through two properties
        # (10,000 workers' scan took a fifth of the parent's CPU for their merged records).
        running = [w.last_bin for w in self.workers if w.status in RUNNING]
        self._settle_below(min(running) if running else self.settled_below)

    def _settle_below(self, end: int) -> None:
        for index in range(self.settled_below, end):
            interval_bin = self.timeline.get(index)
            if interval_bin is not None:
                self._settle(index, interval_bin)
        self.settled_below = max(self.settled_below, end)

    def _settle(self, index: int, interval_bin: IntervalBin) -> None:
        """Add a bin's histograms into the run's totals and its step's, keep what its timeline
        entry shows, drop the rest."""
        step = self._step_by_op(index, interval_bin)
        settled = {}
        for name, totals in interval_bin.by_op.items():
            for into in (totals_of(self.by_op, name), *([totals_of(step, name)] if step is not None else [])):
                into.hist.merge(totals.hist)
                if totals.anatomy is not None:
                    into.merge_anatomy(totals.anatomy)
            if step is not None:  # a step's counts come from its bins (the run's came with each record)
                step[name].ok += totals.ok
                step[name].errors.update(totals.errors)
            settled[name] = SettledOp(totals.ok, totals.error_count, op_figures(totals.hist, totals.anatomy))
        interval_bin.settled, interval_bin.by_op = settled, {}

    def _add_late(self, settled: dict[str, SettledOp], step: dict[str, OpTotals] | None, name: str, delta: OpDelta) -> None:
        """A record into a settled bin: its counts to the bin, its latencies to the run's totals
        (which counted it as it came), counts and latencies to its step's."""
        late = settled.get(name)
        if late is None:  # an op type the bin had not seen: its figures are this record's
            own = OpTotals()
            own.add_histograms(delta)
            late = settled[name] = SettledOp(0, 0, op_figures(own.hist, own.anatomy))
        late.ok += delta["ok"]
        late.errors += sum(delta["errors"].values())
        totals_of(self.by_op, name).add_histograms(delta)
        if step is not None:
            totals_of(step, name).add(delta, histograms=True)

    def _step_by_op(self, index: int, interval_bin: IntervalBin) -> dict[str, OpTotals] | None:
        """The --stages step a bin belongs to (by the middle of its interval), or None without --stages."""
        return self.stage_by_op[stage_of(self.stage_bounds, self.middle_s(index, interval_bin))] if self.stage_bounds else None

    def middle_s(self, index: int, interval_bin: IntervalBin) -> float:
        """The middle of bin `index`'s interval: where its ops mostly ran, and the step they count in.
        A worker cuts interval n at n x interval or a little after (its timer's lateness): the
        middle is taken from the multiple, not from the cut, or a starved worker's 300 ms late cut
        moved a 0.5 s bin into the next step (a ramp showed 54 of its 120 ops, beside two CPU
        hogs). A last, partial interval, cut before its multiple, is taken from its cut."""
        end_ns = min(interval_bin.t_ns, index * self.interval_ns)
        return max(0.0, (end_ns - self.interval_ns / 2) / NS_PER_S)

    def bin_of(self, t_ns: int) -> int:
        """The bin an interval ending `t_ns` after its worker's release goes to (bin_of above)."""
        return bin_of(self.interval_ns, t_ns)

    def close(self) -> None:
        """After the last record: settle every bin, so the run's latency histograms are the
        timeline's added up; read each aggregated worker's latest probe lateness (10,000 workers'
        every 10 s: 10 % of a core when each was read as it came)."""
        for worker in self.workers:
            if worker.tick_lag_wire is not None:
                worker.tick_lag, worker.tick_lag_wire = LatencyHistogram.from_dict(worker.tick_lag_wire), None
        self._settle_below(max(self.timeline, default=0) + 1)

    def interval_bin(self, index: int) -> IntervalBin:
        """Timeline bin `index`; an empty one (ending at its nominal time) if no record landed in it."""
        return self.timeline.get(index) or IntervalBin(t_ns=index * self.interval_ns)

    def mark_ended(self, worker_id: int, exitcode: int | None) -> None:
        """A worker's stream ended; without a final record before it, the worker died."""
        worker = self.workers[worker_id]
        worker.exitcode = exitcode
        if not worker.finished:
            worker.status = WorkerStatus.DIED
            worker.reason = f"exited with code {exitcode} before its final record"

    def mark_lost(self, worker_id: int, reason: str, host: str | None) -> None:
        """A worker the transport lost (its actor or its host died) before its final record."""
        worker = self.workers[worker_id]
        worker.host = worker.host or host
        if not worker.finished:
            worker.status, worker.reason = WorkerStatus.LOST, reason

    def mark_unresponsive(self, worker_id: int, silent_s: float) -> None:
        worker = self.workers[worker_id]
        if not worker.finished:
            worker.status, worker.reason = WorkerStatus.UNRESPONSIVE, f"nothing heard for {silent_s:.1f} s"

    def ok_by_op(self) -> dict[str, int]:
        """Successful ops per op type, warm-up included, less those that ended in a declared
        outcome (they rolled back): what the database must reflect."""
        ok: dict[str, int] = {}
        for totals in (self.by_op, self.warmup_by_op):
            for name, t in totals.items():
                ok[name] = ok.get(name, 0) + t.ok - sum(t.outcomes.values())
        return ok

    @property
    def all_ready(self) -> bool:
        """Every worker said it is ready, and none has ended since (the start barrier may open)."""
        return all(w.status is WorkerStatus.READY for w in self.workers)
