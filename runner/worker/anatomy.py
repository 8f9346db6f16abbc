"""Inside an op: SQLAlchemy's own events and a timed pool, attributed to the op that caused them,
and a probe of how late the worker's timers fire (is the client the bottleneck?).

The op being run is in a context variable (CURRENT, a cell holding its trace): asyncio gives
every task its own context, threads have their own, and SQLAlchemy's greenlets run in their
task's context (greenlet's gr_context), so an event handler always finds the op whose statement
it sees.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from itertools import repeat
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, PoolProxiedConnection, QueuePool

from runner.measure.exemplars import Call
from runner.spec import RunSpec
from runner.worker.recorder import Recorder

TICK_S = 0.01  # the lag probe's timer: 100 wake-ups a second, a negligible load
TICK_NS = int(TICK_S * 1e9)
T = TypeVar("T")


class OpTrace:
    """One op's figures on a layer that sees its statements (core, orm); a raw op has a PoolTrace."""

    __slots__ = ("statements", "rows", "streamed", "db_ns", "pool_wait_ns", "texts", "started_ns", "calls")

    def __init__(self, keeps_calls: bool = False) -> None:
        self.statements = 0
        self.rows = 0
        self.streamed = 0
        self.db_ns = 0
        self.pool_wait_ns = 0
        self.texts: dict[str, int] | None = {}  # None only in a PoolTrace: the raw layer's statements are unseen
        self.started_ns = 0  # the statement in progress (an op's statements run one at a time)
        self.calls: list[Call] | None = [] if keeps_calls else None  # --exemplars: what it sent


class PoolTrace(OpTrace):
    """A raw op's trace: the pool wait is all the layer can see (it has no --exemplars), so the
    rest are class-level zeros and one attribute is set per op (the worker's hot path)."""

    __slots__ = ()
    statements: int = 0
    rows: int = 0
    streamed: int = 0
    db_ns: int = 0
    started_ns: int = 0
    texts: dict[str, int] | None = None
    calls: list[Call] | None = None

    def __init__(self) -> None:  # noqa: D107 - only the field the pool writes
        self.pool_wait_ns = 0


class OpCell:
    """What a task (or thread) that runs ops runs now: its `trace`, None between ops (the op
    loop takes the trace back from the cell when the op ends: see UNWAITED).

    CURRENT holds a cell, set once for all the ops a window lane (or a sync thread) runs, and each
    op only puts its trace in it. Setting the context variable per op instead (a new context
    mapping and a token each time, and a reset) cost ~3,500 instructions per raw op, a tenth of
    the harness's whole cost over a hand-written loop (BENCHMARKS.md, "Every layer at its own speed")."""

    __slots__ = ("trace",)

    def __init__(self) -> None:
        self.trace: OpTrace | None = None


NO_OP = OpCell()  # CURRENT outside any op's task or thread; never written
CURRENT: ContextVar[OpCell] = ContextVar("runner_op", default=NO_OP)
# A raw op's trace until it waits for a connection: one shared PoolTrace, never written (its pool
# wait is 0). The lease's slow path puts a PoolTrace of the op's own in the cell to time the wait,
# and the op loop takes the cell's trace when the op ends, so most raw ops make no trace at all.
UNWAITED = PoolTrace()


def _op_trace() -> OpTrace | None:
    """The current op's trace to add a pool wait to: its own, made now if it had none yet."""
    cell = CURRENT.get()
    trace = cell.trace
    if trace is UNWAITED:
        trace = cell.trace = PoolTrace()
    return trace


def trace_factory(config: RunSpec) -> Callable[[], OpTrace | None]:
    """What each op of this run is traced with: nothing (--no-anatomy), a PoolTrace on the raw
    layer, or a fresh OpTrace (keeping what each statement sent with --exemplars)."""
    if not config.anatomy:
        return lambda: None
    if config.layer == "raw":  # no statements to see (and so no --exemplars): the pool wait only
        return repeat(UNWAITED).__next__  # C-level: no frame per op
    if config.exemplars > 0:
        return lambda: OpTrace(keeps_calls=True)
    return OpTrace  # the class itself: no frame of ours around its __init__ on every op


