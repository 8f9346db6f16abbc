"""Worker processes: plan them, start them, drain their pipes, stop them, notice their deaths.

The start method is named explicitly: spawn, because the parent runs a sampler thread and
holds SQLAlchemy state that must not be copied into a child by fork.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from typing import cast

from runner.measure.collector import Collector
from runner.measure.records import decode
from runner.worker.body import worker_main
from runner.worker.plan import WorkerPlan

START_METHOD = "spawn"
TICK_S = 0.1
GRACE_S = 10.0  # in-flight ops get this long to finish after a stop, then workers are killed


@dataclass
class _Child:
    process: BaseProcess
    reader: Connection | None  # None once drained to EOF
    exited: bool = False


class Supervisor:
    """Runs the workers of one run to the end and feeds their records to a collector."""

    def __init__(self, plans: list[WorkerPlan], collector: Collector, grace_s: float = GRACE_S) -> None:
        self._plans = plans
        self._collector = collector
        self._grace_s = grace_s
        self._ctx = cast(SpawnContext, multiprocessing.get_context(START_METHOD))
        self._go = self._ctx.Event()
        self._children: list[_Child] = []
        self._stop_deadline: float | None = None
        self.stop_reason: str | None = None
        self.on_go: Callable[[], None] = lambda: None  # called just before the workers are released

    def request_stop(self, reason: str) -> None:
        """Stop issuing ops (SIGTERM to every worker); kill whatever is left after the grace period."""
        if self._stop_deadline is not None:
            return
        self.stop_reason = reason
        self._stop_deadline = time.monotonic() + self._grace_s
        self._go.set()  # a worker still waiting to start sees its stop flag and ends at once
        self._signal_all(signal.SIGTERM)

    def kill_all(self) -> None:
        """A second Ctrl-C: end every worker now."""
        self._signal_all(signal.SIGKILL)

    def _signal_all(self, signum: int) -> None:
        for child in self._children:
            if not child.exited and child.process.pid is not None:
                try:
                    os.kill(child.process.pid, signum)
                except ProcessLookupError:
                    pass

    def run(self, on_tick: Callable[[], None] = lambda: None) -> None:
        for plan in self._plans:
            reader, writer = self._ctx.Pipe(duplex=False)
            process = self._ctx.Process(
                target=worker_main, args=(plan, writer, self._go), name=f"runner-worker-{plan.worker_id}"
            )
            process.start()
            writer.close()  # only the child holds the write end: its exit means EOF here
            self._children.append(_Child(process, reader))
        try:
            self._drain(on_tick)
        finally:
            self.kill_all()  # nothing outlives the run, whatever happened above
            for worker_id, child in enumerate(self._children):
                child.process.join()
                self._collector.mark_died(worker_id, child.process.exitcode)

    def _drain(self, on_tick: Callable[[], None]) -> None:
        while any(c.reader is not None or not c.exited for c in self._children):
            waitables: list[object] = [c.reader for c in self._children if c.reader is not None]
            waitables += [c.process.sentinel for c in self._children if not c.exited]
            ready = wait(waitables, timeout=TICK_S)  # type: ignore[arg-type]
            for child in self._children:
                if child.reader is not None and child.reader in ready:
                    self._read(child)
                if not child.exited and child.process.sentinel in ready:
                    child.exited = True
                    child.process.join()
            self._check_workers()
            on_tick()

    def _read(self, child: _Child) -> None:
        assert child.reader is not None
        try:
            line = child.reader.recv_bytes()
        except (EOFError, OSError):
            child.reader.close()
            child.reader = None
            return
        self._collector.add(decode(line))

    def _check_workers(self) -> None:
        if not self._go.is_set() and self._collector.all_ready:
            self.on_go()
            self._collector.go_ns = time.perf_counter_ns()
            self._go.set()  # every worker is ready (and warmed up): start together
        for worker_id, child in enumerate(self._children):
            if child.exited and child.reader is None:
                state = self._collector.workers[worker_id]
                if not state.finished or state.status == "failed":
                    self._collector.mark_died(worker_id, child.process.exitcode)
                    self.request_stop(f"worker {worker_id} {state.status}: {state.reason}")
        if self._stop_deadline is not None and time.monotonic() > self._stop_deadline:
            self.kill_all()
