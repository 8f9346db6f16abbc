"""Ways of issuing a worker's ops, one module each, registered by name (`--mode`).

An async mode is a coroutine function `issue(ops, execute, width)`; a sync mode is a plain
function of the same shape. `ops` is an iterator that ends when the worker's share is done or
a stop was requested; `execute(op)` runs, times and records one op and never raises; `width`
is the mode's concurrency knob (`--chunk` for async modes, `--threads` for sync).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from workloads import Op

AsyncExecute = Callable[[Op], Awaitable[None]]
SyncExecute = Callable[[Op], None]


@dataclass(frozen=True)
class Mode:
    name: str
    description: str
    is_async: bool
    issue: Callable[[Iterator[Op], Any, int], Any]
    # How many ops this mode has in flight at once for a worker with `share` ops.
    concurrency: Callable[[int, int, int], int]  # (share, chunk, threads) -> ops in flight


MODES: dict[str, Mode] = {}


def register(mode: Mode) -> Mode:
    MODES[mode.name] = mode
    return mode


from runner.concurrency import chunked, sync, unbounded  # noqa: E402,F401  (they register)
