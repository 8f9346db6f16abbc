"""Ways of issuing a worker's ops, one module each, registered by name (`--mode`).

An async mode is a coroutine function `issue(ops, execute, knobs)`; a sync mode is a plain
function of the same shape. `ops` is an iterator that ends when the worker's share is done or
a stop was requested; `execute(ops, intended_ns=None)` runs, times and records the given ops one
after another (one op, or a window lane's share of a shared iterator) and never raises (latency
counts from `intended_ns` when given: the open loop's schedule); a sync mode's `execute(op)` runs
one. `knobs` holds the mode's settings (`width` is `--chunk` for async modes, `--threads` for
sync).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping

from runner.concurrency.mode import AsyncExecute, Knobs, Mode, SyncExecute, Width
from runner.config import DEFAULT_MODE

__all__ = ["DEFAULT_MODE", "MODES", "MODULES", "AsyncExecute", "Knobs", "Mode", "SyncExecute", "Width", "modes_where"]

# Every mode: its name and the module whose MODE defines it, imported on first use (uvicorn's
# registries of import strings): nothing here imports a mode, so no mode imports this package back
# half-built. Adding a mode is its module and one line here.
MODULES = {
    "chunked": "runner.concurrency.chunked",
    "open": "runner.concurrency.openloop",
    "sync": "runner.concurrency.sync",
    "sync-open": "runner.concurrency.sync_open",
    "gevent": "runner.concurrency.greenlets",
    "async": "runner.concurrency.unbounded",
    "window": "runner.concurrency.window",
}


class Registry(Mapping[str, Mode]):
    """--mode NAME -> its Mode, each module imported the first time its mode is asked for."""

    def __init__(self, modules: dict[str, str]) -> None:
        self._modules = modules  # read at each lookup: an entry added later is a mode too
        self._loaded: dict[str, Mode] = {}

    def __getitem__(self, name: str) -> Mode:
        if name not in self._modules:
            raise KeyError(name)
        if name not in self._loaded:
            mode = importlib.import_module(self._modules[name]).MODE
            assert isinstance(mode, Mode) and mode.name == name, f"{self._modules[name]}.MODE is not the {name!r} mode"
            self._loaded[name] = mode
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __contains__(self, name: object) -> bool:
        return name in self._modules


MODES = Registry(MODULES)


def modes_where(test: Callable[[Mode], bool]) -> list[str]:
    """The names of the modes with a capability, for rules and their messages."""
    return [name for name, mode in MODES.items() if test(mode)]
