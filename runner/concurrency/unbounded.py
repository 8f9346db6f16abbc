"""async: every op of the worker created as a task up front, then wait for all (the seed's story one)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from runner.concurrency.mode import AsyncExecute, Knobs, Mode
from workloads import Op


async def issue(ops: Iterator[Op], execute: AsyncExecute, knobs: Knobs) -> None:
    tasks: set[asyncio.Task[None]] = set()
    for op in ops:
        tasks.add(asyncio.create_task(execute((op,))))
        if op.kind == "write":
            # As the seed did: yield after each write task so the loop starts work while creating.
            await asyncio.sleep(0)
    if tasks:
        await asyncio.wait(tasks)


MODE = Mode(
    name="async",
    description=__doc__.split(":", 1)[1].strip(),
    is_async=True,
    issue=issue,
    width=None,
    runs_for_duration=False,
)
