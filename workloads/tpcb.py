"""tpcb: pgbench's default transaction (TPC-B-like) at scale 1: three updates, a select, an insert."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from operator import itemgetter

from sqlalchemy import Connection, Integer, MetaData, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from workloads import SCHEMA, Handle, Op, Workload, register

BRANCHES, TELLERS, ACCOUNTS = 1, 10, 100_000  # pgbench -s 1


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class Branch(Base):
    __tablename__ = "branches"
    bid: Mapped[int] = mapped_column(primary_key=True)
    bbalance: Mapped[int] = mapped_column(Integer)
    filler: Mapped[str | None] = mapped_column(String(88))


class Teller(Base):
    __tablename__ = "tellers"
    tid: Mapped[int] = mapped_column(primary_key=True)
    bid: Mapped[int] = mapped_column(Integer)
    tbalance: Mapped[int] = mapped_column(Integer)
    filler: Mapped[str | None] = mapped_column(String(84))


class Account(Base):
    __tablename__ = "accounts"
    aid: Mapped[int] = mapped_column(primary_key=True)
    bid: Mapped[int] = mapped_column(Integer)
    abalance: Mapped[int] = mapped_column(Integer)
    filler: Mapped[str | None] = mapped_column(String(84))


class History(Base):
    __tablename__ = "history"
    id: Mapped[int] = mapped_column(primary_key=True)  # pgbench's history has none; the ORM needs one
    tid: Mapped[int] = mapped_column(Integer)
    bid: Mapped[int] = mapped_column(Integer)
    aid: Mapped[int] = mapped_column(Integer)
    delta: Mapped[int] = mapped_column(Integer)
    mtime: Mapped[str] = mapped_column(String)


# pgbench's script, in the driver's two parameter styles.
STATEMENTS = [
    f"UPDATE {SCHEMA}.accounts SET abalance = abalance + :delta WHERE aid = :aid",
    f"SELECT abalance FROM {SCHEMA}.accounts WHERE aid = :aid",
    f"UPDATE {SCHEMA}.tellers SET tbalance = tbalance + :delta WHERE tid = :tid",
    f"UPDATE {SCHEMA}.branches SET bbalance = bbalance + :delta WHERE bid = :bid",
    f"INSERT INTO {SCHEMA}.history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, now()::text)",
]
TEXT_STATEMENTS = [text(s) for s in STATEMENTS]
ORDER = ("tid", "bid", "aid", "delta")


def _dollar(sql: str) -> tuple[str, list[str]]:
    """`:name` placeholders -> `$n` (asyncpg), with the parameter names in order."""
    names: list[str] = []
    for name in sorted(ORDER, key=lambda n: sql.find(":" + n)):
        if ":" + name in sql:
            names.append(name)
            sql = sql.replace(":" + name, f"${len(names)}")
    return sql, names


def _arguments(names: list[str]) -> Callable[[dict[str, int]], tuple[int, ...]]:
    """The statement's arguments from the op's draws, in its $n order, by one C call per
    statement (itemgetter) instead of a generator: the raw op is the harness's parity yardstick."""
    if len(names) == 1:
        name = names[0]
        return lambda params: (params[name],)
    return itemgetter(*names)


DOLLAR = [_dollar(s) for s in STATEMENTS]
DOLLAR_CALLS = [(sql, _arguments(names)) for sql, names in DOLLAR]
# The same for the DB-API drivers: positional %s, as a hand-written psycopg2 script passes them.
# Named %(aid)s parameters made psycopg2 parse and hash every name of every statement again on
# every op: 24,000 more instructions per op than positional ones (BENCHMARKS.md, "Every layer at its own speed").
FORMAT_CALLS = [(re.sub(r"\$\d+", "%s", sql), arguments) for sql, arguments in DOLLAR_CALLS]


def _params(handle: Handle) -> dict[str, int]:
    """pgbench's draws; the account through --keys (pgbench's own skew option applies to aid too)."""
    rng = handle.rng
    return {
        "aid": handle.keys.pick(ACCOUNTS),
        "tid": rng.randint(1, TELLERS),
        "bid": BRANCHES,  # pgbench draws random(1, :scale), which at scale 1 is 1: no draw to pay for
        "delta": rng.randint(-5000, 5000),
    }


def populate(conn: Connection) -> dict[str, int]:
    conn.execute(text(f"INSERT INTO {SCHEMA}.branches SELECT g, 0 FROM generate_series(1, {BRANCHES}) g"))
    conn.execute(text(f"INSERT INTO {SCHEMA}.tellers SELECT g, 1, 0 FROM generate_series(1, {TELLERS}) g"))
    conn.execute(text(f"INSERT INTO {SCHEMA}.accounts SELECT g, 1, 0, '' FROM generate_series(1, {ACCOUNTS}) g"))
    return {"branches": BRANCHES, "tellers": TELLERS, "accounts": ACCOUNTS}


async def orm_async(handle: Handle, rng: random.Random) -> None:
    params = _params(handle)
    async with handle.sessions() as session:
        for statement in TEXT_STATEMENTS:
            await session.execute(statement, params)
        await session.commit()


def orm_sync(handle: Handle, rng: random.Random) -> None:
    params = _params(handle)
    with handle.sessions() as session:
        for statement in TEXT_STATEMENTS:
            session.execute(statement, params)
        session.commit()


async def core_async(handle: Handle, rng: random.Random) -> None:
    params = _params(handle)
    async with handle.engine.begin() as conn:
        for statement in TEXT_STATEMENTS:
            await conn.execute(statement, params)


def core_sync(handle: Handle, rng: random.Random) -> None:
    params = _params(handle)
    with handle.engine.begin() as conn:
        for statement in TEXT_STATEMENTS:
            conn.execute(statement, params)


async def raw_async(handle: Handle, rng: random.Random) -> None:
    params = _params(handle)
    async with handle.raw() as conn, conn.transaction():
        for sql, arguments in DOLLAR_CALLS:
            await conn.execute(sql, *arguments(params))


def raw_sync(handle: Handle, rng: random.Random) -> None:
    params = _params(handle)
    with handle.raw() as conn:
        with conn.cursor() as cur:
            for sql, arguments in FORMAT_CALLS:
                cur.execute(sql, arguments(params))
        conn.commit()


WORKLOAD = register(
    Workload(
        name="tpcb",
        description=__doc__.split(":", 1)[1].strip(),
        metadata=Base.metadata,
        ops=(Op("tpcb", "write", 1.0, (orm_async, orm_sync), (core_async, core_sync), (raw_async, raw_sync)),),
        rows_per_op={"tpcb": {"history": 1}},
        populate=populate,
    )
)
