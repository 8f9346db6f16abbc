"""window: K ops in flight continuously, the next starting as soon as one finishes (no chunk barrier)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from runner.concurrency import AsyncExecute, Knobs, Mode, register
from workloads import Op


async def issue(ops: Iterator[Op], execute: AsyncExecute, knobs: Knobs) -> None:
    width = knobs.width
    async def lane() -> None:
        # The lanes share one iterator: advancing it never awaits, so no two lanes take one op.
        for op in ops:
            await execute(op)

    await asyncio.gather(*(lane() for _ in range(width)))


MODE = register(
    Mode(
        name="window",
        description=__doc__.split(":", 1)[1].strip(),
        is_async=True,
        issue=issue,
        concurrency=lambda share, chunk, threads: min(share, chunk),
    )
)
