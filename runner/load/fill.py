"""--scale: fill a workload's tables from its models by COPY, then take the planner's statistics.

Primary keys are 1..rows; a foreign key picks one of its parent's keys, uniformly or by a zipf law
(the workload's `fanout`), parents first, a table's own key (a tree) among the rows before it; a
unique column gets values made unique by the row number; every other column draws from its pool
(runner.load.values), kept to what the table's CHECKs accept (runner.load.checks). Rows go to the
server with psycopg 3's COPY (`Copy.write_row`), one table at a time, in one transaction; a row the
server refuses ends the load with one line naming the table and what it refused. After the commit,
VACUUM ANALYZE, as `pgbench -i` does: the run's plans are made from the loaded data's statistics,
not from an empty table's guesses.
"""

from __future__ import annotations

import itertools
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Column, Engine, Integer, Table, UniqueConstraint, Uuid, text

from runner.errors import UsageError
from runner.load.bare import bare
from runner.load.checks import keep_checked
from runner.load.values import WAY_OUT, cannot_fill, fillable, pools
from workloads import SCHEMA, Workload
from workloads.keys import DEFAULT_THETA

BATCH_ROWS = 20_000  # rows drawn at once (each column's values in one C call)
PROGRESS_PERIOD_S = 1.0
BUILD_MEMORY = "256MB"  # for the keys' sorts, this transaction only (the server's default: 64MB)

Progress = Callable[[str, int, int], None]  # (table, rows so far, rows wanted)
Source = Callable[[int, int], list[Any]]  # (first row, rows) -> one column's values for them


@dataclass(frozen=True)
class TableLoad:
    rows: int
    seconds: float


@dataclass(frozen=True)
class Fanout:
    """Children per parent over one foreign key, as loaded."""

    # "uniform" | "zipf" | "tree" (a table's key to itself: each row's parent among the rows
    # before it) | "one-to-one" (a unique foreign key: row i's parent is parent i)
    shape: str
    parents: int
    mean: float
    max: int
    childless: int  # parents with no child

    def as_json(self) -> dict[str, Any]:
        return {"shape": self.shape, "parents": self.parents, "mean": round(self.mean, 3), "max": self.max, "childless": self.childless}


@dataclass(frozen=True)
class Loaded:
    tables: dict[str, TableLoad]
    fanout: dict[str, Fanout]  # "table.column" -> what that foreign key's children per parent came to
    seconds: float  # the load, commit included
    keys_s: float | None  # of which building the keys, unique constraints, indexes and foreign keys after the COPYs (None: a workload's populate)
    analyze_s: float | None  # VACUUM ANALYZE after it; None: not run (--no-analyze)


def _is_uuid(column: Column[Any]) -> bool:
    return isinstance(column.type, Uuid)


def _numbers(first: int, n: int) -> list[int]:
    """Rows first..first+n-1's integer keys (a foreign key to them holds the same)."""
    return list(range(first, first + n))


def _primary_key(table: Table) -> Column[Any]:
    columns = list(table.primary_key.columns)
    if len(columns) != 1:
        raise cannot_fill(table, f"it has {'no' if not columns else 'a composite'} primary key (the filler numbers rows 1..N)")
    column = columns[0]
    if not (isinstance(column.type, Integer) or _is_uuid(column)):
        raise cannot_fill(table, f"its primary key is {column.type}, not an integer or a UUID", column.name)
    return column


def _single_column_unique(table: Table) -> set[str]:
    names = {c.name for c in table.columns if c.unique}
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            columns = list(constraint.columns)
            if len(columns) > 1:
                raise cannot_fill(table, f"a unique constraint over several columns ({', '.join(c.name for c in columns)})")
            names.update(c.name for c in columns)
    for index in table.indexes:
        if index.unique:
            if len(index.columns) > 1:
                raise cannot_fill(table, f"a unique index over several columns ({', '.join(c.name for c in index.columns)})")
            names.update(c.name for c in index.columns)
    return names


def _unique(pool: list[Any], column: Column[Any], table: Table) -> Source:
    """Values for rows first..first+n-1 that no other row has."""
    length = getattr(column.type, "length", None)
    if isinstance(column.type, Integer):
        return _numbers
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
    raise cannot_fill(table, f"it is unique and of type {column.type}: no way to make its values unique", column.name)


