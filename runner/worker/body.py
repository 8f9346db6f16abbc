"""One worker's whole life, whatever transport carries it: engine, preflight, warm-up, the start
barrier, the op loop, the final record.

The transport gives the body a channel to write records to, a `go` event (the start barrier)
and a `stop` event (finish in-flight ops, then end); the rest is the same on every transport.
Everything stateful is made here, inside the worker: pooled connections must not cross a process
boundary and an AsyncEngine must not be shared between event loops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import random
import resource
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

import uvloop

from runner.concurrency import MODES, Knobs
from runner.concurrency.mode import AsyncExecute, SyncExecute
from runner.concurrency.stages import next_arrival, target_at
from runner.logs import configure
from runner.measure.status import WorkerStatus
from runner.spec import RunSpec
from runner.worker.anatomy import CURRENT, NO_OP, OpCell, OpTrace, ThreadProbe, probe_loop, trace_factory
from runner.worker.backend import AsyncBackend, Backend
from runner.worker.channel import Channel, Emitter
from runner.worker.engine import AsyncEngineBackend, PreflightError, SyncEngineBackend, check_descriptors, secrets
from runner.worker.plan import WorkerPlan
from runner.worker.raw import AsyncRawBackend, SyncRawBackend
from runner.worker.recorder import FOLD_EVERY, Recorder
from runner.worker.retry import Retrier
from workloads import Handle, Op, resolve
from workloads.keys import Keys, KeySpec

log = logging.getLogger(__name__)  # the worker's transitions at DEBUG (runner.logs)
GO_POLL_S = 0.2
STOP_POLL_S = 0.05
NS_PER_S = 1_000_000_000
DATA_SEED_OFFSET = 1  # op data values have their own RNG, so they never shift the op sequence
WARMUP_SEED_OFFSET = 2  # and so does warm-up: the measured sequence is the same without it
ARRIVAL_SEED_OFFSET = 3
KEYS_SEED_OFFSET = 4  # keys too: --keys zipf picks other rows, never other ops
THINK_SEED_OFFSET = 5
RETRY_SEED_OFFSET = 6
T = TypeVar("T")
# What every op of a worker runs with: implementations by op name, the context, the trace maker,
# --think's pauses and --retries' retrier.
OpKit = tuple[dict[str, Callable[..., Any]], Handle, Callable[[], OpTrace | None], Callable[[], float] | None, Retrier | None]


class Waitable(Protocol):
    """The start barrier as the transport provides it (a multiprocessing or threading Event)."""

    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass
class WorkerContext:
    plan: WorkerPlan
    channel: Channel
    recorder: Recorder
    stop: threading.Event  # set by the transport (SIGTERM, stop()), a closed channel or an orphaned worker
    go: Waitable  # set by the parent once every worker is ready
    node: str | None = None  # the cluster's node id, where there is one
    go_ns: int = 0  # perf_counter_ns() when released; 0 before
    cpu_at_go_s: float = 0.0  # process CPU when the measured part began
    cancelling: bool = False  # the grace period after a stop ran out: in-flight ops are cancelled
    loop: str | None = None  # the event loop's class, for the report
    inflight: set[asyncio.Task[Any]] = field(default_factory=set)  # tasks running ops (execute), to cancel
    ops_end_ns: int = 0  # with --think: perf_counter_ns() when the latest op ended (before its pause)

    def since_go_ns(self) -> int:
        return time.perf_counter_ns() - self.go_ns if self.go_ns else 0


def _op_stream(ctx: WorkerContext, warmup: bool, deadline_ns: int | None) -> Iterator[Op]:
    """This worker's ops in seed order, until its share or the deadline is reached or a stop."""
    plan = ctx.plan
    seed = plan.seed + WARMUP_SEED_OFFSET if warmup else plan.seed
    count = (plan.warmup_ops or None) if warmup else plan.ops  # None: only the deadline ends it
    ops: Iterator[Op] = plan.config.workload_ops.op_sequence(random.Random(seed), plan.config.read_ratio)
    if count is not None:
        ops = itertools.islice(ops, count)
    for op in ops:
        if ctx.stop.is_set() or (deadline_ns is not None and time.perf_counter_ns() >= deadline_ns):
            return
        yield op


def _deadline(start_ns: int, seconds: float | None) -> int | None:
    return None if not seconds else start_ns + int(seconds * NS_PER_S)


def _stage_s(ctx: WorkerContext, at_ns: int) -> float:
    """Seconds since the release at a perf_counter_ns time (0 before it: warm-up runs the first stage)."""
    return max(0.0, (at_ns - ctx.go_ns) / NS_PER_S) if ctx.go_ns else 0.0


