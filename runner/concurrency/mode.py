"""A mode's interface: the Mode record (what it can do) and the Knobs it is issued with."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from workloads import Op

AsyncExecute = Callable[..., Coroutine[Any, Any, None]]  # (ops: Iterable[Op], intended_ns: int | None = None)
SyncExecute = Callable[..., None]  # (op: Op, intended_ns: int | None = None)


@dataclass(frozen=True)
class Knobs:
    width: int  # ops in flight: --chunk (async), --threads (sync), --max-inflight (open; 0: no cap)
    rate_per_s: float = 0.0  # open loop: this worker's share of --rate
    arrival: str = "uniform"  # open loop: "uniform" or "poisson" gaps
    seed: int = 0  # open loop: the RNG for Poisson gaps
    on_drop: Callable[[Op], None] = lambda op: None  # open loop: an op --max-inflight refused
    on_lag: Callable[[int], None] = lambda lag_ns: None  # open loop: how late an op was issued
    # --stages: the open loop's next intended perf_counter_ns time after one, `amount` ops of
    # schedule later (None: past the last step), and window mode's lanes allowed to run now.
    # None: the fixed --rate / --chunk.
    next_intended: Callable[[int, float], int | None] | None = None
    lanes_now: Callable[[], int] | None = None


Width = Literal["chunk", "threads"]


@dataclass(frozen=True)
class Mode:
    """A way of issuing ops, and what it can do: the run's rules ask these, never a mode's name."""

    name: str
    description: str
    is_async: bool
    issue: Callable[[Iterator[Op], Any, Knobs], Any]
    # The option that sets its ops in flight per worker ("chunk" or "threads"), each a lane that
    # --think pauses; None: as many as it has ops (or as the rate's backlog, up to --max-inflight).
    width: Width | None
    takes_rate: bool = False  # issues --rate's schedule (the open loop)
    runs_for_duration: bool = True  # issues ops as it goes, so --duration can bound it
    stages: str | None = None  # the --stages targets it follows: "rate" or "concurrency"
    patched: bool = False  # its worker process is gevent-patched before it loads anything (runner.worker.green)

    def concurrency(self, share: int, chunk: int, threads: int) -> int:
        """Ops in flight at once for a worker with `share` ops."""
        if self.width is None:
            return share
        return min(share, chunk if self.width == "chunk" else threads)
