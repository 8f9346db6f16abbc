"""--scale N: fill every table of a workload with N rows derived from its models, by COPY.

Typed fake values come from polyfactory's SQLAlchemy factory (Faker underneath): it reads each
column's type, length and nullability. Building an object costs ~0.1 ms, so each column gets a
pool of values from POOL_OBJECTS objects and rows draw from the pools in C (`random.choices`).
What polyfactory cannot know is ours: primary keys are 1..N, a foreign key picks one of its
parent's N keys (parents are filled first), a unique column gets values made unique by the row
number, strings are cut to their column's length. Rows go to the server with psycopg 3's COPY
(`Copy.write_row`), one table at a time, in one transaction; the caller counts what arrived.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Engine, Integer, Table, UniqueConstraint, Uuid, text
from sqlalchemy.orm import registry

from runner.errors import UsageError
from workloads import SCHEMA, Workload

POOL_OBJECTS = 512  # objects polyfactory builds per table; their values are the columns' pools
BATCH_ROWS = 20_000  # rows drawn at once (each column's values in one C call)
PROGRESS_PERIOD_S = 1.0

Progress = Callable[[str, int, int], None]  # (table, rows so far, rows wanted)


@dataclass(frozen=True)
class TableLoad:
    rows: int
    seconds: float


def _fail(table: Table, why: str) -> UsageError:
    return UsageError(f"--scale: the generic filler cannot fill table {table.name!r}: {why}; give the workload its own populate(conn, scale)")


def _is_uuid(column: Column[Any]) -> bool:
    return isinstance(column.type, Uuid)


def _key(column: Column[Any], number: int) -> Any:
    """The primary key of row `number` (1-based), and what a foreign key to it holds."""
    return uuid.UUID(int=number) if _is_uuid(column) else number


def _primary_key(table: Table) -> Column[Any]:
    columns = list(table.primary_key.columns)
    if len(columns) != 1:
        raise _fail(table, f"it has {'no' if not columns else 'a composite'} primary key (the filler numbers rows 1..N)")
    column = columns[0]
    if not (isinstance(column.type, Integer) or _is_uuid(column)):
        raise _fail(table, f"its primary key {column.name!r} is {column.type}, not an integer or a UUID")
    return column


def _single_column_unique(table: Table) -> set[str]:
    names = {c.name for c in table.columns if c.unique}
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            columns = list(constraint.columns)
            if len(columns) > 1:
                raise _fail(table, f"a unique constraint over several columns ({', '.join(c.name for c in columns)})")
            names.update(c.name for c in columns)
    for index in table.indexes:
        if index.unique:
            if len(index.columns) > 1:
                raise _fail(table, f"a unique index over several columns ({', '.join(c.name for c in index.columns)})")
            names.update(c.name for c in index.columns)
    return names


def _pools(table: Table, rng: random.Random) -> dict[str, list[Any]]:
    """Each column's pool of typed fake values, from polyfactory objects of a throwaway mapping."""
    from polyfactory.factories.sqlalchemy_factory import SQLAlchemyFactory

    cls = type(f"Fill_{table.name}", (), {})
    registry().map_imperatively(cls, table)
    factory: Any = SQLAlchemyFactory.create_factory(cls, __set_relationships__=False, __random__=rng)
    try:
        objects = [factory.build() for _ in range(POOL_OBJECTS)]
    except Exception as exc:  # a type polyfactory has no value for
        raise _fail(table, f"no fake values for its columns ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    return {column.name: [getattr(obj, column.key) for obj in objects] for column in table.columns}


def _cut(values: list[Any], length: int | None) -> list[Any]:
    if length is None:
        return values
    return [v[:length] if isinstance(v, str) else v for v in values]


def _unique(pool: list[Any], column: Column[Any], table: Table) -> Callable[[int, int], list[Any]]:
    """Values for rows first..first+n-1 that no other row has."""
    length = getattr(column.type, "length", None)
    if isinstance(column.type, Integer):
        return lambda first, n: list(range(first, first + n))
    if _is_uuid(column):
        return lambda first, n: [uuid.UUID(int=(1 << 64) + i) for i in range(first, first + n)]
    if all(isinstance(v, str) or v is None for v in pool):

        def strings(first: int, n: int) -> list[str]:
            out = []
            for i in range(first, first + n):
                suffix = f"-{i}"
                stem = pool[i % len(pool)] or ""
                out.append((stem[: length - len(suffix)] if length else stem) + suffix)
            return out

        return strings
    raise _fail(table, f"unique column {column.name!r} of type {column.type}: no way to make its values unique")


def _column_source(
    table: Table, column: Column[Any], pool: list[Any], rows: dict[str, int], unique: set[str], rng: random.Random, pk: Column[Any]
) -> Callable[[int, int], list[Any]]:
    """Values for rows first..first+n-1 of one column."""
    if column is pk:
        return lambda first, n: [_key(pk, i) for i in range(first, first + n)]
    foreign = list(column.foreign_keys)
    if foreign:
        target = foreign[0].column
        parent = target.table
        if parent.name not in rows:
            raise _fail(table, f"column {column.name!r} refers to {parent.name!r}, a table the workload does not fill")
        count = rows[parent.name]
        if count < 1:
            raise _fail(table, f"column {column.name!r} refers to {parent.name!r}, which has no rows")
        keys = range(1, count + 1)
        return lambda first, n: [_key(target, k) for k in rng.choices(keys, k=n)]
    if column.name in unique:
        return _unique(pool, column, table)
    values = _cut(pool, getattr(column.type, "length", None))
    if not column.nullable:
        values = [v for v in values if v is not None] or values
    return lambda first, n: rng.choices(values, k=n)


def _rows(table: Table, pk: Column[Any], wanted: int, rows: dict[str, int], rng: random.Random) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    unique = _single_column_unique(table) - {pk.name}
    pools = _pools(table, rng)
    columns = [c for c in table.columns if c.computed is None and not (c.identity is not None and c.identity.always)]
    sources = [_column_source(table, c, pools[c.name], rows, unique, rng, pk) for c in columns]

    def batches() -> Iterator[tuple[Any, ...]]:
        for first in range(1, wanted + 1, BATCH_ROWS):
            n = min(BATCH_ROWS, wanted + 1 - first)
            yield from zip(*(source(first, n) for source in sources), strict=True)

    return [c.name for c in columns], batches()


def fill(engine: Engine, workload: Workload, scale: int, progress: Progress | None = None) -> tuple[dict[str, TableLoad], float]:
    """Every table of the workload with `scale` rows, parents first, in one transaction.

    `engine`: a psycopg 3 engine (its COPY support); the connection is the parent's, so a
    Ctrl-C during the load cancels it like any other setup statement. Returns each table's rows
    and seconds (its values drawn, its COPY) and the whole load's seconds, commit included.
    """
    began = time.monotonic()
    rng = random.Random(0)  # the same data for the same models and scale
    rows: dict[str, int] = {}
    loads: dict[str, TableLoad] = {}
    # begin(): one transaction, committed at the end whatever ran through it. With connect() and a
    # commit(), a load that never executed through SQLAlchemy itself (every key a UUID: no setval)
    # began no SQLAlchemy transaction, so the commit was a no-op and the COPYs were rolled back.
    with engine.begin() as conn:
        raw: Any = conn.connection.dbapi_connection  # a psycopg.Connection: its cursor has copy()
        for table in workload.metadata.sorted_tables:
            start = last = time.monotonic()
            pk = _primary_key(table)
            names, generated = _rows(table, pk, scale, rows, rng)
            done = 0
            quoted = ", ".join(f'"{n}"' for n in names)
            with raw.cursor() as cursor, cursor.copy(f'COPY {SCHEMA}."{table.name}" ({quoted}) FROM STDIN') as copy:
                for row in generated:
                    copy.write_row(row)
                    done += 1
                    if progress is not None and not done % 10_000 and time.monotonic() - last >= PROGRESS_PERIOD_S:
                        last = time.monotonic()
                        progress(str(table.name), done, scale)
            if isinstance(pk.type, Integer):  # a serial or identity key carries on after the loaded rows
                conn.execute(
                    text("SELECT setval(seq, :n) FROM pg_get_serial_sequence(:t, :c) AS seq WHERE seq IS NOT NULL"),
                    {"n": scale, "t": f'{SCHEMA}."{table.name}"', "c": pk.name},
                )
            rows[str(table.name)] = scale
            loads[str(table.name)] = TableLoad(scale, time.monotonic() - start)
    return loads, time.monotonic() - began
