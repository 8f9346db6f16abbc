"""The seed's "async chunked 40" approach as a plain hand-written script (the parity baseline).

    DATABASE_URL=DSN python bench/seed_plain.py OPS [CHUNK] [SEED] [LOOP]   (LOOP: asyncio or uvloop)

Prints one JSON line: ops, wall_s (perf_counter around the op loop only), ops_per_s. It keeps its
tables in its own schema `seed_plain`, dropped and created at the start, as the seed did.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from datetime import datetime

import orjson
from sqlalchemy import ForeignKey, MetaData, String, func, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload


class Base(DeclarativeBase):
    metadata = MetaData(schema="seed_plain")


class A(Base):
    __tablename__ = "a"
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


async def main(dsn: str, ops: int, chunk: int, seed: int) -> None:
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"), pool_size=chunk)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS seed_plain CASCADE"))
        await conn.execute(text("CREATE SCHEMA seed_plain"))
        await conn.run_sync(Base.metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    rng = random.Random(seed)

    async def write() -> None:
        async with sessions() as session:
            session.add_all(
                [A(data=str(rng.randrange(10**7)), bs=[B(data=str(rng.randrange(10**7))) for _ in range(n)]) for n in (2, 1, 2)]
            )
            await session.commit()

    async def read() -> None:
        async with sessions() as session:
            result = await session.stream(select(A).options(selectinload(A.bs)).limit(10))
            async for a in result.scalars():
                for _b in a.bs:
                    pass

    plan = [read if rng.random() < 0.5 else write for _ in range(ops)]
    start = time.perf_counter()
    for i in range(0, ops, chunk):
        await asyncio.gather(*(op() for op in plan[i : i + chunk]))
    wall_s = time.perf_counter() - start
    await engine.dispose()
    sys.stdout.write(orjson.dumps({"ops": ops, "wall_s": wall_s, "ops_per_s": ops / wall_s}).decode() + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    # The DSN from the environment: a command line is every local user's to read, and it holds a password.
    coro = main(os.environ["DATABASE_URL"], int(args[0]), int(args[1]) if len(args) > 1 else 40, int(args[2]) if len(args) > 2 else 1)
    if len(args) > 3 and args[3] == "uvloop":
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)
