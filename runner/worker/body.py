"""One worker process: its own engine and event loop, the op loop, records on its pipe.

Everything stateful is made here, inside the child: pooled connections must not cross a
process boundary and an AsyncEngine must not be shared between event loops.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import resource
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any, cast

import uvloop
from sqlalchemy import Connection as SyncConnection
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from runner.concurrency import MODES, Knobs
from runner.dsn import driver_args
from runner.worker.channel import Channel, Emitter
from runner.worker.plan import WorkerPlan
from runner.worker.recorder import Recorder, error_class
from workloads import Handle, Op, resolve

GO_POLL_S = 0.2
NS_PER_S = 1_000_000_000
DATA_SEED_OFFSET = 1  # op data values have their own RNG, so they never shift the op sequence
WARMUP_SEED_OFFSET = 2  # and so does warm-up: the measured sequence is the same without it
ARRIVAL_SEED_OFFSET = 3






@dataclass
class WorkerContext:
    plan: WorkerPlan
    channel: Channel
    recorder: Recorder
    stop: threading.Event  # set by SIGTERM, a closed pipe or an orphaned worker: stop issuing
    go: Event  # set by the parent once every worker is ready
    cpu_at_go_s: float = 0.0  # process CPU when the measured part began


def _op_stream(ctx: WorkerContext, warmup: bool, deadline_ns: int | None) -> Iterator[Op]:
    """This worker's ops in seed order, until its share or the deadline is reached or a stop."""
    plan = ctx.plan
    seed = plan.seed + WARMUP_SEED_OFFSET if warmup else plan.seed
    count = (plan.warmup_ops or None) if warmup else plan.ops  # None: only the deadline ends it
    ops: Iterator[Op] = resolve(plan.config.workload).op_sequence(random.Random(seed), plan.config.read_ratio)
    if count is not None:
        ops = itertools.islice(ops, count)
    for op in ops:
        if ctx.stop.is_set() or (deadline_ns is not None and time.perf_counter_ns() >= deadline_ns):
            return
        yield op


def _deadline(start_ns: int, seconds: float | None) -> int | None:
    return None if not seconds else start_ns + int(seconds * NS_PER_S)


def _raise_nofile_limit() -> None:
    """Many connections need many file descriptors; the common soft limit is 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _engine_options(plan: WorkerPlan) -> dict[str, Any]:
    config = plan.config
    return {"pool_size": plan.pool_size, "max_overflow": config.max_overflow, "pool_timeout": config.pool_timeout_s}


def _server_settings(plan: WorkerPlan) -> dict[str, str]:
    """Session settings for every worker connection: its name, and --op-timeout."""
    settings = {**plan.session_settings, "application_name": f"runner-worker-{plan.worker_id}"}
    if plan.config.op_timeout_s is not None:
        settings["statement_timeout"] = str(max(1, round(plan.config.op_timeout_s * 1000)))  # ms
    return settings


def _record(ctx: WorkerContext, op: Op, start_ns: int, error: BaseException | None) -> None:
    """Count one finished op: latency from just before its session opened to just after it closed."""
    ctx.recorder.record(op.name, time.perf_counter_ns() - start_ns, None if error is None else error_class(error))


def _knobs(ctx: WorkerContext, width: int) -> Knobs:
    config = ctx.plan.config
    if config.rate_per_s is None:
        return Knobs(width)
    return Knobs(
        width=config.max_inflight or 0,
        rate_per_s=config.rate_per_s / config.procs,
        arrival=config.arrival,
        seed=ctx.plan.seed + ARRIVAL_SEED_OFFSET,
        on_drop=lambda op: ctx.recorder.drop(op.name),
        on_lag=ctx.recorder.lag,
    )


def _engine_target(plan: WorkerPlan) -> tuple[URL, dict[str, Any]]:
    """The URL and connect arguments for the worker's driver, session settings passed its way."""
    driver = plan.config.worker_driver
    url, args, dsn_settings = driver_args(plan.dsn, driver)
    settings = {**dsn_settings, **_server_settings(plan)}  # --pg-setting and the runner's win
    if driver == "asyncpg":
        return url, {**args, "server_settings": settings}
    return url, {**args, "options": " ".join(f"-c {k}={v}" for k, v in settings.items())}  # libpq drivers


def _has_warmup(plan: WorkerPlan) -> bool:
    return plan.warmup_ops > 0 or plan.config.warmup_s > 0


def _warmup_stream(ctx: WorkerContext) -> Iterator[Op]:
    return _op_stream(ctx, True, _deadline(time.perf_counter_ns(), ctx.plan.config.warmup_s))


def _end_warmup(ctx: WorkerContext, pool: QueuePool) -> None:
    """Warm-up is reported on its own, as one interval record of phase "warmup"."""
    ctx.channel.send(
        "interval",
        phase="warmup",
        t_ns=time.perf_counter_ns(),
        ops=ctx.recorder.take(),
        pool_checked_out=pool.checkedout(),
        schedule=ctx.recorder.take_schedule(),
    )


# A backend flushes its statistics at most once a second; warm-up's must be in before the
# parent's snapshot at the start barrier, or the measured deltas would include them (PG 15+).
FLUSH_STATS_SQL = "SELECT pg_stat_force_next_flush()"


async def _flush_server_stats(conn: AsyncConnection) -> None:
    try:
        await conn.exec_driver_sql(FLUSH_STATS_SQL)
        await conn.rollback()  # idle again: the backend flushes now
    except DBAPIError:  # before PostgreSQL 15: the function does not exist
        await conn.rollback()


def _flush_server_stats_sync(conn: SyncConnection) -> None:
    try:
        conn.exec_driver_sql(FLUSH_STATS_SQL)
        conn.rollback()
    except DBAPIError:
        conn.rollback()


