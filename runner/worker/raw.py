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

from runner.worker.drivers import async_driver, sync_driver
from runner.worker.engine import DISPOSE_TIMEOUT_S, FLUSH_STATS_SQL, settle_async, settle_sync
from runner.worker.plan import WorkerPlan
from runner.worker.rawpool import AsyncRawPool, SyncRawPool
from workloads import Handle


class AsyncRawBackend:
    """The raw layer in the async modes: asyncpg, or psycopg 3 behind asyncpg's methods."""

    def __init__(self, plan: WorkerPlan) -> None:
        config = plan.config
        self._plan = plan
        self._driver = async_driver(plan)
        self._pool = AsyncRawPool(self._driver, plan.pool_size, config.max_overflow, config.pool_timeout_s)
        self.handle = Handle(None, None, self._pool.lease)

    def checked_out(self) -> int:
        return self._pool.checked_out()

    async def preflight(self) -> dict[str, str]:
        async def attempt() -> dict[str, str]:
            async with self._pool.lease() as conn:
                return await self._driver.settings_of(conn, sorted(self._plan.session_settings))

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
        self._driver = sync_driver(plan)
        self._pool = SyncRawPool(self._driver, plan.pool_size, config.max_overflow, config.pool_timeout_s, config.threads)
        self.handle = Handle(None, None, self._pool.lease)

    def checked_out(self) -> int:
        return self._pool.checked_out()

    def preflight(self) -> dict[str, str]:
        def attempt() -> dict[str, str]:
            with self._pool.lease(pin=False) as conn:
                return self._driver.settings_of(conn, sorted(self._plan.session_settings))

        return settle_sync(attempt, self._plan)

    def flush_stats(self) -> None:
        self._pool.each_idle(FLUSH_STATS_SQL)

    def close(self) -> None:
        self._pool.close()