def _knobs(ctx: WorkerContext, width: int) -> Knobs:
    config = ctx.plan.config
    if config.stages and config.rate_per_s is None:  # ops in flight per stage (window)
        return Knobs(width, lanes_now=lambda: round(target_at(config.stages, _stage_s(ctx, time.perf_counter_ns()))))
    if config.rate_per_s is None:
        return Knobs(width)
    next_intended = None
    if config.stages:

        def next_intended(at_ns: int, amount: float) -> int | None:
            """This worker's share of the steps' schedule, from its release (in warm-up every
            gap is the schedule's first one)."""
            start_ns = ctx.go_ns or at_ns
            following = next_arrival(config.stages, (at_ns - start_ns) / NS_PER_S, amount, 1 / config.procs)
            return None if following is None else start_ns + int(following * NS_PER_S)

    return Knobs(
        next_intended=next_intended,
        width=config.inflight_cap,
        rate_per_s=config.rate_per_s / config.procs,
        arrival=config.arrival,
        seed=ctx.plan.seed + ARRIVAL_SEED_OFFSET,
        on_drop=lambda op: ctx.recorder.drop(op.name),
        on_lag=ctx.recorder.lag,
    )


def _pause_s(ctx: WorkerContext, seconds: float) -> float:
    """A --think pause, cut short at --duration's end: past it a lane only learns that there is
    no next op, so pausing on would only hold the run open (a 2 s run with 10 s pauses took 10 s)."""
    ctx.ops_end_ns = time.perf_counter_ns()
    deadline_ns = _measured_deadline(ctx) if ctx.go_ns else None  # warm-up: before the release
    return seconds if deadline_ns is None else max(0.0, min(seconds, (deadline_ns - ctx.ops_end_ns) / NS_PER_S))


def _measured_end(ctx: WorkerContext) -> int:
    """The end of the measured part since the release: now (a --duration run's pauses end at its
    end), or with --think and a count of ops the end of the last op: the pause after it is no
    part of the run (wall_s counted it)."""
    config = ctx.plan.config
    if config.think_s and config.duration_s is None and ctx.ops_end_ns > ctx.go_ns:
        return ctx.ops_end_ns - ctx.go_ns
    return ctx.since_go_ns()


def _has_warmup(plan: WorkerPlan) -> bool:
    return plan.warmup_ops > 0 or plan.config.warmup_s > 0


def _warmup_stream(ctx: WorkerContext) -> Iterator[Op]:
    return _op_stream(ctx, True, _deadline(time.perf_counter_ns(), ctx.plan.config.warmup_s))


def _measured_deadline(ctx: WorkerContext) -> int | None:
    return _deadline(ctx.go_ns, ctx.plan.config.duration_s)


def _end_warmup(ctx: WorkerContext, checked_out: Callable[[], int]) -> None:
    """Warm-up is reported on its own, as one interval record of phase "warmup"."""
    log.debug("worker %d: warm-up done", ctx.plan.worker_id)
    ctx.recorder.take_exemplars()  # the slowest ops are the measured part's
    ctx.channel.send(
        "interval",
        phase="warmup",
        t_ns=0,
        ops=ctx.recorder.take(),
        pool_checked_out=checked_out(),
        schedule=ctx.recorder.take_schedule(),
        tick_lag=ctx.recorder.take_tick_lag(),
    )


async def _cancel_after_grace(ctx: WorkerContext) -> None:
    """Once a stop is asked for (or --duration is up), in-flight ops get --grace to finish; then
    they are cancelled and counted as unfinished, so a hung op cannot hold the worker forever."""
    deadline_ns = _measured_deadline(ctx)
    while not ctx.stop.is_set() and (deadline_ns is None or time.perf_counter_ns() < deadline_ns):
        await asyncio.sleep(STOP_POLL_S)
    await asyncio.sleep(ctx.plan.config.grace_s)
    log.debug("worker %d: grace over, cancelling %d ops in flight", ctx.plan.worker_id, len(ctx.inflight))
    ctx.cancelling = True
    for task in list(ctx.inflight):
        task.cancel()