def _measured_stream(ctx: WorkerContext, start_ns: int) -> Iterator[Op]:
    return _op_stream(ctx, False, _deadline(start_ns, ctx.plan.config.duration_s))


async def _run_async(ctx: WorkerContext) -> tuple[int, int]:
    plan = ctx.plan
    mode = MODES[plan.config.mode]
    url, connect_args = _engine_target(plan)
    engine = create_async_engine(url, connect_args=connect_args, **_engine_options(plan))
    handle = Handle(engine, async_sessionmaker(engine, expire_on_commit=False))
    impls = {op.name: op.impl(plan.config.layer, True) for op in resolve(plan.config.workload).ops}
    data_rng = random.Random(plan.seed + DATA_SEED_OFFSET)
    pool = cast(QueuePool, engine.sync_engine.pool)  # pool_size/max_overflow: always a QueuePool

    async def execute(op: Op, intended_ns: int | None = None) -> None:
        start = time.perf_counter_ns() if intended_ns is None else intended_ns
        error = None
        try:
            await impls[op.name](handle, data_rng)
        except Exception as exc:  # counted by class; the run goes on
            error = exc
        _record(ctx, op, start, error)

    knobs = _knobs(ctx, plan.config.chunk)

    try:
        if _has_warmup(plan):
            await mode.issue(_warmup_stream(ctx), execute, knobs)
            connections = [await engine.connect() for _ in range(pool.checkedin())]
            for conn in connections:
                await _flush_server_stats(conn)
                await conn.close()
            _end_warmup(ctx, pool)
        start_ns = await asyncio.to_thread(_wait_for_go, ctx)
        with _emitting(ctx, pool):
            await mode.issue(_measured_stream(ctx, start_ns), execute, knobs)
            return start_ns, time.perf_counter_ns()
    finally:
        await engine.dispose()


def _run_sync(ctx: WorkerContext) -> tuple[int, int]:
    plan = ctx.plan
    mode = MODES[plan.config.mode]
    url, connect_args = _engine_target(plan)
    engine = create_engine(url, connect_args=connect_args, **_engine_options(plan))
    pool = cast(QueuePool, engine.pool)
    handle = Handle(engine, sessionmaker(engine))
    impls = {op.name: op.impl(plan.config.layer, False) for op in resolve(plan.config.workload).ops}
    data_rng = random.Random(plan.seed + DATA_SEED_OFFSET)

    def execute(op: Op) -> None:
        start = time.perf_counter_ns()
        error = None
        try:
            # Sharing one Random between threads is safe: each draw is one C call under the GIL.
            impls[op.name](handle, data_rng)
        except Exception as exc:
            error = exc
        _record(ctx, op, start, error)

    try:
        if _has_warmup(plan):
            mode.issue(_warmup_stream(ctx), execute, _knobs(ctx, plan.config.threads))
            sync_connections = [engine.connect() for _ in range(pool.checkedin())]
            for sync_conn in sync_connections:
                _flush_server_stats_sync(sync_conn)
                sync_conn.close()
            _end_warmup(ctx, pool)
        start_ns = _wait_for_go(ctx)
        with _emitting(ctx, pool):
            mode.issue(_measured_stream(ctx, start_ns), execute, _knobs(ctx, plan.config.threads))
            return start_ns, time.perf_counter_ns()
    finally:
        engine.dispose()


@contextmanager
def _emitting(ctx: WorkerContext, pool: QueuePool) -> Iterator[None]:
    """Interval records while the measured part runs; the last, partial one when it ends."""
    emitter = Emitter(ctx.channel, ctx.recorder, pool.checkedout, ctx.plan.config.interval_s, ctx.plan.parent_pid, ctx.stop)
    emitter.start()
    try:
        yield
    finally:
        emitter.finish()


def _wait_for_go(ctx: WorkerContext) -> int:
    """Report ready, then wait until the parent lets every worker start at once."""
    ctx.channel.send("start", pid=os.getpid(), planned_ops=ctx.plan.ops)
    while not ctx.go.wait(GO_POLL_S):
        if ctx.stop.is_set() or os.getppid() != ctx.plan.parent_pid:
            ctx.stop.set()
            break
    ctx.cpu_at_go_s = _cpu_s()
    return time.perf_counter_ns()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_main(plan: WorkerPlan, conn: Connection, go: Event) -> None:
    """The process entry point (spawn start method)."""
    # Ctrl-C reaches the whole process group; the parent decides what it means and tells us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    _raise_nofile_limit()
    channel = Channel(conn, plan.worker_id)
    ctx = WorkerContext(plan, channel, Recorder(), stop, go)
    status, reason = "done", None
    start_ns = end_ns = time.perf_counter_ns()
    try:
        if MODES[plan.config.mode].is_async:
            run_loop = uvloop.run if plan.config.loop == "uvloop" else asyncio.run
            start_ns, end_ns = run_loop(_run_async(ctx))
        else:
            start_ns, end_ns = _run_sync(ctx)
        if stop.is_set():
            status, reason = "stopped", "stop requested"
    except Exception as exc:  # outside any op: the worker failed, but what it measured is sent
        status, reason = "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        end_ns = time.perf_counter_ns()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    channel.send(
        "final",
        status=status,
        reason=reason,
        start_ns=start_ns,
        end_ns=end_ns,
        cpu_user_s=usage.ru_utime,
        cpu_sys_s=usage.ru_stime,
        cpu_measured_s=usage.ru_utime + usage.ru_stime - (ctx.cpu_at_go_s or usage.ru_utime + usage.ru_stime),
        max_rss_kb=usage.ru_maxrss,
    )
    conn.close()
