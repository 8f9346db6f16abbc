"""point-select: read-only primary-key lookups on a 10,000-row table (the cheapest op there is)."""

from __future__ import annotations

import random

from sqlalchemy import Connection, MetaData, String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from workloads import SCHEMA, Handle, Op, Workload, register

ITEMS = 10_000


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class Item(Base):
    __tablename__ = "item"

    id: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[str] = mapped_column(String)


RAW_SQL = {"dollar": f"SELECT id, data FROM {SCHEMA}.item WHERE id = $1", "format": f"SELECT id, data FROM {SCHEMA}.item WHERE id = %s"}


def _id(handle: Handle) -> int:
    return int(handle.keys.pick(ITEMS))  # --keys: uniform by default


def populate(conn: Connection) -> dict[str, int]:
    conn.execute(text(f"INSERT INTO {SCHEMA}.item SELECT g, md5(g::text) FROM generate_series(1, {ITEMS}) AS g"))
    return {"item": ITEMS}


async def orm_async(handle: Handle, rng: random.Random) -> None:
    async with handle.sessions() as session:
        await session.get(Item, _id(handle))


def orm_sync(handle: Handle, rng: random.Random) -> None:
    with handle.sessions() as session:
        session.get(Item, _id(handle))


def _core_statement(handle: Handle):  # type: ignore[no-untyped-def]
    return select(Item.__table__).where(Item.__table__.c.id == _id(handle))


async def core_async(handle: Handle, rng: random.Random) -> None:
    async with handle.engine.connect() as conn:
        (await conn.execute(_core_statement(handle))).first()


def core_sync(handle: Handle, rng: random.Random) -> None:
    with handle.engine.connect() as conn:
        conn.execute(_core_statement(handle)).first()


async def raw_async(handle: Handle, rng: random.Random) -> None:
    async with handle.raw() as conn:
        await conn.fetchrow(RAW_SQL["dollar"], _id(handle))


def raw_sync(handle: Handle, rng: random.Random) -> None:
    with handle.raw() as conn:
        with conn.cursor() as cur:
            cur.execute(RAW_SQL["format"], (_id(handle),))
            cur.fetchone()
        conn.rollback()


WORKLOAD = register(
    Workload(
        name="point-select",
        description=__doc__.split(":", 1)[1].strip(),
        metadata=Base.metadata,
        ops=(Op("select", "read", 1.0, (orm_async, orm_sync), (core_async, core_sync), (raw_async, raw_sync)),),
        populate=populate,
    )
)
