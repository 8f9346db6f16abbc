"""The wire schema between a worker and the collector: one compact JSON object per line.

A worker sends `start` when it is ready (engine made, waiting for the go signal), an
`interval` every `--interval` seconds with deltas only, and `final` when it is done. Every
record carries the schema version, its kind, the worker id and a per-worker sequence number.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

import orjson

WIRE_VERSION = 1


class OpDelta(TypedDict):
    ok: int
    dropped: int  # open loop: refused by --max-inflight
    errors: dict[str, int]  # exception class name -> count
    hist: dict[str, Any]  # LatencyHistogram.to_dict()


class StartRecord(TypedDict):
    v: int
    kind: Literal["start"]
    worker: int
    seq: int
    pid: int
    planned_ops: int | None  # None: bounded by --duration


class IntervalRecord(TypedDict):
    v: int
    kind: Literal["interval"]
    worker: int
    seq: int
    phase: str  # "warmup" or "measure"
    t_ns: int  # monotonic clock at the end of the interval (comparable across processes)
    ops: dict[str, OpDelta]
    pool_checked_out: int
    schedule: dict[str, int]  # open loop: late_ops, max_lag_ns (zeros otherwise)


class FinalRecord(TypedDict):
    v: int
    kind: Literal["final"]
    worker: int
    seq: int
    status: str  # "done", "stopped" or "failed"
    reason: str | None
    start_ns: int  # monotonic clock when the measured part began
    end_ns: int
    cpu_user_s: float
    cpu_sys_s: float
    cpu_measured_s: float  # CPU of the measured part only (from the start barrier to the end)
    max_rss_kb: int


Record = StartRecord | IntervalRecord | FinalRecord


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
    if record.get("kind") not in ("start", "interval", "final"):
        raise WireError(f"unknown record kind {record.get('kind')!r}")
    return record  # type: ignore[return-value]
