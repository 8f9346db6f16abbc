"""The decorator form of a workload, as Locust's tasks and pytest's fixtures read:

    from workloads import workload
    from myapp.models import Base, Product

    bench = workload("shop", Base, description="product pages and orders")

    @bench.read(weight=3)
    async def product_page(ctx):
        async with ctx.sessions() as session:
            await session.get(Product, ctx.keys.pick(10_000))

    @bench.write(weight=1, rows={"orders": 1})
    def place_order(ctx):          # a sync op: runs in --mode sync
        ...

An op function takes one argument, the context (`workloads.Context`: `sessions`, `engine`, `raw`,
`rng`, `keys`, `worker_id`). Defining the same op name once async and once sync gives it both;
a mode that needs the kind an op lacks is refused before the run, naming the op. `layers=`
says which --layer values the function serves (default orm; a function that only uses
`ctx.engine` can serve ("orm", "core")).
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, MetaData
from sqlalchemy.orm import Mapped

from workloads.core import LAYERS, ColumnFactory, Data, Op, Workload, WorkloadFileError, register

OpFunction = Callable[[Any], Any]
Outcomes = type[BaseException] | tuple[type[BaseException], ...]


class WorkloadDefinition:
    """Collects op functions; `build()` makes (once) and registers the Workload underneath."""

    def __init__(self, name: str, models: MetaData | Any, description: str = "", default_scale: int | None = None, data: Data | None = None) -> None:
        self.name = name
        self.default_scale = default_scale
        self.data = data or Data()
        self.metadata: MetaData = models if isinstance(models, MetaData) else models.metadata  # a DeclarativeBase
        self.description = description
        self._ops: dict[str, dict[str, Any]] = {}  # name -> {"kind", "weight", "rows", layer: [async, sync]}
        self._populate: Callable[..., dict[str, int]] | None = None
        self._built: Workload | None = None

    def read(
        self, weight: float = 1.0, *, name: str | None = None, layers: tuple[str, ...] = ("orm",), outcomes: Outcomes = ()
    ) -> Callable[[OpFunction], OpFunction]:
        """`outcomes`: exception classes the op may end in that are answers, not failures (see write)."""
        return self._op("read", weight, name, layers, {}, outcomes)

    def write(
        self,
        weight: float = 1.0,
        *,
        name: str | None = None,
        layers: tuple[str, ...] = ("orm",),
        rows: dict[str, int] | None = None,
        outcomes: Outcomes = (),
    ) -> Callable[[OpFunction], OpFunction]:
        """`rows`: rows one successful op adds per table, checked against the tables after the run.
        `outcomes`: exception classes that are the application's answer, e.g. an optimistic-concurrency
        `StaleDataError`: such an op is ok and timed, counted in the op's `outcomes` by class, and
        adds no rows (it rolled back)."""
        return self._op("write", weight, name, layers, rows or {}, outcomes)

    def populate(self, function: Callable[..., dict[str, int]]) -> Callable[..., dict[str, int]]:
        """`fn(conn) -> {table: rows}` or `fn(conn, scale)`: fills the tables once they are created
        (a sync Connection, in the setup transaction); with a `scale` argument it is --scale's."""
        self._populate = function
        return function

    def _op(
        self, kind: str, weight: float, name: str | None, layers: tuple[str, ...], rows: dict[str, int], outcomes: Outcomes
    ) -> Callable[[OpFunction], OpFunction]:
        classes = (outcomes,) if isinstance(outcomes, type) else tuple(outcomes)
        if not all(isinstance(c, type) and issubclass(c, BaseException) for c in classes):
            raise WorkloadFileError(f"workload {self.name!r}: outcomes= takes exception classes, got {outcomes!r}")

        def decorate(function: OpFunction) -> OpFunction:
            op_name = name or function.__name__
            if self._built is not None:
                raise WorkloadFileError(f"workload {self.name!r}: op {op_name!r} defined after the workload was used")
            entry = self._ops.setdefault(op_name, {"kind": kind, "weight": weight, "rows": rows, "outcomes": ()})
            if entry["kind"] != kind or entry["weight"] != weight:
                raise WorkloadFileError(f"workload {self.name!r}: op {op_name!r} is defined twice with a different kind or weight")
            entry["rows"] = {**entry["rows"], **rows}
            entry["outcomes"] = entry["outcomes"] + tuple(c for c in classes if c not in entry["outcomes"])
            slot = 0 if inspect.iscoroutinefunction(function) else 1
            for layer in layers:
                if layer not in LAYERS:
                    raise WorkloadFileError(f"workload {self.name!r}: op {op_name!r}: unknown layer {layer!r} ({', '.join(LAYERS)})")
                pair = entry.setdefault(layer, [None, None])
                if pair[slot] is not None:
                    which = "async" if slot == 0 else "sync"
                    raise WorkloadFileError(f"workload {self.name!r}: op {op_name!r} has two {which} {layer} implementations")
                pair[slot] = _adapt(function)
            return function

        return decorate

    def build(self) -> Workload:
        if self._built is None:
            if not self._ops:
                raise WorkloadFileError(f"workload {self.name!r} has no ops: decorate functions with .read() or .write()")
            ops = []
            for op_name, entry in self._ops.items():
                pairs = {layer: tuple(entry[layer]) if layer in entry else None for layer in LAYERS}
                if pairs["orm"] is None:
                    raise WorkloadFileError(f"workload {self.name!r}: op {op_name!r} has no orm layer (every op needs one)")
                ops.append(Op(op_name, entry["kind"], entry["weight"], pairs["orm"], pairs["core"], pairs["raw"], entry["outcomes"]))  # type: ignore[arg-type]
            rows = {name: entry["rows"] for name, entry in self._ops.items() if entry["rows"]}
            self.data.check(self.name, self.metadata)
            workload = Workload(self.name, self.description, self.metadata, tuple(ops), rows, self._populate, self.default_scale, self.data)
            self._built = register(workload)
        return self._built