class WorkerIO(Protocol):
    """What differs between the sync mode and the async ones, and nothing else: the layer's
    backend in its form, how a step of I/O is run, the op's hot path, and what runs beside the
    ops while they are measured. The lifecycle (`_lifecycle`) is written once, over these."""

    def backend(self, plan: WorkerPlan) -> Any: ...  # a Backend, or an AsyncBackend

    def call(self, step: Callable[[], Any]) -> Awaitable[Any]: ...  # the step's I/O, done

    def blocking(self, step: Callable[[], Any]) -> Awaitable[Any]: ...  # a step that blocks its thread

    def execute(self, ctx: WorkerContext, kit: OpKit) -> Any: ...  # the mode's execute, for these ops

    def beside(self, ctx: WorkerContext) -> AbstractContextManager[None]: ...  # while the measured ops run

    def width(self, config: RunSpec) -> int: ...  # the option that sets its lanes


async def _lifecycle(ctx: WorkerContext, io: WorkerIO) -> int:
    """The worker from its preflight to the end of its measured part, for either kind of loop:
    preflight, warm-up (reported on its own), the start barrier, the measured ops, the backend
    closed; returns the end of the measured part since the release. Every step of I/O goes
    through `io`, so this sequence is the same for both (and holds no I/O of its own)."""
    plan = ctx.plan
    mode = MODES[plan.config.mode]
    backend = io.backend(plan)
    try:
        settings: dict[str, str] = await io.call(backend.preflight)
        execute = io.execute(ctx, _op_kit(plan, backend.handle, mode.is_async))
        knobs = _knobs(ctx, io.width(plan.config))
        if _has_warmup(plan):
            await io.call(partial(mode.issue, _warmup_stream(ctx), execute, knobs))
            await io.call(backend.flush_stats)
            _end_warmup(ctx, backend.checked_out)
        await io.blocking(partial(_wait_for_go, ctx, settings))
        with _emitting(ctx, backend.checked_out), io.beside(ctx):
            await io.call(partial(mode.issue, _op_stream(ctx, False, _measured_deadline(ctx)), execute, knobs))
            return _measured_end(ctx)
    finally:
        await io.call(backend.close)


class AsyncWorkerIO:
    """The async modes, on an event loop: steps awaited, the barrier waited for in a thread."""

    def backend(self, plan: WorkerPlan) -> AsyncBackend:
        return AsyncRawBackend(plan) if plan.config.layer == "raw" else AsyncEngineBackend(plan)

    async def call(self, step: Callable[[], Awaitable[Any]]) -> Any:
        return await step()

    async def blocking(self, step: Callable[[], Any]) -> Any:
        return await asyncio.to_thread(step)

    def width(self, config: RunSpec) -> int:
        return config.chunk

    @contextmanager
    def beside(self, ctx: WorkerContext) -> Iterator[None]:
        """The grace period's watcher and the event loop's lag probe."""
        watcher = asyncio.create_task(_cancel_after_grace(ctx))
        probe = asyncio.create_task(probe_loop(ctx.recorder))
        try:
            yield
        finally:
            watcher.cancel()
            probe.cancel()

    def execute(self, ctx: WorkerContext, kit: OpKit) -> AsyncExecute:
        impls, handle, new_trace, think, retrier = kit
        data_rng = handle.rng
        loop = asyncio.get_running_loop()
        loop_class = type(loop)
        ctx.loop = f"{loop_class.__module__}.{loop_class.__qualname__}"
        current_task = asyncio.current_task  # given the loop: no get_running_loop() (a getpid()) per op

        async def execute(ops: Iterable[Op], intended_ns: int | None = None) -> None:
            """Each op in turn, timed and recorded; never raises. A window lane passes the shared
            op stream and runs its whole part in this one coroutine: a coroutine (and a frame for
            every resume) per op was a measurable part of the harness's cost."""
            recorder, inflight = ctx.recorder, ctx.inflight
            kept = recorder.kept
            keep = kept.append
            task = current_task(loop)
            assert task is not None
            cell = OpCell()  # this task's ops' traces, one at a time (see OpCell)
            cell_token = CURRENT.set(cell)  # the task's own context: ops in other tasks never see it
            # Registered for the whole call, not per op: a window lane is never between ops at an
            # await but in its think time, where a cancel loses nothing either.
            inflight.add(task)
            try:
                for op in ops:
                    start = time.perf_counter_ns()
                    if intended_ns is not None and intended_ns < start:  # the open loop: from when it was due
                        start = intended_ns  # (a timer that woke early never makes a latency negative)
                    if ctx.cancelling:  # issued after the grace period ran out: never run
                        recorder.unfinished(op.name)
                        continue
                    error = None
                    retried = 0
                    cell.trace = new_trace()
                    try:
                        if retrier is None:
                            await impls[op.name](handle, data_rng)
                        else:  # the latency counts from the first try
                            retried, error = await retrier.call_async(partial(impls[op.name], handle, data_rng), partial(recorder.retry, op.name))
                    except asyncio.CancelledError:  # only _cancel_after_grace cancels an op
                        recorder.unfinished(op.name)
                        return
                    except Exception as exc:  # counted by class, with a sample message; the run goes on
                        error = exc
                    finally:
                        trace, cell.trace = cell.trace, None  # the op's own, if its pool wait made one
                    if error is None:  # Recorder.record's hot path, written out (see Recorder.kept)
                        keep((op.name, time.perf_counter_ns() - start, trace, retried))
                        if len(kept) >= FOLD_EVERY:
                            recorder.fold()
                    else:
                        recorder.record(op.name, time.perf_counter_ns() - start, error, trace, retried)
                    if think is not None:  # after the op is recorded: the pause is never latency
                        try:
                            await asyncio.sleep(_pause_s(ctx, think()))
                        except asyncio.CancelledError:  # the grace period ran out while it paused: nothing lost
                            return
            finally:
                inflight.discard(task)
                CURRENT.reset(cell_token)

        return execute


