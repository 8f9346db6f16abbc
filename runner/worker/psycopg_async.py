"""psycopg 3's async connection behind the asyncpg methods the raw ops use (fetch, fetchrow,
fetchval, execute with $n parameters, transaction()), and the `$n` -> `%s` translation it and
`runner explain` need."""

from __future__ import annotations

import functools
import re
from typing import Any

DOLLAR = re.compile(r"\$(\d+)")


@functools.lru_cache(maxsize=1024)
def format_params(sql: str) -> tuple[str, tuple[int, ...]]:
    """`$n` placeholders -> psycopg's `%s`, with the order the arguments must be passed in."""
    order = tuple(int(n) - 1 for n in DOLLAR.findall(sql))
    if not order:  # no parameters: psycopg sends the text as it is, a literal % included
        return sql, order
    return DOLLAR.sub("%s", sql.replace("%", "%%")), order


@functools.lru_cache(maxsize=1024)
def _in_order(sql: str) -> tuple[str, tuple[int, ...] | None]:
    """format_params, with order None where the arguments go as they are ($1, $2, ... in turn)."""
    text, order = format_params(sql)
    return text, None if order == tuple(range(len(order))) else order


class PsycopgAsync:
    """psycopg 3's async connection behind the asyncpg methods the raw ops use."""

    __slots__ = ("conn",)

    def __init__(self, conn: Any) -> None:
        self.conn = conn  # autocommit: like asyncpg, a transaction only where one is begun

    # Each method makes the cursor and awaits its execute itself, as psycopg's own
    # AsyncConnection.execute does inside: calling that one (or a shared helper) puts one more
    # awaited frame under every statement, resumed at each of its waits for the socket, and
    # beside PostgreSQL on the same cores that frame cost several µs per op (BENCHMARKS.md, "Every layer at its own speed").
    # The arguments are put in psycopg's order here too, not by a helper: its call and the
    # star-call of its result cost ~1,100 instructions per statement (5 per tpcb op).
    # `args or None`: a statement without parameters goes as it is, a literal % included.
    async def execute(self, sql: str, *args: Any) -> str:
        text, order = _in_order(sql)
        cursor = self.conn.cursor()
        await cursor.execute(text, (args or None) if order is None else [args[i] for i in order])
        return cursor.statusmessage or ""

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        text, order = _in_order(sql)
        cursor = self.conn.cursor()
        await cursor.execute(text, (args or None) if order is None else [args[i] for i in order])
        return list(await cursor.fetchall())

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        text, order = _in_order(sql)
        cursor = self.conn.cursor()
        await cursor.execute(text, (args or None) if order is None else [args[i] for i in order])
        return await cursor.fetchone()

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    def transaction(self) -> Any:
        return self.conn.transaction()
