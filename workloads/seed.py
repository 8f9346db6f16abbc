"""The 2022 experiment's mixed workload (see ../shared/SEED.md), and the same with an index.

write: one transaction adding three A with 2, 1 and 2 B children (3 + 5 rows).
read:  the first 10 A and their B (selectinload), every A and every B touched.
The seed has no index on b.a_id, exactly as the experiment had it, so every read scans b.
The core and raw layers send the same statements' equivalents through SQLAlchemy Core and
the driver itself (asyncpg, psycopg2).
"""

from __future__ import annotations

import functools
import random
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ForeignKey, Index, MetaData, String, Table, func, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from workloads import SCHEMA, Handle, Op, Workload, register

CHILDREN_PER_A = (2, 1, 2)
READ_LIMIT = 10
DATA_MAX = 10_000_000
A_SELECT_RAW = f"SELECT id, data, create_date FROM {SCHEMA}.a LIMIT {READ_LIMIT}"


def _text(rng: random.Random) -> str:
    return str(rng.randrange(DATA_MAX))


def _b_rows(a_ids: list[int], rng: random.Random) -> list[tuple[int, str]]:
    return [(a_id, _text(rng)) for a_id, n in zip(a_ids, CHILDREN_PER_A, strict=True) for _ in range(n)]


def _marks(count: int, style: str) -> list[str]:
    """The driver's parameter markers: $1, $2... (asyncpg) or %s (psycopg2)."""
    return [f"${i + 1}" if style == "dollar" else "%s" for i in range(count)]


def _values(rows: int, columns: int, style: str) -> str:
    """A VALUES list of `rows` tuples, numbered on from one tuple to the next."""
    marks = _marks(rows * columns, style)
    return ", ".join("(" + ", ".join(marks[r * columns : (r + 1) * columns]) + ")" for r in range(rows))


@functools.lru_cache(maxsize=64)  # built once per shape, as a hand-written script's constants
def _a_insert(style: str) -> str:
    return f"INSERT INTO {SCHEMA}.a (data) VALUES {_values(len(CHILDREN_PER_A), 1, style)} RETURNING id, create_date"


@functools.lru_cache(maxsize=64)  # built once per shape, as a hand-written script's constants
def _b_insert(style: str) -> str:
    return f"INSERT INTO {SCHEMA}.b (a_id, data) VALUES {_values(sum(CHILDREN_PER_A), 2, style)}"


@functools.lru_cache(maxsize=64)  # built once per shape, as a hand-written script's constants
def _b_select(count: int, style: str) -> str:
    return f"SELECT id, a_id, data FROM {SCHEMA}.b WHERE a_id IN ({', '.join(_marks(count, style))})"


