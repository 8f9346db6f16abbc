"""The local transport: one spawned process per worker on this machine, one pipe each.

The start method is named explicitly: spawn, because the parent runs a sampler thread and holds
SQLAlchemy state that must not be copied into a child by fork. The start barrier is one
multiprocessing Event; stop is SIGTERM, kill is SIGKILL, each to a pid this transport started.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any, cast

from runner.concurrency import MODES
from runner.transport import Ended, Event, Line
from runner.worker.green import worker_main as green_main
from runner.worker.plan import WorkerPlan
from runner.worker.process import worker_main

START_METHOD = "spawn"


@dataclass
class _Child:
    process: BaseProcess
    reader: Connection | None  # None once drained to EOF
    exited: bool = False
    reported: bool = False  # Ended already handed out


class LocalTransport:
    silence_allowance_s = 2.0  # a pipe delivers at once: 2 s is a worker's own stall

    def __init__(self) -> None:
        self._ctx = cast(SpawnContext, multiprocessing.get_context(START_METHOD))
        self._go = self._ctx.Event()
        self._children: list[_Child] = []

    def start(self, plans: list[WorkerPlan]) -> None:
        for plan in plans:
            reader, writer = self._ctx.Pipe(duplex=False)
            target: Any = worker_main
            args: tuple[Any, ...] = (plan, writer, self._go)
            if MODES[plan.config.mode].patched:  # gevent: patched before the plan (and the runner) is unpickled
                target, args = green_main, (pickle.dumps(plan), writer, self._go)
            process = self._ctx.Process(target=target, args=args, name=f"runner-worker-{plan.worker_id}")
            process.start()
            writer.close()  # only the child holds the write end: its exit means EOF here
            self._children.append(_Child(process, reader))

    def poll(self, timeout_s: float) -> list[Event]:
        waitables: list[Any] = [c.reader for c in self._children if c.reader is not None]
        waitables += [c.process.sentinel for c in self._children if not c.exited]
        ready = wait(waitables, timeout=timeout_s) if waitables else []
        events: list[Event] = []
        for worker, child in enumerate(self._children):
            if child.reader is not None and child.reader in ready:
                try:
                    events.append(Line(worker, child.reader.recv_bytes()))
                except (EOFError, OSError):
                    child.reader.close()
                    child.reader = None
            if not child.exited and child.process.sentinel in ready:
                child.exited = True
                child.process.join()
            if child.exited and child.reader is None and not child.reported:
                child.reported = True  # the pipe is drained and the process is gone
                events.append(Ended(worker, child.process.exitcode))
        return events

    def release(self) -> None:
        self._go.set()

    def stop(self, worker: int | None = None) -> None:
        if worker is None:
            self._go.set()  # a worker still waiting to start sees its stop flag and ends at once
        self._signal(signal.SIGTERM, worker)

    def kill(self, worker: int | None = None) -> None:
        self._signal(signal.SIGKILL, worker)

    def _signal(self, signum: int, worker: int | None) -> None:
        children = self._children if worker is None else [self._children[worker]]
        for child in children:
            if not child.exited and child.process.pid is not None:
                try:
                    os.kill(child.process.pid, signum)
                except ProcessLookupError:
                    pass

    def close(self) -> None:
        self.kill()  # nothing outlives the run, whatever happened
        for child in self._children:
            child.process.join()
            if child.reader is not None:
                child.reader.close()

    def exitcode(self, worker: int) -> int | None:
        return self._children[worker].process.exitcode

    def describe(self) -> dict[str, Any] | None:
        return None