def _adapt(function: OpFunction) -> Callable[[Any, Any], Any]:
    """The (ctx, rng) calling convention underneath; the coroutine is returned, not wrapped."""
    return lambda ctx, rng: function(ctx)


def workload(
    name: str,
    models: MetaData | Any,
    description: str = "",
    default_scale: int | None = None,
    *,
    proportions: dict[str, float] | None = None,
    fanout: str | dict[str, str] = "uniform",
    columns: dict[str, ColumnFactory] | None = None,
) -> WorkloadDefinition:
    """A workload over `models` (a MetaData, or a declarative Base: its tables, in any schema).

    What the generic filler (--scale N) makes of the models:
    `default_scale`: without --scale, it fills the tables at this scale.
    `proportions`: rows per table per unit of scale (`{"users": 0.1, "posts": 1, "comments": 3}`:
    --scale 100000 makes 10,000 users, 100,000 posts, 300,000 comments); a table not named: 1.
    `fanout`: how children spread over their parents: "uniform" or "zipf", for every foreign key,
    or per key (`{"comments.post_id": "zipf"}`).
    `columns`: values for a column, `{"posts.meta": lambda rng: {"lang": rng.choice(["en", "fr"])}}`.
    """
    shape = Data(dict(proportions or {}), {"*": fanout} if isinstance(fanout, str) else dict(fanout), dict(columns or {}), json_shapes(models))
    return WorkloadDefinition(name, models, description, default_scale, shape)


def json_shapes(models: Any) -> dict[str, Any]:
    """Each JSON column's type from its mapped class's annotation (`Mapped[dict[str, int]]` ->
    dict[str, int]), for a declarative Base; a bare `dict`, `Any` or a column without one is left
    to the filler's default documents."""
    mapped = getattr(getattr(models, "registry", None), "mappers", ())
    shapes: dict[str, Any] = {}
    for mapper in mapped:
        try:  # a string annotation the class's module cannot resolve is no shape, not an error
            hints = typing.get_type_hints(mapper.class_)
        except Exception:
            continue
        for prop in mapper.column_attrs:
            hint = hints.get(prop.key)
            column = prop.columns[0]
            if hint is None or not isinstance(column.type, JSON) or getattr(column, "table", None) is None:
                continue
            shape = _inner(hint)
            if shape is not None:
                shapes[f"{column.table.name}.{column.name}"] = shape
    return shapes


def _inner(hint: Any) -> Any:
    """`Mapped[X | None]` -> X, when X says more than "some JSON" (a dict or list of a type, a
    TypedDict, a dataclass; not `dict[str, Any]`, whose documents are the filler's own); else None."""
    if typing.get_origin(hint) is Mapped:
        hint = typing.get_args(hint)[0]
    args = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) in (typing.Union, types.UnionType) else [hint]
    if len(args) != 1:
        return None
    inner = args[0]
    if typing.is_typeddict(inner) or dataclasses.is_dataclass(inner):
        return inner
    parts = typing.get_args(inner)
    return inner if parts and not all(part in (str, Any) for part in parts) else None
