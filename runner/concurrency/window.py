"""window: K ops in flight continuously, the next starting as soon as one finishes (no chunk barrier)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from runner.concurrency.mode import AsyncExecute, Knobs, Mode
from workloads import Op

STAGE_POLL_S = 0.01  # --stages: how often a resting lane looks whether it may run


async def issue(ops: Iterator[Op], execute: AsyncExecute, knobs: Knobs) -> None:
    # The lanes share one iterator: advancing it never awaits, so no two lanes take one op.
    if knobs.lanes_now is None:  # each lane runs ops until the iterator ends, in one execute call
        await asyncio.gather(*(execute(ops) for _ in range(knobs.width)))
        return
    exhausted = False
    lanes_now = knobs.lanes_now

    async def lane(index: int) -> None:
        nonlocal exhausted
        while not exhausted:
            # --stages: lanes beyond the stage's ops in flight rest until it allows them.
            while index >= lanes_now() and not exhausted:
                await asyncio.sleep(STAGE_POLL_S)
            op = next(ops, None)
            if op is None:
                exhausted = True  # the share is done, the deadline passed or a stop: resting lanes end too
                return
            await execute((op,))

    await asyncio.gather(*(lane(i) for i in range(knobs.width)))


MODE = Mode(
    name="window",
    description=__doc__.split(":", 1)[1].strip(),
    is_async=True,
    issue=issue,
    width="chunk",
    stages="concurrency",
)
