"""open: ops issued on a schedule (--rate), whether or not earlier ones finished; latency counts from each op's intended start."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

from runner.concurrency.mode import AsyncExecute, Knobs, Mode
from workloads import Op

NS_PER_S = 1_000_000_000


class Schedule:
    """--rate's intended start times, one op after another: uniform or Poisson gaps at this
    worker's share of the rate, or --stages' changing rate. Shared by both open loops."""

    def __init__(self, knobs: Knobs) -> None:
        self._knobs = knobs
        self._rng = random.Random(knobs.seed)
        self._mean_gap_ns = NS_PER_S / knobs.rate_per_s
        self.intended_ns = time.perf_counter_ns()

    def advance(self) -> bool:
        """The next op's intended start in `intended_ns`; False when the schedule has no more ops
        before its end (--stages)."""
        knobs = self._knobs
        amount = self._rng.expovariate(1.0) if knobs.arrival == "poisson" else 1.0  # ops of schedule to the next
        if knobs.next_intended is not None:  # --stages: a rate that changes over time
            following = knobs.next_intended(self.intended_ns, amount)
            if following is None:
                return False
            self.intended_ns = following
        else:
            self.intended_ns += int(amount * self._mean_gap_ns)
        return True


async def issue(ops: Iterator[Op], execute: AsyncExecute, knobs: Knobs) -> None:
    """Coordinated omission is avoided: a stalled server shows up as latency, not a slower schedule."""
    schedule = Schedule(knobs)
    in_flight: set[asyncio.Task[None]] = set()
    for op in ops:
        if not schedule.advance():
            break
        intended_ns = schedule.intended_ns
        delay_ns = intended_ns - time.perf_counter_ns()
        if delay_ns > 0:
            await asyncio.sleep(delay_ns / NS_PER_S)
        else:  # behind schedule (above capacity): still let the ops in flight run
            await asyncio.sleep(0)
        knobs.on_lag(max(0, time.perf_counter_ns() - intended_ns))
        if knobs.width and len(in_flight) >= knobs.width:
            knobs.on_drop(op)  # --max-inflight: counted, never silently skipped
            continue
        task: asyncio.Task[None] = asyncio.create_task(execute((op,), intended_ns))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight)


MODE = Mode(
    name="open",
    description=__doc__.split(":", 1)[1].strip(),
    is_async=True,
    issue=issue,
    width=None,
    takes_rate=True,
    stages="rate",
)
