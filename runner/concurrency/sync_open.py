"""sync-open: the sync open loop: ops on --rate's schedule to threads that follow the backlog (to --max-inflight); latency from each op's intended start."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from runner.concurrency.mode import Knobs, SyncExecute
from runner.concurrency.openloop import MODE as OPEN
from runner.concurrency.openloop import NS_PER_S, Schedule
from runner.config import DEFAULT_MAX_INFLIGHT
from workloads import Op


def issue(ops: Iterator[Op], execute: SyncExecute, knobs: Knobs) -> None:
    """The async open loop's schedule (runner.concurrency.openloop), in a thread of its own that
    hands each op to a pool of threads: a thread is started only when every started one is busy,
    so the threads follow the backlog; past --max-inflight ops in flight an op is dropped, counted.
    Coordinated omission is avoided as there: a stalled server is latency, not a slower schedule."""
    schedule = Schedule(knobs)
    cap = knobs.width or DEFAULT_MAX_INFLIGHT
    lock = threading.Lock()
    in_flight = 0

    def run(op: Op, intended_ns: int) -> None:
        nonlocal in_flight
        try:
            execute(op, intended_ns)
        finally:
            with lock:
                in_flight -= 1

    with ThreadPoolExecutor(max_workers=cap, thread_name_prefix="sync-open") as pool:
        for op in ops:
            if not schedule.advance():
                break
            intended_ns = schedule.intended_ns
            delay_ns = intended_ns - time.perf_counter_ns()
            if delay_ns > 0:
                time.sleep(delay_ns / NS_PER_S)
            knobs.on_lag(max(0, time.perf_counter_ns() - intended_ns))
            with lock:
                full = in_flight >= cap
                if not full:
                    in_flight += 1
            if full:
                knobs.on_drop(op)  # --max-inflight: counted, never silently skipped
                continue
            pool.submit(run, op, intended_ns)
    # Leaving the block waited for every op in flight.


MODE = dataclasses.replace(OPEN, name="sync-open", description=__doc__.split(":", 1)[1].strip(), is_async=False, issue=issue)
