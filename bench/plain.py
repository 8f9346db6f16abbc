"""Hand-written baselines for bench/parity.py: each layer and driver with nothing of the runner.

    python bench/plain.py --cell raw-asyncpg --workload tpcb --ops 20000 --concurrency 40 --dsn DSN

Each cell runs the workload's SQL the way a careful script would, with no runner code: a
connection per in-flight slot opened by the slot itself (as the runner's pool opens its
connections on first use), every slot taking the next op until the count is reached, and
`perf_counter` around the whole. Prints {"ops_per_s": ...}. The tables must exist and be freshly
filled (bench/parity.py does that with the runner's own setup; setup is not measured).

Cells: raw-asyncpg, raw-psycopg (psycopg 3, async), raw-psycopg2 (threads), core and orm
(SQLAlchemy on asyncpg). The SQL is the same as the runner's workloads, written out again here
on purpose: a baseline must not borrow the code it is measured against.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, cast

import asyncpg
import psycopg
import psycopg2
import uvloop
from sqlalchemy import ForeignKey, MetaData, String, Table, func, insert, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

# --- tpcb: pgbench's script at scale 1 -------------------------------------------------------
TPCB = [
    "UPDATE runner.accounts SET abalance = abalance + {delta} WHERE aid = {aid}",
    "SELECT abalance FROM runner.accounts WHERE aid = {aid}",
    "UPDATE runner.tellers SET tbalance = tbalance + {delta} WHERE tid = {tid}",
    "UPDATE runner.branches SET bbalance = bbalance + {delta} WHERE bid = {bid}",
    "INSERT INTO runner.history (tid, bid, aid, delta, mtime) VALUES ({tid}, {bid}, {aid}, {delta}, now()::text)",
]
TPCB_ORDER = [["delta", "aid"], ["aid"], ["delta", "tid"], ["delta", "bid"], ["tid", "bid", "aid", "delta"]]


def _numbered(template: str, names: list[str], style: str) -> str:
    marks = {name: (f"${i + 1}" if style == "dollar" else "%s") for i, name in enumerate(names)}
    return template.format(**marks)


TPCB_DOLLAR = [_numbered(s, n, "dollar") for s, n in zip(TPCB, TPCB_ORDER, strict=True)]
TPCB_FORMAT = [_numbered(s, n, "format") for s, n in zip(TPCB, TPCB_ORDER, strict=True)]
TPCB_NAMED = [text(s.format(**{n: f":{n}" for n in ("delta", "aid", "tid", "bid")})) for s in TPCB]


def tpcb_params(rng: random.Random) -> dict[str, int]:
    return {"aid": rng.randint(1, 100_000), "tid": rng.randint(1, 10), "bid": 1, "delta": rng.randint(-5000, 5000)}


def tpcb_args(params: dict[str, int]) -> list[list[int]]:
    return [[params[n] for n in names] for names in TPCB_ORDER]


# --- seed: three A with 2, 1, 2 B children; or 10 A and their B ----------------------------
A_INSERT_DOLLAR = "INSERT INTO runner.a (data) VALUES ($1), ($2), ($3) RETURNING id, create_date"
B_INSERT_DOLLAR = "INSERT INTO runner.b (a_id, data) VALUES ($1, $2), ($3, $4), ($5, $6), ($7, $8), ($9, $10)"
A_SELECT = "SELECT id, data, create_date FROM runner.a LIMIT 10"
CHILDREN = (2, 1, 2)


def _to_format(sql: str) -> str:
    for i in range(10, 0, -1):
        sql = sql.replace(f"${i}", "%s")
    return sql


def b_select(count: int, style: str) -> str:
    marks = ", ".join(f"${i + 1}" if style == "dollar" else "%s" for i in range(count))
    return f"SELECT id, a_id, data FROM runner.b WHERE a_id IN ({marks})"


def b_values(ids: list[int], rng: random.Random) -> list[Any]:
    return [v for a_id, n in zip(ids, CHILDREN, strict=True) for _ in range(n) for v in (a_id, str(rng.randrange(10_000_000)))]


class Base(DeclarativeBase):
    metadata = MetaData(schema="runner")


class A(Base):
    __tablename__ = "a"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012
    id: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[str | None] = mapped_column(String)
    create_date: Mapped[datetime] = mapped_column(server_default=func.now())
    bs: Mapped[list[B]] = relationship()


class B(Base):
    __tablename__ = "b"
    id: Mapped[int] = mapped_column(primary_key=True)
    a_id: Mapped[int] = mapped_column(ForeignKey(A.id))
    data: Mapped[str | None] = mapped_column(String)


# --- the cells ------------------------------------------------------------------------------
Op = Callable[[Any, random.Random], Awaitable[None]]


async def _slots(concurrency: int, ops: int, connect: Callable[[], Awaitable[Any]], op: Op, close: Callable[[Any], Awaitable[None]]) -> float:
    remaining = [ops]

    async def slot(index: int) -> None:
        rng = random.Random(index)
        conn = await connect()
        try:
            while remaining[0] > 0:
                remaining[0] -= 1
                await op(conn, rng)
        finally:
            await close(conn)

    start = time.perf_counter()
    await asyncio.gather(*(slot(i) for i in range(concurrency)))
    return ops / (time.perf_counter() - start)


async def raw_asyncpg(args: argparse.Namespace) -> float:
    async def tpcb(conn: asyncpg.Connection, rng: random.Random) -> None:
        async with conn.transaction():
            for sql, values in zip(TPCB_DOLLAR, tpcb_args(tpcb_params(rng)), strict=True):
                await conn.execute(sql, *values)

    async def seed(conn: asyncpg.Connection, rng: random.Random) -> None:
        if rng.random() < 0.5:
            await conn.execute("BEGIN")
            try:
                ids = [r[0] for r in await conn.fetch(A_SELECT)]
                if ids:
                    await conn.fetch(b_select(len(ids), "dollar"), *ids)
            finally:
                await conn.execute("ROLLBACK")
        else:
            async with conn.transaction():
                rows = await conn.fetch(A_INSERT_DOLLAR, *(str(rng.randrange(10_000_000)) for _ in CHILDREN))
                await conn.execute(B_INSERT_DOLLAR, *b_values([r[0] for r in rows], rng))

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(args.dsn, server_settings={"application_name": "plain"})

    async def close(conn: asyncpg.Connection) -> None:
        await conn.close()

    return await _slots(args.concurrency, args.ops, connect, tpcb if args.workload == "tpcb" else seed, close)


async def raw_psycopg(args: argparse.Namespace) -> float:
    async def tpcb(conn: psycopg.AsyncConnection[Any], rng: random.Random) -> None:
        async with conn.transaction():
            for sql, values in zip(TPCB_FORMAT, tpcb_args(tpcb_params(rng)), strict=True):
                await conn.execute(sql, values)

    async def seed(conn: psycopg.AsyncConnection[Any], rng: random.Random) -> None:
        if rng.random() < 0.5:
            await conn.execute("BEGIN")
            try:
                ids = [r[0] for r in await (await conn.execute(A_SELECT)).fetchall()]
                if ids:
                    await (await conn.execute(b_select(len(ids), "format"), ids)).fetchall()
            finally:
                await conn.execute("ROLLBACK")
        else:
            async with conn.transaction():
                cur = await conn.execute(_to_format(A_INSERT_DOLLAR), [str(rng.randrange(10_000_000)) for _ in CHILDREN])
                ids = [r[0] for r in await cur.fetchall()]
                await conn.execute(_to_format(B_INSERT_DOLLAR), b_values(ids, rng))

    async def connect() -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(args.dsn, autocommit=True, application_name="plain")

    async def close(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.close()

    return await _slots(args.concurrency, args.ops, connect, tpcb if args.workload == "tpcb" else seed, close)


def raw_psycopg2(args: argparse.Namespace) -> float:
    remaining = [args.ops]
    lock = threading.Lock()

    def tpcb(cur: Any, rng: random.Random) -> None:
        for sql, values in zip(TPCB_FORMAT, tpcb_args(tpcb_params(rng)), strict=True):
            cur.execute(sql, values)

    def seed(cur: Any, rng: random.Random) -> None:
        if rng.random() < 0.5:
            cur.execute(A_SELECT)
            ids = [r[0] for r in cur.fetchall()]
            if ids:
                cur.execute(b_select(len(ids), "format"), ids)
                cur.fetchall()
        else:
            cur.execute(_to_format(A_INSERT_DOLLAR), [str(rng.randrange(10_000_000)) for _ in CHILDREN])
            cur.execute(_to_format(B_INSERT_DOLLAR), b_values([r[0] for r in cur.fetchall()], rng))

    op = tpcb if args.workload == "tpcb" else seed

    def slot(index: int) -> None:
        rng = random.Random(index)
        conn = psycopg2.connect(args.dsn, application_name="plain")
        try:
            while True:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                with conn.cursor() as cur:
                    op(cur, rng)
                conn.commit()
        finally:
            conn.close()

    threads = [threading.Thread(target=slot, args=(i,)) for i in range(args.concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return args.ops / (time.perf_counter() - start)


async def sqlalchemy(args: argparse.Namespace, orm: bool) -> float:
    engine = create_async_engine(args.dsn.replace("postgresql://", "postgresql+asyncpg://"), pool_size=args.concurrency, max_overflow=0)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    read = select(A).options(selectinload(A.bs)).limit(10)

    async def tpcb(_: None, rng: random.Random) -> None:
        params = tpcb_params(rng)
        if orm:
            async with sessions() as session:
                for statement in TPCB_NAMED:
                    await session.execute(statement, params)
                await session.commit()
        else:
            async with engine.begin() as conn:
                for statement in TPCB_NAMED:
                    await conn.execute(statement, params)

    a_table, b_table = cast(Table, A.__table__), cast(Table, B.__table__)
    a_insert = insert(a_table).returning(a_table.c.id, a_table.c.create_date, sort_by_parameter_order=True)

    async def seed_core(rng: random.Random) -> None:
        if rng.random() < 0.5:
            async with engine.connect() as conn:
                ids = [row.id for row in await conn.execute(select(a_table).limit(10))]
                if ids:
                    (await conn.execute(select(b_table).where(b_table.c.a_id.in_(ids)))).all()
        else:
            async with engine.begin() as conn:
                ids = [row.id for row in await conn.execute(a_insert, [{"data": str(rng.randrange(10_000_000))} for _ in CHILDREN])]
                values = b_values(ids, rng)
                await conn.execute(insert(b_table), [{"a_id": values[i], "data": values[i + 1]} for i in range(0, len(values), 2)])

    async def seed(_: None, rng: random.Random) -> None:
        if not orm:
            await seed_core(rng)
            return
        async with sessions() as session:
            if rng.random() < 0.5:
                async for a in (await session.stream(read)).scalars():
                    for _b in a.bs:
                        pass
            else:
                session.add_all([A(data=str(rng.randrange(10_000_000)), bs=[B(data=str(rng.randrange(10_000_000))) for _ in range(n)])
                                 for n in CHILDREN])
                await session.commit()

    async def nothing() -> None:
        return None

    async def none(_: None) -> None:
        return None

    try:
        return await _slots(args.concurrency, args.ops, nothing, tpcb if args.workload == "tpcb" else seed, none)
    finally:
        await engine.dispose()


def run_cell(args: argparse.Namespace) -> float:
    """args.cell's loop (args: cell, workload, ops, concurrency, dsn); its ops per second."""
    if args.cell == "raw-psycopg2":
        return raw_psycopg2(args)
    coroutine = {"raw-asyncpg": raw_asyncpg, "raw-psycopg": raw_psycopg}.get(args.cell)
    return uvloop.run(coroutine(args) if coroutine else sqlalchemy(args, orm=args.cell == "orm"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", required=True, choices=("raw-asyncpg", "raw-psycopg", "raw-psycopg2", "core", "orm"))
    parser.add_argument("--workload", required=True, choices=("tpcb", "seed"))
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL (argv is every local user's to read)")
    args = parser.parse_args()
    cpu_start = time.process_time()
    rate = run_cell(args)
    cpu_us_per_op = (time.process_time() - cpu_start) * 1e6 / args.ops  # the whole process, as the runner's worker CPU
    print(json.dumps({"cell": args.cell, "workload": args.workload, "ops_per_s": round(rate, 1), "cpu_us_per_op": round(cpu_us_per_op, 1)}))


if __name__ == "__main__":
    main()
