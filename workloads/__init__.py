"""The workload API and registry.

A workload is a set of tables (SQLAlchemy `MetaData` in the runner's own schema, optionally
filled by `populate`) and a set of named ops, each with a weight and a kind ("read" or
"write"). `--read-ratio` picks the kind, the weights pick the op within it.

Each op has implementations per layer (`--layer`): `orm` (required), `core` and `raw`
(optional), each a pair (async, sync). Every implementation is called as `impl(handle, rng)`:
`handle.sessions` is an `async_sessionmaker` / `sessionmaker` (orm), `handle.engine` the
`AsyncEngine` / `Engine` (core; raw takes its driver connection from it), and `rng` a
`random.Random` for data values. Workloads register themselves by name with `register`; a
user's module is loaded with `--workload path/to/file.py` and must call `register` too.
"""

from __future__ import annotations

import importlib
import importlib.util
import random
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, MetaData

SCHEMA = "runner"  # every workload's tables live here, never in `public`
BUILTIN_MODULES = ("workloads.seed", "workloads.noop", "workloads.point_select", "workloads.tpcb", "workloads.sleep")
LAYERS = ("orm", "core", "raw")

AsyncImpl = Callable[["Handle", random.Random], Awaitable[None]]
SyncImpl = Callable[["Handle", random.Random], None]
Impl = tuple[AsyncImpl, SyncImpl]


@dataclass(frozen=True)
class Handle:
    """What an op implementation is given: the worker's engine and its session factory, or (the
    raw layer, which has no SQLAlchemy) a way to borrow one driver connection."""

    engine: Any  # AsyncEngine (async modes) or Engine (sync); None in the raw layer
    sessions: Any  # async_sessionmaker or sessionmaker bound to it; None in the raw layer
    # raw layer: `async with handle.raw() as conn` (asyncpg's connection API) or
    # `with handle.raw() as conn` (a DB-API connection, sync mode)
    raw: Any = None


@dataclass(frozen=True)
class Op:
    name: str
    kind: Literal["read", "write"]
    weight: float
    orm: Impl
    core: Impl | None = None
    raw: Impl | None = None

    def impl(self, layer: str, is_async: bool) -> Callable[..., Any]:
        pair = {"orm": self.orm, "core": self.core, "raw": self.raw}[layer]
        if pair is None:
            raise LookupError(f"op {self.name!r} has no {layer} layer")
        return pair[0] if is_async else pair[1]


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    metadata: MetaData
    ops: tuple[Op, ...]
    # Rows each successful op adds, per table: {"write": {"a": 3, "b": 5}}; checked after a run.
    rows_per_op: dict[str, dict[str, int]] = field(default_factory=dict)
    # Fills the tables after they are created (in the setup transaction); returns rows per table.
    populate: Callable[[Connection], dict[str, int]] | None = None

    def layers(self) -> tuple[str, ...]:
        return tuple(layer for layer in LAYERS if all(getattr(op, layer) is not None for op in self.ops))

    def expected_rows(self, ok_by_op: dict[str, int], populated: dict[str, int]) -> dict[str, int]:
        """The rows the populate step and the committed ops must have left in each table."""
        rows = {str(table.name): populated.get(str(table.name), 0) for table in self.metadata.sorted_tables}
        for op, per_table in self.rows_per_op.items():
            for table, count in per_table.items():
                rows[table] += count * ok_by_op.get(op, 0)
        return rows

    def _of_kind(self, kind: str) -> tuple[list[Op], list[float]]:
        ops = [op for op in self.ops if op.kind == kind]
        return ops, [op.weight for op in ops]

    def op_sequence(self, rng: random.Random, read_ratio: float) -> Iterator[Op]:
        """An endless, seed-determined sequence of ops: kind by `read_ratio`, op by weight."""
        reads, read_weights = self._of_kind("read")
        writes, write_weights = self._of_kind("write")
        if not reads:
            read_ratio = 0.0
        if not writes:
            read_ratio = 1.0
        while True:
            if rng.random() < read_ratio:
                yield rng.choices(reads, read_weights)[0]
            else:
                yield rng.choices(writes, write_weights)[0]


WORKLOADS: dict[str, Workload] = {}


def register(workload: Workload) -> Workload:
    if workload.metadata.schema != SCHEMA:
        raise ValueError(f"workload {workload.name!r}: tables must live in schema {SCHEMA!r}")
    WORKLOADS[workload.name] = workload
    return workload


class WorkloadFileError(Exception):
    """A --workload file that is missing, does not import, or registers nothing."""


def is_path(name: str) -> bool:
    return name.endswith(".py") or "/" in name


def resolve(name: str) -> Workload:
    """A registered workload by name, or the one a user's file registers (loaded once)."""
    if not is_path(name):
        return WORKLOADS[name]
    path = Path(name).resolve()
    key = f"file:{path}"
    if key not in WORKLOADS:
        WORKLOADS[key] = _load_file(path)
    return WORKLOADS[key]


def _load_file(path: Path) -> Workload:
    if not path.is_file():
        raise WorkloadFileError(f"workload file {path} does not exist")
    before = set(WORKLOADS)
    module_name = f"runner_user_workload_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise WorkloadFileError(f"workload file {path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any error means "does not import"
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise WorkloadFileError(f"workload file {path} does not import: {type(exc).__name__}: {first}") from None
    added = [WORKLOADS[n] for n in set(WORKLOADS) - before]
    if len(added) != 1:
        raise WorkloadFileError(f"workload file {path} must register exactly one workload, it registered {len(added)}")
    return added[0]


for _module in BUILTIN_MODULES:
    importlib.import_module(_module)
