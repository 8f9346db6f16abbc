"""sleep: one statement that waits 20 ms on the server (SELECT pg_sleep), touching no table: a service
whose capacity is known in advance (ops in flight / 20 ms), for checking the tool's own answers."""

from __future__ import annotations

import random

from sqlalchemy import MetaData, text

from workloads import SCHEMA, Handle, Op, Workload, register

SLEEP_S = 0.02
SQL = f"SELECT pg_sleep({SLEEP_S})"


async def sql_async(handle: Handle, rng: random.Random) -> None:
    async with handle.engine.connect() as conn:
        await conn.execute(text(SQL))


def sql_sync(handle: Handle, rng: random.Random) -> None:
    with handle.engine.connect() as conn:
        conn.execute(text(SQL))


async def raw_async(handle: Handle, rng: random.Random) -> None:
    async with handle.raw() as conn:
        await conn.execute(SQL)


def raw_sync(handle: Handle, rng: random.Random) -> None:
    with handle.raw() as conn:
        with conn.cursor() as cur:
            cur.execute(SQL)
        conn.rollback()


WORKLOAD = register(
    Workload(
        name="sleep",
        description=" ".join(__doc__.split(":", 1)[1].split()),
        metadata=MetaData(schema=SCHEMA),
        # The ORM adds nothing to one text statement: the orm layer is the core one.
        ops=(Op("sleep", "read", 1.0, (sql_async, sql_sync), (sql_async, sql_sync), (raw_async, raw_sync)),),
    )
)