def _zipf_cum_weights(parents: int, rng: random.Random) -> list[float]:
    """Cumulative weights over keys 1..parents: rank r weighs (r+1)^-theta, the ranks shuffled over
    the keys (the most popular parent is not key 1)."""
    weights = [(r + 1) ** -DEFAULT_THETA for r in range(parents)]
    rng.shuffle(weights)
    return list(itertools.accumulate(weights))


class _Parents:
    """A foreign key's values: one of the parent's keys per row, counted for `.load.fanout`."""

    def __init__(self, target: Column[Any], parents: int, shape: str, rng: random.Random, tree: bool, nullable: bool, unique: bool) -> None:
        self.target, self.parents, self.rng = target, parents, rng
        self.tree, self.nullable, self.unique = tree, nullable, unique
        self.shape = "tree" if tree else "one-to-one" if unique else shape
        self.cum = _zipf_cum_weights(parents, rng) if shape == "zipf" and not tree else None
        self.keys = range(1, parents + 1)
        self.children: Counter[int] = Counter()

    def __call__(self, first: int, n: int) -> list[Any]:
        rng = self.rng
        if self.tree:  # row i's parent among rows 1..i-1; the first row is a root
            roots: list[int | None] = [rng.randint(1, i - 1) if i > 1 else (None if self.nullable else 1) for i in range(first, first + n)]
            self.children.update(k for k in roots if k is not None)
            return roots if not _is_uuid(self.target) else [None if k is None else uuid.UUID(int=k) for k in roots]
        if self.unique:  # one child per parent: row i's is parent i
            picked = list(range(first, first + n))
        elif self.cum is not None:
            picked = rng.choices(self.keys, cum_weights=self.cum, k=n)
        else:
            picked = rng.choices(self.keys, k=n)
        self.children.update(picked)
        # The keys themselves, with no call per row: that call was a third of a child table's load.
        return picked if not _is_uuid(self.target) else [uuid.UUID(int=k) for k in picked]

    def seen(self) -> Fanout:
        counts = self.children
        total = sum(counts.values())
        return Fanout(self.shape, self.parents, total / self.parents, max(counts.values(), default=0), self.parents - len(counts))


def _sources(
    conn: Any, workload: Workload, table: Table, pk: Column[Any], rows: dict[str, int], rng: random.Random
) -> tuple[list[str], list[Source], dict[str, _Parents]]:
    columns = fillable(table)
    unique = _single_column_unique(table) - {pk.name}
    kept = keep_checked(conn, table, columns, pools(table, columns, workload.data.columns, rng, workload.data.shapes))
    names, sources, parents = [], [], {}
    for column in columns:
        names.append(column.name)
        foreign = list(column.foreign_keys)
        if column is pk:
            sources.append(_numbers if not _is_uuid(pk) else lambda first, n: [uuid.UUID(int=i) for i in range(first, first + n)])
        elif foreign and f"{table.name}.{column.name}" not in workload.data.columns:
            target = foreign[0].column
            parent = str(target.table.name)
            tree = target.table is table
            count = rows.get(parent, 0) if not tree else rows[str(table.name)]
            if parent not in rows and not tree:
                raise cannot_fill(table, f"it refers to {parent!r}, a table the workload does not fill", column.name)
            if count < 1:
                raise cannot_fill(table, f"it refers to {parent!r}, which has no rows", column.name)
            one_each = column.name in unique
            if one_each and rows[str(table.name)] > count:
                raise cannot_fill(table, f"it is a unique key to {parent!r}: {rows[str(table.name)]:,} rows need as many parents, {parent!r} has {count:,}", column.name)
            shape = workload.data.fanout_of(str(table.name), column.name)
            picker = _Parents(target, count, shape, rng, tree, bool(column.nullable), one_each)
            parents[f"{table.name}.{column.name}"] = picker
            sources.append(picker)
        elif column.name in unique:
            sources.append(_unique(kept[column.name], column, table))
        else:
            values = kept[column.name]
            if not column.nullable:
                values = [v for v in values if v is not None] or values
            sources.append(lambda first, n, values=values: rng.choices(values, k=n))  # type: ignore[misc]
    return names, sources, parents