def _timed(run: Callable[..., None], executemany: bool) -> Callable[..., None]:
    """A dialect's do_execute / do_executemany, timed for the op in progress: its time, text and
    rows. Written out in one function: a helper call per statement was one more cold frame for
    every statement (5 per tpcb op) beside PostgreSQL on the same cores."""

    def timed(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        trace = CURRENT.get().trace
        if trace is None or trace.texts is None:
            run(cursor, statement, parameters, context)
            return
        started = time.perf_counter_ns()
        run(cursor, statement, parameters, context)
        trace.db_ns += time.perf_counter_ns() - started
        trace.statements += 1
        texts = trace.texts
        texts[statement] = texts.get(statement, 0) + 1
        if trace.calls is not None:
            # An executemany keeps its first parameter set; insertmanyvalues batches arrive with
            # executemany set but one flat list for their rewritten statement, kept whole.
            if executemany and parameters and isinstance(parameters[0], list | tuple | dict):
                parameters = parameters[0]
            trace.calls.append((statement, parameters))
        if cursor.description is None:  # a statement that returns no rows
            return
        if getattr(context, "_is_server_side", False):  # session.stream(), yield_per: rows come later, unseen
            trace.streamed += 1
            return
        count = cursor.rowcount
        if count < 0:  # a driver that does not report it: SQLAlchemy's asyncpg adapter holds the rows
            count = len(getattr(cursor, "_rows", ()))
        trace.rows += count

    return timed


def _timed_no_params(run: Callable[..., None]) -> Callable[..., None]:
    """do_execute_no_params, timed the same way (statements without parameters: not the hot path)."""
    return _timed(lambda cursor, statement, _parameters, context: run(cursor, statement, context), False)


def instrument(engine: Engine) -> None:
    """Time every statement the engine sends (an AsyncEngine: pass its sync_engine).

    This wraps the engine's own dialect's do_execute, do_executemany and do_execute_no_params,
    the three calls through which SQLAlchemy hands a statement to the driver, at the point where
    its before/after_cursor_execute events fire. Not those events themselves: an engine with any
    cursor-execute listener pays for SQLAlchemy's event dispatch on every connection and
    statement, measured at ~5 µs per statement (30 µs per tpcb op) before a listener runs.
    """
    dialect: Any = engine.dialect  # this engine's own instance: no other engine is touched
    dialect.do_execute = _timed(dialect.do_execute, False)
    dialect.do_executemany = _timed(dialect.do_executemany, True)
    dialect.do_execute_no_params = _timed_no_params(dialect.do_execute_no_params)


def pool_wait(acquire: Callable[[], T]) -> T:
    """`acquire()`, its time added to the current op's pool wait: from asking a pool for a
    connection to having it (the queue, a new connection's connect, the checkout handlers)."""
    trace = _op_trace()
    if trace is None:
        return acquire()
    start = time.perf_counter_ns()
    try:
        return acquire()
    finally:
        trace.pool_wait_ns += time.perf_counter_ns() - start


async def pool_wait_async(acquire: Callable[[], Awaitable[T]]) -> T:
    """pool_wait for a pool that is awaited (the raw layer's async raw pool, when no connection is idle)."""
    trace = _op_trace()
    if trace is None:
        return await acquire()
    start = time.perf_counter_ns()
    try:
        return await acquire()
    finally:
        trace.pool_wait_ns += time.perf_counter_ns() - start


class _Timed:
    """SQLAlchemy's pools, timed: Pool.connect() is the one public door every checkout goes through."""

    def connect(self) -> PoolProxiedConnection:
        return pool_wait(super().connect)  # type: ignore[misc]


class TimedQueuePool(_Timed, QueuePool):
    pass


class TimedAsyncQueuePool(_Timed, AsyncAdaptedQueuePool):
    pass


async def probe_loop(recorder: Recorder) -> None:
    """How late a 10 ms timer fires on this event loop: a busy loop makes every op wait too."""
    while True:
        start = time.perf_counter_ns()
        await asyncio.sleep(TICK_S)
        recorder.tick_lag(max(0, time.perf_counter_ns() - start - TICK_NS))


class ThreadProbe:
    """The same in the sync mode: a thread's 10 ms sleep, late by the wait for the GIL (and a core)."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            start = time.perf_counter_ns()
            if self._stop.wait(TICK_S):
                return
            self._recorder.tick_lag(max(0, time.perf_counter_ns() - start - TICK_NS))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