class SyncWorkerIO:
    """The sync mode, in threads: every step is a plain call, so the lifecycle's coroutine runs
    to its end without ever suspending (`_complete`)."""

    def backend(self, plan: WorkerPlan) -> Backend:
        return SyncRawBackend(plan) if plan.config.layer == "raw" else SyncEngineBackend(plan)

    async def call(self, step: Callable[[], Any]) -> Any:
        return step()

    async def blocking(self, step: Callable[[], Any]) -> Any:
        return step()

    def width(self, config: RunSpec) -> int:
        return config.threads

    @contextmanager
    def beside(self, ctx: WorkerContext) -> Iterator[None]:
        """The lag probe, in a thread of its own (no grace watcher: a thread cannot be cancelled)."""
        probe = ThreadProbe(ctx.recorder)
        probe.start()
        try:
            yield
        finally:
            probe.stop()

    def execute(self, ctx: WorkerContext, kit: OpKit) -> SyncExecute:
        impls, handle, new_trace, think, retrier = kit
        data_rng = handle.rng
        recorder = ctx.recorder

        def execute(op: Op, intended_ns: int | None = None) -> None:
            start = time.perf_counter_ns()
            if intended_ns is not None and intended_ns < start:  # the open loop: from when it was due
                start = intended_ns
            error = None
            retried = 0
            cell = CURRENT.get()
            if cell is NO_OP:  # the thread's first op: its cell stays for the rest (see OpCell)
                cell = OpCell()
                CURRENT.set(cell)  # a thread's own context: no other thread's ops see it
            cell.trace = new_trace()
            try:
                # Sharing one Random between threads is safe: each draw is one C call under the GIL.
                if retrier is None:
                    impls[op.name](handle, data_rng)
                else:
                    impl = impls[op.name]
                    retried, error = retrier.call_sync(lambda: impl(handle, data_rng), lambda e: ctx.recorder.retry(op.name, e))
            except Exception as exc:
                error = exc
            finally:
                trace, cell.trace = cell.trace, None  # the op's own, if its pool wait made one
            # Through record(), not written out as the async lane does: one call per op more
            # (~700 instructions, 0.3 % of a psycopg2 tpcb op) for one copy of that path.
            recorder.record(op.name, time.perf_counter_ns() - start, error, trace, retried)
            if think is not None:  # a stop ends the pause at once
                ctx.stop.wait(_pause_s(ctx, think()))

        return execute