def build(name: str, description: str, indexed: bool) -> Workload:
    """One variant of the seed workload, with its own models (tables differ only by an index)."""

    class Base(DeclarativeBase):
        metadata = MetaData(schema=SCHEMA)

    class A(Base):
        __tablename__ = "a"
        # eager_defaults: the server default comes back with the INSERT (the async version's mapping)
        __mapper_args__ = {"eager_defaults": True}

        id: Mapped[int] = mapped_column(primary_key=True)
        data: Mapped[str | None] = mapped_column(String)
        create_date: Mapped[datetime] = mapped_column(server_default=func.now())
        bs: Mapped[list[B]] = relationship()

    class B(Base):
        __tablename__ = "b"
        __table_args__ = (Index("b_a_id", "a_id"),) if indexed else ()

        id: Mapped[int] = mapped_column(primary_key=True)
        a_id: Mapped[int] = mapped_column(ForeignKey(A.id))
        data: Mapped[str | None] = mapped_column(String)

    a_table, b_table = cast(Table, A.__table__), cast(Table, B.__table__)
    read_statement = select(A).options(selectinload(A.bs)).limit(READ_LIMIT)

    def new_objects(rng: random.Random) -> list[A]:
        return [A(data=_text(rng), bs=[B(data=_text(rng)) for _ in range(n)]) for n in CHILDREN_PER_A]

    # --- orm: the seed's own code ---
    async def write_orm_async(handle: Handle, rng: random.Random) -> None:
        async with handle.sessions() as session:
            session.add_all(new_objects(rng))
            await session.commit()

    async def read_orm_async(handle: Handle, rng: random.Random) -> None:
        async with handle.sessions() as session:
            result = await session.stream(read_statement)
            async for a in result.scalars():
                for _b in a.bs:
                    pass

    def write_orm_sync(handle: Handle, rng: random.Random) -> None:
        with handle.sessions() as session:
            session.add_all(new_objects(rng))
            session.commit()

    def read_orm_sync(handle: Handle, rng: random.Random) -> None:
        with handle.sessions() as session:
            for a in session.scalars(read_statement):
                for _b in a.bs:
                    pass

    # --- core: the same statements as SQLAlchemy Core, no identity map ---
    a_insert = insert(a_table).returning(a_table.c.id, a_table.c.create_date, sort_by_parameter_order=True)
    a_select = select(a_table).limit(READ_LIMIT)

    def b_select(ids: list[int]) -> Any:
        return select(b_table).where(b_table.c.a_id.in_(ids))

    async def write_core_async(handle: Handle, rng: random.Random) -> None:
        async with handle.engine.begin() as conn:
            ids = [row.id for row in await conn.execute(a_insert, [{"data": _text(rng)} for _ in CHILDREN_PER_A])]
            await conn.execute(insert(b_table), [{"a_id": a, "data": d} for a, d in _b_rows(ids, rng)])

    async def read_core_async(handle: Handle, rng: random.Random) -> None:
        async with handle.engine.connect() as conn:
            ids = [row.id for row in await conn.execute(a_select)]
            if ids:
                (await conn.execute(b_select(ids))).all()

    def write_core_sync(handle: Handle, rng: random.Random) -> None:
        with handle.engine.begin() as conn:
            ids = [row.id for row in conn.execute(a_insert, [{"data": _text(rng)} for _ in CHILDREN_PER_A])]
            conn.execute(insert(b_table), [{"a_id": a, "data": d} for a, d in _b_rows(ids, rng)])

    def read_core_sync(handle: Handle, rng: random.Random) -> None:
        with handle.engine.connect() as conn:
            ids = [row.id for row in conn.execute(a_select)]
            if ids:
                conn.execute(b_select(ids)).all()

    # --- raw: the driver itself (asyncpg's API, or DB-API in sync mode), no SQLAlchemy ---

    async def write_raw_async(handle: Handle, rng: random.Random) -> None:
        async with handle.raw() as conn, conn.transaction():
            rows = await conn.fetch(_a_insert("dollar"), *(_text(rng) for _ in CHILDREN_PER_A))
            values = [v for pair in _b_rows([r[0] for r in rows], rng) for v in pair]
            await conn.execute(_b_insert("dollar"), *values)

    async def read_raw_async(handle: Handle, rng: random.Random) -> None:
        async with handle.raw() as conn:
            await conn.execute("BEGIN")
            try:
                ids = [row[0] for row in await conn.fetch(A_SELECT_RAW)]
                if ids:
                    await conn.fetch(_b_select(len(ids), "dollar"), *ids)
            finally:
                await conn.execute("ROLLBACK")

    def write_raw_sync(handle: Handle, rng: random.Random) -> None:
        with handle.raw() as conn:
            with conn.cursor() as cur:
                cur.execute(_a_insert("format"), [_text(rng) for _ in CHILDREN_PER_A])
                rows = _b_rows([r[0] for r in cur.fetchall()], rng)
                cur.execute(_b_insert("format"), [v for r in rows for v in r])
            conn.commit()

    def read_raw_sync(handle: Handle, rng: random.Random) -> None:
        with handle.raw() as conn:
            with conn.cursor() as cur:
                cur.execute(A_SELECT_RAW)
                ids = [row[0] for row in cur.fetchall()]
                if ids:
                    cur.execute(_b_select(len(ids), "format"), ids)
                    cur.fetchall()
            conn.rollback()

    return Workload(
        name=name,
        description=description,
        metadata=Base.metadata,
        ops=(
            Op("read", "read", 1.0, (read_orm_async, read_orm_sync), (read_core_async, read_core_sync), (read_raw_async, read_raw_sync)),
            Op("write", "write", 1.0, (write_orm_async, write_orm_sync), (write_core_async, write_core_sync), (write_raw_async, write_raw_sync)),
        ),
        rows_per_op={"write": {"a": len(CHILDREN_PER_A), "b": sum(CHILDREN_PER_A)}},
    )


SEED = register(build("seed", "the seed experiment: ORM reads and writes, no index on b.a_id", indexed=False))
SEED_INDEXED = register(build("seed-indexed", "the seed with an index on b.a_id", indexed=True))
