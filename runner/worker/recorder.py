"""A worker's counters for the current interval: ok, errors by class, latency histogram per op.

Thread-safe, because the sync baseline records from a thread pool and the interval emitter
takes the deltas from its own thread.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter

from runner.measure.anatomy import Anatomy, Trace
from runner.measure.exemplars import Exemplars
from runner.measure.histogram import LatencyHistogram
from runner.measure.records import OpDelta

LATE_NS = 1_000_000  # an open-loop op issued more than 1 ms after its intended start is late


FOLD_EVERY = 256  # successful ops kept before they enter the counters and histograms at once
Kept = tuple[str, int, "Trace | None", int]  # a successful op, as record() takes it: name, latency, trace, retries
_NAME = itemgetter(0)  # a kept op's name
SAMPLE_CHARS = 200  # an error's sample message is cut to this many characters


@dataclass
class _OpInterval:
    ok: int = 0
    dropped: int = 0
    unfinished: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)  # error class -> its first message
    hist: LatencyHistogram = field(default_factory=LatencyHistogram)
    anatomy: Anatomy | None = None  # made by the first traced op
    retries: Counter[str] = field(default_factory=Counter)
    retried_ok: int = 0
    gave_up: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # ops ended in a declared outcome, by class (also in ok)

    def new_anatomy(self) -> Anatomy:
        self.anatomy = Anatomy()
        return self.anatomy


def driver_error(exc: BaseException) -> BaseException:
    """The driver's own exception where SQLAlchemy wrapped one (e.g. TooManyConnectionsError)."""
    inner: BaseException = getattr(exc, "orig", None) or exc
    # asyncpg errors reach SQLAlchemy through an adapter: the original is the adapter's cause.
    if inner.__cause__ is not None and type(inner).__module__.startswith("sqlalchemy"):
        inner = inner.__cause__
    return inner


def error_class(exc: BaseException) -> str:
    return type(driver_error(exc)).__name__