def _refused(table: Table, exc: psycopg.Error) -> UsageError:
    """A row the server refused (a check over several columns, a value out of range): one line."""
    diag = exc.diag
    where = re.search(r"column (\w+)", diag.context or "")
    column = diag.column_name or (where.group(1) if where else None)
    constraint = f" (constraint {diag.constraint_name})" if diag.constraint_name else ""
    subject = f"{table.name}.{column}" if column else str(table.name)
    message = (diag.message_primary or str(exc)).strip()
    return UsageError(f"--scale: {subject} refused the generic filler's rows: {message}{constraint}; " + WAY_OUT.format(name=f"{table.name}.{column or '<column>'}"))


def _copy(raw: Any, table: Table, names: list[str], sources: list[Source], wanted: int, progress: Progress | None) -> None:
    quoted = ", ".join(f'"{n}"' for n in names)
    last = time.monotonic()
    try:
        with raw.cursor() as cursor, cursor.copy(f"COPY {_qualified(table)} ({quoted}) FROM STDIN WITH (FREEZE)") as copy:
            write_row = copy.write_row
            for first in range(1, wanted + 1, BATCH_ROWS):
                n = min(BATCH_ROWS, wanted + 1 - first)
                for row in zip(*(source(first, n) for source in sources), strict=True):
                    write_row(row)
                if progress is not None and time.monotonic() - last >= PROGRESS_PERIOD_S:
                    last = time.monotonic()
                    progress(str(table.name), first + n - 1, wanted)
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        raise _refused(table, exc) from None


def fill(engine: Engine, workload: Workload, rows: dict[str, int], progress: Progress | None = None, analyze: bool = True) -> Loaded:
    """Every table of the workload with its rows, parents first, in one transaction; then VACUUM
    ANALYZE of the tables unless `analyze` is off.

    `engine`: a psycopg 3 engine (its COPY support); the connection is the parent's, so a
    Ctrl-C during the load cancels it like any other setup statement.
    """
    began = time.monotonic()
    rng = random.Random(0)  # the same data for the same models and scale
    loads: dict[str, TableLoad] = {}
    fanout: dict[str, Fanout] = {}
    # begin(): one transaction, committed at the end whatever ran through it. With connect() and a
    # commit(), a load that never executed through SQLAlchemy itself (every key a UUID: no setval)
    # began no SQLAlchemy transaction, so the commit was a no-op and the COPYs were rolled back.
    tables = workload.metadata.sorted_tables
    names = [_qualified(table) for table in tables]
    with engine.begin() as conn:
        raw: Any = conn.connection.dbapi_connection  # a psycopg.Connection: its cursor has copy()
        # Emptied in this transaction, a table takes COPY FREEZE: its rows are written frozen, and
        # no later VACUUM (ours, or autovacuum's in the run) rewrites every page to mark them so.
        conn.execute(text(f"TRUNCATE {', '.join(names)}"))
        # The keys are built after the rows, each by one sort: in memory, not in passes over temporary files.
        conn.execute(text(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'"))
        with bare(conn, names):
            for table in tables:
                start = time.monotonic()
                wanted = rows[str(table.name)]
                pk = _primary_key(table)
                columns, sources, parents = _sources(conn, workload, table, pk, rows, rng)
                _copy(raw, table, columns, sources, wanted, progress)
                if isinstance(pk.type, Integer):  # a serial or identity key carries on after the loaded rows
                    conn.execute(
                        text("SELECT setval(seq, :n) FROM pg_get_serial_sequence(:t, :c) AS seq WHERE seq IS NOT NULL"),
                        {"n": wanted, "t": _qualified(table), "c": pk.name},
                    )
                loads[str(table.name)] = TableLoad(wanted, time.monotonic() - start)
                fanout.update({name: picker.seen() for name, picker in parents.items()})
            built = time.monotonic()
        keys_s = time.monotonic() - built
    seconds = time.monotonic() - began
    return Loaded(loads, fanout, seconds, keys_s, vacuum_analyze(engine, workload) if analyze else None)


def _qualified(table: Table) -> str:
    return f'{SCHEMA}."{table.name}"'


def vacuum_analyze(engine: Engine, workload: Workload) -> float:
    """VACUUM ANALYZE every table of the workload (outside a transaction, as VACUUM must be); its seconds."""
    began = time.monotonic()
    names = ", ".join(_qualified(table) for table in workload.metadata.sorted_tables)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM ANALYZE {names}"))
    return time.monotonic() - began