def _complete(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (the lifecycle on SyncWorkerIO) to its end, with no event loop."""
    try:
        coroutine.send(None)
    except StopIteration as end:
        return end.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("the sync lifecycle suspended: a step awaited real I/O")


def _op_kit(plan: WorkerPlan, backend_handle: Handle, is_async: bool) -> OpKit:
    """What every op of the worker runs with, made once for either kind of loop: the ops'
    implementations for this layer and kind, the context, the trace maker, --think and --retries."""
    impls = {op.name: op.impl(plan.config.layer, is_async) for op in plan.config.workload_ops.ops}
    retrier = Retrier(plan.config.retries, random.Random(plan.seed + RETRY_SEED_OFFSET)) if plan.config.retries else None
    return impls, _context(backend_handle, plan), trace_factory(plan.config), _thinker(plan), retrier


def _thinker(plan: WorkerPlan) -> Callable[[], float] | None:
    """--think: the next pause in seconds, fixed or exponential (its own RNG: it never shifts the
    op sequence or the data); None without --think."""
    config = plan.config
    if not config.think_s:
        return None
    if config.think_dist == "fixed":
        return lambda: config.think_s
    rng = random.Random(plan.seed + THINK_SEED_OFFSET)
    return lambda: rng.expovariate(1.0 / config.think_s)


def _context(handle: Handle, plan: WorkerPlan) -> Handle:
    """What every op is given: the backend's engine or connections, and the worker's own RNG for
    data values, key picker (--keys) and id."""
    keys = Keys(KeySpec.parse(plan.config.keys), random.Random(plan.seed + KEYS_SEED_OFFSET), plan.table_rows)
    scale = plan.config.scale or resolve(plan.config.workload).default_scale or 0
    return dataclasses.replace(handle, rng=random.Random(plan.seed + DATA_SEED_OFFSET), keys=keys, worker_id=plan.worker_id, scale=scale)


@contextmanager
def _emitting(ctx: WorkerContext, checked_out: Callable[[], int]) -> Iterator[None]:
    """Interval records while the measured part runs; the last, partial one when it ends."""
    emitter = Emitter(ctx.channel, ctx.recorder, checked_out, ctx.plan.config.interval_s, ctx.since_go_ns, ctx.stop, partial(_measured_end, ctx))
    emitter.start()
    try:
        yield
    finally:
        emitter.finish()


def _wait_for_go(ctx: WorkerContext, settings: dict[str, str]) -> None:
    """Report ready, then wait until the parent lets every worker start at once."""
    ctx.channel.send(
        "start",
        pid=os.getpid(),
        host=socket.gethostname(),
        node=ctx.node,
        planned_ops=ctx.plan.ops,
        settings=settings,
        loop=ctx.loop,
    )
    log.debug("worker %d: ready, waiting for the release", ctx.plan.worker_id)
    while not ctx.go.wait(GO_POLL_S):
        if ctx.stop.is_set():
            break
    log.debug("worker %d: %s", ctx.plan.worker_id, "stopped before the release" if ctx.stop.is_set() else "released")
    ctx.go_ns = time.perf_counter_ns()
    ctx.cpu_at_go_s = _cpu_s()
    ctx.channel.send("go", wall_ns=time.time_ns())


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_loop(main: Coroutine[Any, Any, T], loop: str) -> T:
    """Run `main` on a loop built explicitly, never the policy's: a Ray worker installs uvloop's
    policy at start-up, so asyncio.run there would silently be uvloop."""
    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.SelectorEventLoop
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(main)
    event_loop = factory()  # pragma: no cover - Python 3.10
    try:
        asyncio.set_event_loop(event_loop)
        return event_loop.run_until_complete(main)
    finally:
        event_loop.run_until_complete(event_loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        event_loop.close()


def run_worker(plan: WorkerPlan, channel: Channel, go: Waitable, stop: threading.Event, node: str | None = None) -> None:
    """The worker from its first connection to its final record; never raises."""
    configure(plan.config.debug)
    log.debug("worker %d: preflight (mode %s, %s ops)", plan.worker_id, plan.config.mode, plan.ops if plan.ops is not None else "until the duration")
    ctx = WorkerContext(plan, channel, Recorder(secrets(plan), plan.config.exemplars), stop, go, node)
    status, reason, end_ns = WorkerStatus.DONE, None, 0
    try:
        # In the try: loading the workload here may fail, and that is the worker's failure, reported.
        ctx.recorder.outcomes = {op.name: op.outcomes for op in plan.config.workload_ops.ops if op.outcomes}
        check_descriptors(plan)
        if MODES[plan.config.mode].is_async:
            end_ns = run_loop(_lifecycle(ctx, AsyncWorkerIO()), plan.config.loop)
        else:
            end_ns = _complete(_lifecycle(ctx, SyncWorkerIO()))
        if stop.is_set():
            status, reason = WorkerStatus.STOPPED, "stop requested"
    except PreflightError as exc:  # before the start barrier: the run ends before it starts
        status, reason = WorkerStatus.REFUSED, str(exc)
    except Exception as exc:  # outside any op: the worker failed, but what it measured is sent
        status, reason = WorkerStatus.FAILED, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        end_ns = ctx.since_go_ns()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    log.debug("worker %d: final (%s%s)", plan.worker_id, status, f": {reason}" if reason else "")
    channel.send(
        "final",
        status=status,
        reason=reason,
        end_ns=end_ns,
        cpu_user_s=usage.ru_utime,
        cpu_sys_s=usage.ru_stime,
        cpu_measured_s=usage.ru_utime + usage.ru_stime - (ctx.cpu_at_go_s or usage.ru_utime + usage.ru_stime),
        max_rss_kb=usage.ru_maxrss,
        exemplars=ctx.recorder.take_exemplars(),
    )
