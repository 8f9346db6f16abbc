"""chunked: gather K ops at a time, chunk after chunk (the seed's story two, `asyncio.gather`)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

from runner.concurrency.mode import AsyncExecute, Knobs, Mode
from workloads import Op


async def issue(ops: Iterator[Op], execute: AsyncExecute, knobs: Knobs) -> None:
    width = knobs.width
    while chunk := list(itertools.islice(ops, width)):
        # The chunk barrier is the point of this mode: the slowest op holds back the next chunk.
        await asyncio.gather(*(execute((op,)) for op in chunk))


MODE = Mode(
    name="chunked",
    description=__doc__.split(":", 1)[1].strip(),
    is_async=True,
    issue=issue,
    width="chunk",
)
