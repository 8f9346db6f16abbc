"""The workload types and the registry (re-exported by the package: `from workloads import Op`)."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Enum, MetaData

SCHEMA = "runner"  # every workload's tables live here, never in `public`
LAYERS = ("orm", "core", "raw")

ColumnFactory = Callable[[random.Random], Any]  # a column's value from the filler's RNG
FANOUTS = ("uniform", "zipf")

AsyncImpl = Callable[["Handle", random.Random], Awaitable[None]]
SyncImpl = Callable[["Handle", random.Random], None]
Impl = tuple[AsyncImpl | None, SyncImpl | None]


@dataclass(frozen=True)
class Handle:
    """What an op is given (the "context"): the worker's engine and its session factory, or (the
    raw layer, which has no SQLAlchemy) a way to borrow one driver connection; the worker's RNG
    for data values, its key picker (`--keys`) and its id."""

    engine: Any  # AsyncEngine (async modes) or Engine (sync); None in the raw layer
    sessions: Any  # async_sessionmaker or sessionmaker bound to it; None in the raw layer
    # raw layer: `async with handle.raw() as conn` (asyncpg's connection API) or
    # `with handle.raw() as conn` (a DB-API connection, sync mode)
    raw: Any = None
    rng: random.Random = field(default_factory=random.Random)
    keys: Any = None  # workloads.keys.Keys: `ctx.keys.pick(n)` -> a key in 1..n; `pick("posts")`: one the load put there
    worker_id: int = 0
    scale: int = 0  # --scale's unit (or the workload's default_scale): a table's rows are its proportion of it; 0: none


Context = Handle  # the name the decorator form's op functions know it by


@dataclass(frozen=True)
class Op:
    name: str
    kind: Literal["read", "write"]
    weight: float
    orm: Impl
    core: Impl | None = None
    raw: Impl | None = None
    # Exceptions that are the application's answer, not a failure (an optimistic-concurrency
    # StaleDataError, a unique violation on a retry-safe insert): counted per op as outcomes, the
    # op ok and timed, its rows not expected in the tables (k6's expected responses).
    outcomes: tuple[type[BaseException], ...] = ()

    def impl(self, layer: str, is_async: bool) -> Callable[..., Any]:
        pair = {"orm": self.orm, "core": self.core, "raw": self.raw}[layer]
        if pair is None:
            raise LookupError(f"op {self.name!r} has no {layer} layer")
        impl = pair[0] if is_async else pair[1]
        if impl is None:
            raise LookupError(f"op {self.name!r} has no {'async' if is_async else 'sync'} {layer} implementation")
        return impl


@dataclass(frozen=True)
class Data:
    """How the generic filler (--scale) shapes a workload's rows, beyond what the models say."""

    # Rows per table per unit of --scale (a table not named: 1): {"tenants": 0.001, "posts": 1, "comments": 3}.
    proportions: dict[str, float] = field(default_factory=dict)
    # How children spread over their parents, per foreign key ("table.column", or "*" for every
    # one): "uniform", or "zipf" (a few parents get most children, as comments on posts).
    fanout: dict[str, str] = field(default_factory=dict)
    # A column's values from the workload: "table.column" -> fn(rng) -> a value (a JSON document,
    # a code a CHECK accepts, a type the filler has no values for).
    columns: dict[str, ColumnFactory] = field(default_factory=dict)
    # A JSON column's Python type from its model's annotation, "table.column" -> e.g. dict[str, int]
    # for `Mapped[dict[str, int]]`: its documents are built to that shape (runner.load.values).
    shapes: dict[str, Any] = field(default_factory=dict)

    def fanout_of(self, table: str, column: str) -> str:
        return self.fanout.get(f"{table}.{column}", self.fanout.get("*", "uniform"))

    def check(self, workload: str, metadata: MetaData) -> None:
        """Every name given is a table, a column or a foreign key of the models, every value fits."""
        tables = {str(t.name): t for t in metadata.sorted_tables}

        def column(where: str, name: str, foreign: bool = False) -> None:
            table, _, col = name.partition(".")
            if table not in tables or col not in tables[table].columns:
                raise WorkloadFileError(f"workload {workload!r}: {where} names {name!r}, not a table.column of its models")
            if foreign and not tables[table].columns[col].foreign_keys:
                raise WorkloadFileError(f"workload {workload!r}: {where} names {name!r}, which is not a foreign key")

        for table, ratio in self.proportions.items():
            if table not in tables:
                raise WorkloadFileError(f"workload {workload!r}: proportions name {table!r}, not a table of its models ({', '.join(tables)})")
            if not ratio > 0:
                raise WorkloadFileError(f"workload {workload!r}: proportions[{table!r}] must be above 0, got {ratio}")
        for name, shape in self.fanout.items():
            if shape not in FANOUTS:
                raise WorkloadFileError(f"workload {workload!r}: fanout[{name!r}] is {shape!r}; one of {', '.join(FANOUTS)}")
            if name != "*":
                column("fanout", name, foreign=True)
        for name, factory in self.columns.items():
            column("columns", name)
            if not callable(factory):
                raise WorkloadFileError(f"workload {workload!r}: columns[{name!r}] must be a function of the RNG, got {type(factory).__name__}")


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    metadata: MetaData
    ops: tuple[Op, ...]
    # Rows each successful op adds, per table: {"write": {"a": 3, "b": 5}}; checked after a run.
    rows_per_op: dict[str, dict[str, int]] = field(default_factory=dict)
    # Fills the tables after they are created (in the setup transaction); returns rows per table.
    # Called as populate(conn), or populate(conn, scale) if it takes a second argument (--scale).
    populate: Callable[..., dict[str, int]] | None = None
    # Without --scale, fill the tables with this many rows each by the generic filler (no populate).
    default_scale: int | None = None
    data: Data = field(default_factory=Data)  # how the generic filler shapes the rows

    @property
    def populate_takes_scale(self) -> bool:
        return self.populate is not None and len(inspect.signature(self.populate).parameters) >= 2

    def only(self, names: tuple[str, ...]) -> Workload:
        """This workload with only the ops named (--only, as Locust's --tags); all of them without names."""
        if not names:
            return self
        unknown = [name for name in names if name not in {op.name for op in self.ops}]
        if unknown:
            raise LookupError(f"workload {self.name!r} has no op {unknown[0]!r} (its ops: {', '.join(op.name for op in self.ops)})")
        return dataclasses.replace(self, ops=tuple(op for op in self.ops if op.name in names), rows_per_op={k: v for k, v in self.rows_per_op.items() if k in names})

    def layers(self) -> tuple[str, ...]:
        return tuple(layer for layer in LAYERS if all(getattr(op, layer) is not None for op in self.ops))

    def lacking(self, layer: str, is_async: bool) -> Op | None:
        """The first op with no implementation of that kind (async or sync) in that layer."""
        for op in self.ops:
            pair = getattr(op, layer)
            if pair is None or pair[0 if is_async else 1] is None:
                return op
        return None

    @property
    def schema_map(self) -> dict[str | None, str]:
        """SQLAlchemy's schema_translate_map: every schema the tables declare -> ours, and no schema
        too: an Enum of a declarative model has none even when its table has one, and was created
        in (or taken from) the server's `public`."""
        return {**{table.schema: SCHEMA for table in self.metadata.sorted_tables}, None: SCHEMA}

    @property
    def translates(self) -> bool:
        """Whether a table or a native enum type declares a schema other than ours, or none: then
        statements go through schema_translate_map (the built-ins' are all ours: no cost to pay)."""
        tables = self.metadata.sorted_tables
        enums = [column.type for table in tables for column in table.columns if isinstance(column.type, Enum) and column.type.native_enum]
        return bool(({table.schema for table in tables} | {enum.schema for enum in enums}) - {SCHEMA})

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
        # A kind with one op needs no weighted draw, and one kind needs no kind draw: the op
        # stream is the worker's hot path, and random.choices costs microseconds per op. One op
        # of one kind is itertools.repeat itself, with no generator frame to resume per op.
        if read_ratio in (0.0, 1.0):
            ops, weights = (reads, read_weights) if read_ratio == 1.0 else (writes, write_weights)
            return itertools.repeat(ops[0]) if len(ops) == 1 else _weighted(rng, ops, weights)
        return _mixed(rng, read_ratio, reads, read_weights, writes, write_weights)