def error_message(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """The driver's message: first line, shortened, with every secret (the password) masked."""
    inner = driver_error(exc)
    lines = str(inner).strip().splitlines()
    message = lines[0] if lines else type(inner).__name__
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message if len(message) <= SAMPLE_CHARS else message[: SAMPLE_CHARS - 3] + "..."


class Recorder:
    def __init__(self, secrets: tuple[str, ...] = (), exemplars: int = 0, outcomes: dict[str, tuple[type[BaseException], ...]] | None = None) -> None:
        self._secrets = secrets  # never in a sample message
        self.outcomes = outcomes or {}  # op -> the exceptions its workload declares outcomes (workloads.Op.outcomes)
        self._exemplars = Exemplars(exemplars) if exemplars else None
        self._lock = threading.Lock()
        self._ops: dict[str, _OpInterval] = {}
        # Successful ops not yet folded in, appended without the lock: a deque's append and
        # popleft are atomic, so an op kept while another thread folds waits for the next fold.
        # The async op lane appends here itself (record's success path, written out there: a
        # call per op was ~700 instructions of a raw op's harness cost), then calls fold().
        self.kept: deque[Kept] = deque()
        self._late = 0
        self._max_lag_ns = 0
        self._tick_lag = LatencyHistogram()

    def record(self, op: str, latency_ns: int, error: BaseException | None, trace: Trace | None = None, retried: int = 0) -> None:
        """Count one finished op; only successful ops enter the latency histogram and the anatomy.
        `retried`: how many times it was retried (--retries) before this, its last, try."""
        if error is None:
            # Every op's hot path: the op is only kept here, and enters the counters, histograms
            # and exemplars with FOLD_EVERY others at once (_fold). Beside PostgreSQL on the same
            # cores, the histograms' code and data are cold by the time the next op ends; folded
            # in a batch they stay warm (6 µs per op less in one process against the real server),
            # taken across the batch each figure costs a fraction of a call per op, and keeping
            # an op without the lock costs a third of what it did with it (BENCHMARKS.md, "Every layer at its own speed").
            kept = self.kept
            kept.append((op, latency_ns, trace, retried))
            if len(kept) >= FOLD_EVERY:
                self.fold()
            return
        outcome = self._outcome(op, error)
        if outcome is not None:  # an answer, not a failure: ok and timed, and counted by its class
            with self._lock:
                self._stats(op).outcomes[outcome] += 1
            self.record(op, latency_ns, None, trace, retried)
            return
        name = error_class(error)
        with self._lock:
            stats = self._stats(op)
            stats.errors[name] += 1
            if retried:
                stats.gave_up[name] += 1
            if name not in stats.samples:  # one message per class and interval: the reason survives
                stats.samples[name] = error_message(error, self._secrets)

    def _outcome(self, op: str, error: BaseException) -> str | None:
        """The class name of a declared outcome the op ended in (the exception, or the driver's
        under SQLAlchemy's wrapper); None for a failure."""
        declared = self.outcomes.get(op)
        if not declared:
            return None
        for exc in (error, driver_error(error)):
            if isinstance(exc, declared):
                return type(exc).__name__
        return None

    def fold(self) -> None:
        """The kept successful ops into this interval's counters: after a keep that made
        `len(kept) >= FOLD_EVERY` (see record), and before the exemplars are taken."""
        with self._lock:
            self._fold()

    def _fold(self) -> None:
        """The kept successful ops into this interval's counters (call with the lock held): each
        op type's batch at once, its figures gathered by C-level maps, not op by op."""
        kept = self.kept
        pending = [kept.popleft() for _ in range(len(kept))]  # not one kept after this began
        pending.sort(key=_NAME)  # stable: each op type's ops keep the order they ended in
        for op, group in groupby(pending, _NAME):
            _, latency_column, trace_column, retried = zip(*group, strict=True)  # the batch's fields, each in one tuple
            latencies, traces = list(latency_column), list(trace_column)
            count = len(latencies)
            stats = self._stats(op)
            stats.ok += count
            stats.retried_ok += count - retried.count(0)
            stats.hist.record_many(latencies)
            untraced = traces.count(None)  # --no-anatomy: all of them
            if untraced < count:
                retries = sum(retried)
                if untraced:
                    retries = sum(tries for tries, trace in zip(retried, traces, strict=True) if trace is not None)
                    latencies = [latency for latency, trace in zip(latencies, traces, strict=True) if trace is not None]
                    traces = [trace for trace in traces if trace is not None]
                (stats.anatomy or stats.new_anatomy()).record_many(traces, latencies, retries)
                if self._exemplars is not None:
                    for trace, latency in zip(traces, latencies, strict=True):
                        if trace.calls is not None:
                            self._exemplars.offer(op, latency, trace.calls)

    def retry(self, op: str, error: BaseException) -> None:
        """A try that failed with a retryable error and will be tried again (not an error)."""
        with self._lock:
            self._stats(op).retries[error_class(error)] += 1

    def unfinished(self, op: str) -> None:
        """An op still in flight when the grace period after a stop ran out: cancelled, counted."""
        with self._lock:
            self._stats(op).unfinished += 1

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

    def take_exemplars(self) -> dict[str, list[dict[str, object]]]:
        """The slowest ops so far (and forget them: after warm-up, the measured part's only)."""
        if self._exemplars is None:
            return {}
        self.fold()  # the kept ops' calls are offered when they are folded in
        return self._exemplars.take()

    def tick_lag(self, lag_ns: int) -> None:
        """How late the worker's 10 ms probe timer fired (runner.worker.anatomy)."""
        with self._lock:
            self._tick_lag.record(lag_ns)

    def take_tick_lag(self) -> dict[str, object]:
        with self._lock:
            hist, self._tick_lag = self._tick_lag, LatencyHistogram()
        return hist.to_dict()

    def take_schedule(self) -> dict[str, int]:
        with self._lock:
            schedule = {"late_ops": self._late, "max_lag_ns": self._max_lag_ns}
            self._late = self._max_lag_ns = 0
        return schedule

    def take(self) -> dict[str, OpDelta]:
        """The deltas since the last call, resetting the interval."""
        with self._lock:
            self._fold()
            ops, self._ops = self._ops, {}
        return {
            name: {
                "ok": s.ok,
                "errors": dict(s.errors),
                "error_samples": s.samples,
                "dropped": s.dropped,
                "unfinished": s.unfinished,
                "hist": s.hist.to_dict(),
                "anatomy": None if s.anatomy is None else s.anatomy.to_dict(),
                "retries": dict(s.retries),
                "retried_ok": s.retried_ok,
                "gave_up": dict(s.gave_up),
                "outcomes": dict(s.outcomes),
            }
            for name, s in ops.items()
        }
