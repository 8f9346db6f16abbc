"""seed: the 2022 experiment's mixed ORM workload (see ../shared/SEED.md).

write: one session, add_all of three A with 2, 1 and 2 B children, commit (3 + 5 rows).
read:  select(A).options(selectinload(A.bs)).limit(10), every A and every B touched.
No index on b.a_id, exactly as the experiment had it.
"""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy import ForeignKey, MetaData, String, func, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload, sessionmaker

from workloads import SCHEMA, Op, Workload, register

CHILDREN_PER_A = (2, 1, 2)
READ_LIMIT = 10
DATA_MAX = 10_000_000


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

    id: Mapped[int] = mapped_column(primary_key=True)
    a_id: Mapped[int] = mapped_column(ForeignKey(A.id))
    data: Mapped[str | None] = mapped_column(String)


def _new_objects(rng: random.Random) -> list[A]:
    def text() -> str:
        return str(rng.randrange(DATA_MAX))

    return [A(data=text(), bs=[B(data=text()) for _ in range(n)]) for n in CHILDREN_PER_A]


READ_STATEMENT = select(A).options(selectinload(A.bs)).limit(READ_LIMIT)


async def write_async(sessions: async_sessionmaker, rng: random.Random) -> None:
    async with sessions() as session:
        session.add_all(_new_objects(rng))
        await session.commit()


async def read_async(sessions: async_sessionmaker, rng: random.Random) -> None:
    async with sessions() as session:
        result = await session.stream(READ_STATEMENT)
        async for a in result.scalars():
            for _b in a.bs:
                pass


def write_sync(sessions: sessionmaker, rng: random.Random) -> None:
    with sessions() as session:
        session.add_all(_new_objects(rng))
        session.commit()


def read_sync(sessions: sessionmaker, rng: random.Random) -> None:
    with sessions() as session:
        for a in session.scalars(READ_STATEMENT):
            for _b in a.bs:
                pass


WORKLOAD = register(
    Workload(
        name="seed",
        description=__doc__.splitlines()[0],
        metadata=Base.metadata,
        ops=(
            Op("read", "read", 1.0, read_async, read_sync),
            Op("write", "write", 1.0, write_async, write_sync),
        ),
        rows_per_op={"write": {"a": len(CHILDREN_PER_A), "b": sum(CHILDREN_PER_A)}},
    )
)