def _weighted(rng: random.Random, ops: list[Op], weights: list[float]) -> Iterator[Op]:
    """One kind's ops, drawn by weight."""
    while True:
        yield rng.choices(ops, weights)[0]


def _mixed(rng: random.Random, read_ratio: float, reads: list[Op], read_weights: list[float], writes: list[Op], write_weights: list[float]) -> Iterator[Op]:
    """Both kinds: the kind by read_ratio, then (where the kind has several) the op by weight."""
    read_one = reads[0] if len(reads) == 1 else None
    write_one = writes[0] if len(writes) == 1 else None
    while True:
        if rng.random() < read_ratio:
            yield read_one if read_one is not None else rng.choices(reads, read_weights)[0]
        else:
            yield write_one if write_one is not None else rng.choices(writes, write_weights)[0]


WORKLOADS: dict[str, Workload] = {}


class WorkloadFileError(Exception):
    """A --workload file or import path that is missing, does not import, or holds no workload."""


def register(workload: Workload) -> Workload:
    """Add a workload to the registry under its name; its table names must be unique once every
    schema is mapped into the runner's."""
    names = [str(table.name) for table in workload.metadata.sorted_tables]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise WorkloadFileError(
            f"workload {workload.name!r}: tables named {', '.join(twice)} in more than one schema would be the same table "
            f"in schema {SCHEMA!r}, where the runner maps every schema"
        )
    WORKLOADS[workload.name] = workload
    return workload
