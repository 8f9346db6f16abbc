"""sleep: one statement that waits 20 ms on the server (SELECT pg_sleep), touching no table: a service
whose capacity is known in advance (ops in flight / 20 ms), for checking the tool's own answers."""

from __future__ import annotations

from sqlalchemy import MetaData, text

from workloads import SCHEMA, Context, workload

SLEEP_S = 0.02
SQL = f"SELECT pg_sleep({SLEEP_S})"

bench = workload("sleep", MetaData(schema=SCHEMA), description=" ".join(__doc__.split(":", 1)[1].split()))


@bench.read(layers=("orm", "core"))  # the ORM adds nothing to one text statement
async def sleep(ctx: Context) -> None:
    async with ctx.engine.connect() as conn:
        await conn.execute(text(SQL))


@bench.read(layers=("orm", "core"), name="sleep")
def sleep_sync(ctx: Context) -> None:
    with ctx.engine.connect() as conn:
        conn.execute(text(SQL))


@bench.read(layers=("raw",), name="sleep")
async def sleep_raw(ctx: Context) -> None:
    async with ctx.raw() as conn:
        await conn.execute(SQL)


@bench.read(layers=("raw",), name="sleep")
def sleep_raw_sync(ctx: Context) -> None:
    with ctx.raw() as conn:
        with conn.cursor() as cur:
            cur.execute(SQL)
        conn.rollback()


WORKLOAD = bench.build()
