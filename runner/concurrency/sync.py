"""sync: the psycopg2 baseline, one op after another on one connection, or T threads with T connections."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from runner.concurrency.mode import Knobs, Mode, SyncExecute
from workloads import Op


def issue(ops: Iterator[Op], execute: SyncExecute, knobs: Knobs) -> None:
    width = knobs.width
    if width == 1:
        for op in ops:
            execute(op)
        return
    lock = threading.Lock()  # a generator cannot be advanced from two threads at once

    def next_op() -> Op | None:
        with lock:
            return next(ops, None)

    def drain() -> None:
        while (op := next_op()) is not None:
            execute(op)

    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="sync-op") as pool:
        for future in [pool.submit(drain) for _ in range(width)]:
            future.result()


MODE = Mode(
    name="sync",
    description=__doc__.split(":", 1)[1].strip(),
    is_async=False,
    issue=issue,
    width="threads",
)
