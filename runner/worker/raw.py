"""The raw layer: the driver itself, with no SQLAlchemy in the way.

A raw op borrows one connection of the worker's driver from a raw pool (runner.worker.rawpool)
for the length of the op: what a careful hand-written script does, a connection per in-flight
lane, with the same sizing, session settings and preflight the other layers have.

Async ops get asyncpg's connection API (fetch, fetchrow, fetchval, execute with $n parameters,
transaction()); with --driver psycopg a thin adapter gives psycopg 3's async connection the same
methods. Sync ops get a DB-API connection (psycopg2 or psycopg 3): cursor(), commit(), rollback().
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import URL

from runner.dsn import driver_args, settings_options
from runner.worker.engine import DISPOSE_TIMEOUT_S, FLUSH_STATS_SQL, settle_async, settle_sync
from runner.worker.plan import WorkerPlan
from runner.worker.rawpool import AsyncRawPool, SyncRawPool
from workloads import Handle

ConnectAsync = Callable[[], Awaitable[Any]]
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


def connect_kwargs(url: URL, args: dict[str, Any], database: str) -> dict[str, Any]:
    """The URL's parts and the DSN's own parameters as one driver's keywords (`database` is its name
    for the database): a parameter the DSN's query names (`?password=`) wins over the URL's part,
    as in libpq."""
    kwargs = {"host": url.host, "port": url.port, "user": url.username, "password": url.password, database: url.database, **args}
    return {name: value for name, value in kwargs.items() if value is not None}


class AsyncDriver:
    """How to open, check, restore and close one async driver's connections."""

    def __init__(self, name: str, dsn: str, settings: dict[str, str], statement_cache: bool, prepare_threshold: int | None) -> None:
        url, args, _ = driver_args(dsn, name)
        self.name = name
        self._url, self._args, self._settings, self._statement_cache = url, args, settings, statement_cache
        self._prepare_threshold = prepare_threshold

    async def connect(self) -> Any:
        url = self._url
        if self.name == "asyncpg":
            import asyncpg

            args = {k: v for k, v in self._args.items() if k != "prepared_statement_cache_size"}  # SQLAlchemy's, not asyncpg's
            if not self._statement_cache:
                args["statement_cache_size"] = 0
            return await asyncpg.connect(**connect_kwargs(url, args, "database"), server_settings=self._settings)
        import psycopg

        conn = await psycopg.AsyncConnection.connect(
            **connect_kwargs(url, self._args, "dbname"), autocommit=True, options=settings_options(self._settings),
            prepare_threshold=self._prepare_threshold,
        )
        return PsycopgAsync(conn)

    async def restore(self, conn: Any) -> bool:
        try:
            if self.name == "asyncpg":
                if conn.is_closed():
                    return False
                if conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
                return True
            raw = conn.conn
            if raw.closed:
                return False
            if raw.info.transaction_status != 0:  # psycopg.pq.TransactionStatus.IDLE
                await raw.rollback()
            return True
        except Exception:  # unusable after all
            return False

    async def discard(self, conn: Any) -> None:
        raw = conn if self.name == "asyncpg" else conn.conn
        try:
            if self.name == "asyncpg":
                raw.terminate()  # no round trip: it may be mid-query, or dead
            else:
                await raw.close()
        except Exception:  # already gone
            pass

    async def close(self, conn: Any) -> None:
        try:
            await (conn.close() if self.name == "asyncpg" else conn.conn.close())
        except Exception:
            pass

    async def statement(self, conn: Any, sql: str) -> None:
        try:
            await conn.execute(sql)
        except Exception:  # e.g. pg_stat_force_next_flush before PostgreSQL 15
            await self.restore(conn)

    async def settings(self, conn: Any, names: list[str]) -> dict[str, str]:
        rows = await conn.fetch("SELECT name, current_setting(name) FROM unnest($1::text[]) AS name", names)
        return {str(name): str(value) for name, value in rows}


class SyncDriver:
    """psycopg2 or psycopg 3 (sync): DB-API connections, a transaction begun by the first statement."""

    def __init__(self, name: str, dsn: str, settings: dict[str, str], prepare_threshold: int | None) -> None:
        url, args, _ = driver_args(dsn, name)
        self.name = name
        self._kwargs = {**connect_kwargs(url, args, "dbname"), "options": settings_options(settings)}
        self._prepare_threshold = prepare_threshold

    def connect(self) -> Any:
        if self.name == "psycopg2":
            import psycopg2

            return psycopg2.connect(**self._kwargs)
        import psycopg

        return psycopg.connect(prepare_threshold=self._prepare_threshold, **self._kwargs)

    def restore(self, conn: Any) -> bool:
        try:
            if conn.closed:
                return False
            conn.rollback()
            return True
        except Exception:
            return False

    def close(self, conn: Any) -> None:
        try:
            conn.close()
        except Exception:
            pass

    def statement(self, conn: Any, sql: str) -> None:
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
            conn.rollback()
        except Exception:
            self.restore(conn)

    def settings(self, conn: Any, names: list[str]) -> dict[str, str]:
        with conn.cursor() as cur:
            cur.execute("SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name", (names,))
            rows = cur.fetchall()
        conn.rollback()
        return {str(name): str(value) for name, value in rows}


def _settings_names(plan: WorkerPlan) -> list[str]:
    return sorted(plan.session_settings)


def _session_settings(plan: WorkerPlan) -> dict[str, str]:
    return {**plan.session_settings, "application_name": f"runner-worker-{plan.worker_id}"}


class AsyncRawBackend:
    """The raw layer in the async modes: asyncpg, or psycopg 3 behind asyncpg's methods."""

    def __init__(self, plan: WorkerPlan) -> None:
        config = plan.config
        self._plan = plan
        self._driver = AsyncDriver(config.worker_driver, plan.dsn, _session_settings(plan), config.statement_cache, config.psycopg_prepare_threshold)
        self._pool = AsyncRawPool(self._driver, plan.pool_size, config.max_overflow, config.pool_timeout_s)
        self.handle = Handle(None, None, self._pool.lease)

    def checked_out(self) -> int:
        return self._pool.checked_out()

    async def preflight(self) -> dict[str, str]:
        async def attempt() -> dict[str, str]:
            async with self._pool.lease() as conn:
                return await self._driver.settings(conn, _settings_names(self._plan))

        return await settle_async(attempt, self._plan)

    async def flush_stats(self) -> None:
        await self._pool.each_idle(FLUSH_STATS_SQL)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._pool.close(), DISPOSE_TIMEOUT_S)
        except TimeoutError:
            pass


class SyncRawBackend:
    """The raw layer in the sync mode: psycopg2 or psycopg 3 DB-API connections."""

    def __init__(self, plan: WorkerPlan) -> None:
        config = plan.config
        self._plan = plan
        self._driver = SyncDriver(config.worker_driver, plan.dsn, _session_settings(plan), config.psycopg_prepare_threshold)
        self._pool = SyncRawPool(self._driver, plan.pool_size, config.max_overflow, config.pool_timeout_s, config.threads)
        self.handle = Handle(None, None, self._pool.lease)

    def checked_out(self) -> int:
        return self._pool.checked_out()

    def preflight(self) -> dict[str, str]:
        def attempt() -> dict[str, str]:
            with self._pool.lease(pin=False) as conn:
                return self._driver.settings(conn, _settings_names(self._plan))

        return settle_sync(attempt, self._plan)

    def flush_stats(self) -> None:
        self._pool.each_idle(FLUSH_STATS_SQL)

    def close(self) -> None:
        self._pool.close()
