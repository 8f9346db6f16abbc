"""A worker's counters for the current interval: ok, errors by class, latency histogram per op.

Thread-safe, because the sync baseline records from a thread pool and the interval emitter
takes the deltas from its own thread.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from runner.measure.histogram import LatencyHistogram
from runner.measure.records import OpDelta

LATE_NS = 1_000_000  # an open-loop op issued more than 1 ms after its intended start is late


@dataclass
class _OpInterval:
    ok: int = 0
    dropped: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    hist: LatencyHistogram = field(default_factory=LatencyHistogram)


def error_class(exc: BaseException) -> str:
    """The driver's own exception class where SQLAlchemy wrapped one (e.g. TooManyConnectionsError)."""
    inner: BaseException = getattr(exc, "orig", None) or exc
    # asyncpg errors reach SQLAlchemy through an adapter: the original is the adapter's cause.
    if inner.__cause__ is not None and type(inner).__module__.startswith("sqlalchemy"):
        inner = inner.__cause__
    return type(inner).__name__


class Recorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ops: dict[str, _OpInterval] = {}
        self._late = 0
        self._max_lag_ns = 0

    def record(self, op: str, latency_ns: int, error: str | None) -> None:
        """Count one finished op; only successful ops enter the latency histogram."""
        with self._lock:
            stats = self._stats(op)
            if error is None:
                stats.ok += 1
                stats.hist.record(latency_ns)
            else:
                stats.errors[error] += 1

    def drop(self, op: str) -> None:
        """An open-loop op refused by --max-inflight: not run, but counted."""
        with self._lock:
            self._stats(op).dropped += 1

    def _stats(self, op: str) -> _OpInterval:
        """This interval's counters for `op` (call with the lock held)."""
        stats = self._ops.get(op)
        if stats is None:
            stats = self._ops[op] = _OpInterval()
        return stats

    def lag(self, lag_ns: int) -> None:
        """How far behind its schedule an open-loop op was issued."""
        with self._lock:
            self._max_lag_ns = max(self._max_lag_ns, lag_ns)
            if lag_ns > LATE_NS:
                self._late += 1

    def take_schedule(self) -> dict[str, int]:
        with self._lock:
            schedule = {"late_ops": self._late, "max_lag_ns": self._max_lag_ns}
            self._late = self._max_lag_ns = 0
        return schedule

    def take(self) -> dict[str, OpDelta]:
        """The deltas since the last call, resetting the interval."""
        with self._lock:
            ops, self._ops = self._ops, {}
        return {
            name: {"ok": s.ok, "errors": dict(s.errors), "dropped": s.dropped, "hist": s.hist.to_dict()}
            for name, s in ops.items()
        }
