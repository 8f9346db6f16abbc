"""The wire schema between a worker and the collector: one compact JSON object per line.

A worker sends `start` when it is ready (engine made, one connection checked, warmed up,
waiting for the go signal), `go` when it is released, an `interval` every `--interval` seconds
with deltas only, and `final` when it is done (a worker that cannot start sends only `final`,
status "refused"). Every record carries the schema version, its kind, the worker id and a
per-worker sequence number.

Times are nanoseconds on the worker's own monotonic clock, counted from the moment it was
released (its `go`): workers on different hosts share no clock, so nothing on the wire needs
one. Wall-clock stamps (`wall_ns`) are only for showing how far apart the releases were.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

import orjson

from runner.measure.status import WorkerStatus

# 7: `merged` records from a node's aggregator; 6: histograms as varint buckets (runner.measure.histogram);
# 5: an op's `outcomes`; 4: an anatomy's `attempts` (ops and their retries)
WIRE_VERSION = 7


class OpDelta(TypedDict):
    ok: int
    dropped: int  # open loop: refused by --max-inflight
    unfinished: int  # still in flight when the grace period after a stop ran out: cancelled
    errors: dict[str, int]  # exception class name -> count
    error_samples: dict[str, str]  # exception class name -> its first message in the interval
    hist: dict[str, Any]  # LatencyHistogram.to_dict()
    anatomy: dict[str, Any] | None  # Anatomy.to_dict() of the successful ops; None with --no-anatomy
    retries: dict[str, int]  # --retries: tries that failed and were retried, by exception class
    retried_ok: int  # ops that succeeded after at least one retry
    gave_up: dict[str, int]  # ops that failed on their last allowed try, by that try's class
    outcomes: dict[str, int]  # ops that ended in an exception the workload declares an outcome, by class (in ok too)


class StartRecord(TypedDict):
    v: int
    kind: Literal["start"]
    worker: int
    seq: int
    pid: int
    host: str  # the worker's host name
    node: str | None  # the cluster's node id (Ray), None on the local transport
    planned_ops: int | None  # None: bounded by --duration
    settings: dict[str, str]  # session settings as the worker's own connection reports them
    loop: str | None  # the event loop's class in an async worker (None in sync mode)


class GoRecord(TypedDict):
    v: int
    kind: Literal["go"]
    worker: int
    seq: int
    wall_ns: int  # time.time_ns() when released: the start spread across workers, shown


class IntervalRecord(TypedDict):
    v: int
    kind: Literal["interval"]
    worker: int
    seq: int
    phase: str  # "warmup" or "measure"
    t_ns: int  # end of the interval since the worker's release (warm-up: 0)
    ops: dict[str, OpDelta]
    pool_checked_out: int
    schedule: dict[str, int]  # open loop: late_ops, max_lag_ns (zeros otherwise)
    tick_lag: dict[str, Any]  # LatencyHistogram.to_dict(): how late the worker's 10 ms probe timer fired


class FinalRecord(TypedDict):
    v: int
    kind: Literal["final"]
    worker: int
    seq: int
    status: str  # a WorkerStatus the worker decides: done, stopped, failed or refused (could not start: reason says why)
    reason: str | None
    end_ns: int  # end of the measured part since the worker's release (0 if never released)
    cpu_user_s: float
    cpu_sys_s: float
    cpu_measured_s: float  # CPU of the measured part only (from the start barrier to the end)
    max_rss_kb: int
    exemplars: dict[str, list[dict[str, Any]]]  # --exemplars: op -> its slowest ops (runner.measure.exemplars)


class MergedEntry(TypedDict):
    """A worker's part in a merged record: which of its records it holds, and where they went."""

    worker: int
    seqs: list[int]  # the first and last sequence number of its interval records merged here
    t_ns: int  # the end of the latest of them, since the worker's release
    bin: int  # the timeline bin of the latest of them
    counts: list[int]  # the worker's ok, errors, dropped and unfinished ops so far, every op type (cumulative)


class WorkerTotals(TypedDict):
    """A worker's probe lateness so far (cumulative)."""

    worker: int
    tick_lag: dict[str, Any]  # LatencyHistogram.to_dict()


class MergedRecord(TypedDict):
    """The measured intervals of one node's workers that went to one timeline bin, merged where the
    workers run (a node's aggregator, runner.transport.aggregate): one record per node per interval
    reaches the parent, not one per worker. Its workers' own counts ride in `workers`, their probe
    lateness (a histogram each) in `totals`, less often."""

    v: int
    kind: Literal["merged"]
    bin: int | None  # the timeline bin of every interval merged here; None: `totals` only
    t_ns: int  # the latest end among them
    ops: dict[str, OpDelta]
    pool_checked_out: int
    schedule: dict[str, int]
    workers: list[MergedEntry]
    totals: list[WorkerTotals]  # a worker's every TOTALS_EVERY of its intervals, and when it ends


Record = StartRecord | GoRecord | IntervalRecord | FinalRecord
KINDS = ("start", "go", "interval", "final")
# What a worker can say of itself; the other ends are the parent's to decide.
FINAL_STATUSES = (WorkerStatus.DONE, WorkerStatus.STOPPED, WorkerStatus.FAILED, WorkerStatus.REFUSED)


class WireError(ValueError):
    """A line that is not a record of this wire version."""


def encode(record: Record) -> bytes:
    return orjson.dumps(record) + b"\n"


def decode(line: bytes) -> Record:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"not JSON: {exc}") from None
    if not isinstance(record, dict) or record.get("v") != WIRE_VERSION:
        raise WireError(f"not a wire-version-{WIRE_VERSION} record")
    if record.get("kind") not in KINDS:
        if record.get("kind") == "merged":
            raise WireError("a merged record where a worker's was expected (decode_merged reads those)")
        raise WireError(f"unknown record kind {record.get('kind')!r}")
    if record["kind"] == "final" and record.get("status") not in FINAL_STATUSES:
        raise WireError(f"unknown final status {record.get('status')!r}")
    return record  # type: ignore[return-value]


def decode_merged(line: bytes) -> MergedRecord:
    """A node aggregator's merged record (the only kind it makes of its own)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"not JSON: {exc}") from None
    if not isinstance(record, dict) or record.get("v") != WIRE_VERSION or record.get("kind") != "merged":
        raise WireError(f"not a wire-version-{WIRE_VERSION} merged record")
    return record  # type: ignore[return-value]
