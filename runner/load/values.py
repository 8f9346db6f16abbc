"""Each column's values for the generic filler: a pool of typed fake values per column, drawn from
in C (`random.choices`) for every row.

polyfactory's SQLAlchemy factory (Faker underneath) reads a column's type, length and
nullability; building an object costs ~0.1 ms, so POOL_OBJECTS objects make the pools. What it
does not know, or gets wrong, is ours: an Enum's pool is the labels the database stores (for an
Enum of strings polyfactory drew any string), a Numeric's fits its precision, an Interval is not
always zero, a JSON document is sent as its text (psycopg has no adapter for a bare dict), an
array's strings and a string are cut to their length. A column the workload gives a factory for
(`columns=`) is the workload's. A column polyfactory has no values for is named, with the way out.
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import ARRAY, JSON, Column, Enum, Float, Integer, Interval, MetaData, Numeric, Table
from sqlalchemy.orm import registry

from runner.errors import UsageError
from workloads import ColumnFactory

POOL_OBJECTS = 512  # values per column; rows draw from them
WAY_OUT = "give it values (workload(..., columns={{{name!r}: lambda rng: ...}})) or the workload a populate(conn, scale)"


def cannot_fill(table: Table, why: str, column: str | None = None) -> UsageError:
    """One line: what the filler cannot do, and the way out."""
    where = f"{table.name}.{column}" if column else str(table.name)
    return UsageError(f"--scale: the generic filler cannot fill {where}: {why}; " + WAY_OUT.format(name=f"{table.name}.{column or '<column>'}"))


def fillable(table: Table) -> list[Column[Any]]:
    """The columns the filler sends: not a computed one, an always-identity or one with a server
    default (the server fills those, as production's inserts leave them to it)."""
    return [
        c for c in table.columns if c.computed is None and not (c.identity is not None and c.identity.always) and (c.server_default is None or c.primary_key)
    ]


def _numeric(column: Column[Any], rng: random.Random) -> list[Any] | None:
    kind = column.type
    if isinstance(kind, Float) or not isinstance(kind, Numeric) or kind.precision is None:
        return None
    places = kind.scale or 0
    whole = 10 ** min(kind.precision, 15) - 1  # |value| < 10**(precision - scale), in units of 10**-scale
    values = [decimal.Decimal(rng.randint(-whole, whole)).scaleb(-places) for _ in range(POOL_OBJECTS)]
    return values if kind.asdecimal else [float(v) for v in values]


def _ours(column: Column[Any], rng: random.Random) -> list[Any] | None:
    """A pool for the types polyfactory gets wrong; None: polyfactory's."""
    kind = column.type
    if isinstance(kind, Enum):
        return rng.choices(list(kind.enums), k=POOL_OBJECTS)  # the labels stored: names, or values_callable's
    if isinstance(kind, Interval):
        return [dt.timedelta(seconds=rng.randint(0, 30 * 86400)) for _ in range(POOL_OBJECTS)]
    return _numeric(column, rng)


def _objects(columns: list[Column[Any]], rng: random.Random, n: int = POOL_OBJECTS) -> list[Any]:
    """n polyfactory objects of a throwaway table of these columns alone (beside a key of its own):
    a column the filler or the workload gives values for is never shown to polyfactory, which
    refuses a whole table for one type it does not know."""
    from polyfactory.factories.sqlalchemy_factory import SQLAlchemyFactory

    copies = [Column(c.name, c.type, nullable=c.nullable) for c in columns]
    table = Table("fill", MetaData(), Column("fill_key", Integer, primary_key=True), *copies)
    cls = type("Fill", (), {})
    registry().map_imperatively(cls, table)
    factory: Any = SQLAlchemyFactory.create_factory(cls, __set_relationships__=False, __random__=rng)
    return [factory.build() for _ in range(n)]


def _polyfactory(table: Table, columns: list[Column[Any]], rng: random.Random) -> list[Any]:
    try:
        return _objects(columns, rng)
    except Exception as exc:  # a type polyfactory has no value for: find the column to name it
        for column in columns:
            try:
                _objects([column], rng, 1)
            except Exception:
                raise cannot_fill(table, f"no fake values for its type {column.type}", column.name) from None
        raise cannot_fill(table, f"no fake values ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None


def _shaped(table: Table, column: Column[Any], shape: Any, rng: random.Random) -> list[Any]:
    """Documents of the annotation's type, by polyfactory (a one-field dataclass of that type)."""
    from dataclasses import make_dataclass

    from polyfactory.factories import DataclassFactory

    holder = make_dataclass("Document", [("value", shape)])
    try:
        factory: Any = DataclassFactory.create_factory(holder, __random__=rng)
        return [factory.build().value for _ in range(POOL_OBJECTS)]
    except Exception as exc:
        raise cannot_fill(table, f"no documents of its annotated type {shape} ({type(exc).__name__})", column.name) from None


def _cut(value: Any, length: int | None) -> Any:
    return value[:length] if length is not None and isinstance(value, str) else value


def _wire(column: Column[Any]) -> Callable[[Any], Any]:
    """A value as COPY is given it: JSON as its text, strings (an array's too) cut to their length."""
    kind = column.type
    if isinstance(kind, JSON):
        return lambda v: None if v is None else orjson.dumps(v, default=str).decode()
    if isinstance(kind, ARRAY):
        length = getattr(kind.item_type, "length", None)
        return lambda v: v if v is None else [_cut(item, length) for item in v]
    length = getattr(kind, "length", None)
    return lambda v: _cut(v, length)


def pools(
    table: Table, columns: list[Column[Any]], factories: dict[str, ColumnFactory], rng: random.Random, shapes: dict[str, Any] | None = None
) -> dict[str, list[Any]]:
    """Each column's pool of typed values, as COPY is given them; a JSON column with a shape (its
    annotation's type, `shapes`) gets documents of that shape."""
    own: dict[str, list[Any]] = {}
    for column in columns:
        factory = factories.get(f"{table.name}.{column.name}")
        shape = (shapes or {}).get(f"{table.name}.{column.name}")
        if factory is None and shape is not None:
            own[column.key] = _shaped(table, column, shape, rng)
        elif factory is not None:
            try:
                own[column.key] = [factory(rng) for _ in range(POOL_OBJECTS)]
            except Exception as exc:
                raise UsageError(f"--scale: the values of {table.name}.{column.name}: its factory raised {type(exc).__name__}: {exc}") from None
        else:
            pool = _ours(column, rng)
            if pool is not None:
                own[column.key] = pool
    rest = [c for c in columns if c.key not in own and not c.primary_key and not c.foreign_keys]  # keys are the filler's
    objects = _polyfactory(table, rest, rng) if rest else []
    out: dict[str, list[Any]] = {}
    for column in columns:
        values = own[column.key] if column.key in own else [getattr(obj, column.name, None) for obj in objects]
        wire = _wire(column)
        out[column.name] = [wire(v) for v in values]
    return out
