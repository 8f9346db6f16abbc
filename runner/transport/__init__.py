"""How workers are planned, started and heard from: plans, pool sizes, the supervisor, transports.

A transport carries one run's workers: it starts them where they run, brings their records back
as they arrive, and says when a worker's stream ended or the worker was lost. The supervisor
keeps every rule (start barrier, grace, stop-all on the first loss, the watchdog) and talks only
to this interface, so the same rules hold for local processes and for Ray actors on many hosts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from runner.worker.plan import WorkerPlan


@dataclass(frozen=True)
class Line:
    """One record line from a worker, as it was written."""

    worker: int
    data: bytes


@dataclass(frozen=True)
class Ended:
    """A worker's stream ended (its final record, if any, came before this)."""

    worker: int
    exitcode: int | None = None  # a local process's exit code; None where the transport cannot tell


@dataclass(frozen=True)
class Lost:
    """A worker that went away without ending its stream: killed, crashed, its host gone."""

    worker: int
    reason: str
    host: str | None = None


@dataclass(frozen=True)
class Merged:
    """A node aggregator's merged intervals (runner.transport.aggregate), for these workers."""

    workers: tuple[int, ...]
    data: bytes


Event = Line | Ended | Lost | Merged


class Transport(Protocol):
    """One instance per run."""

    # How long past its interval schedule a worker's records may take to arrive before the
    # watchdog calls it unresponsive (runner.transport.supervisor).
    silence_allowance_s: float

    def start(self, plans: list[WorkerPlan]) -> None:
        """Place and launch every planned worker."""

    def poll(self, timeout_s: float) -> list[Event]:
        """What arrived since the last call, waiting up to `timeout_s` for the first of it."""

    def release(self) -> None:
        """The start barrier: let every ready worker begin."""

    def stop(self, worker: int | None = None) -> None:
        """Graceful: stop issuing, finish (or after --grace cancel) in-flight ops, send final."""

    def kill(self, worker: int | None = None) -> None:
        """Hard: end the worker(s) now."""

    def close(self) -> None:
        """Free everything the transport made; nothing it started outlives this."""

    def describe(self) -> dict[str, Any] | None:
        """`.cluster` in the report: engine, version, address, nodes; None for local processes."""
