"""One settings object per driver, read by every layer: how the orm and core layers' engine
connects (its connect arguments) and how the raw layer opens, restores and closes connections.

A driver's details (asyncpg's statement cache and its `server_settings`, libpq's `options`,
psycopg 3's prepare threshold) are written in its own class, once, never as a branch on the
driver's name. `for_plan` picks the class from the run's driver and kind of loop.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy.engine import URL

from runner.dsn import driver_args, settings_options
from runner.worker.plan import WorkerPlan
from runner.worker.psycopg_async import PsycopgAsync

SETTINGS_SQL_DOLLAR = "SELECT name, current_setting(name) FROM unnest($1::text[]) AS name"
SETTINGS_SQL_FORMAT = "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name"


def connect_kwargs(url: URL, args: dict[str, Any], database: str) -> dict[str, Any]:
    """The URL's parts and the DSN's own parameters as one driver's keywords (`database` is its name
    for the database): a parameter the DSN's query names (`?password=`) wins over the URL's part,
    as in libpq."""
    kwargs = {"host": url.host, "port": url.port, "user": url.username, "password": url.password, database: url.database, **args}
    return {name: value for name, value in kwargs.items() if value is not None}


@dataclass(frozen=True)
class Driver:
    """A worker's driver: the DSN's parts for it, the session settings every connection gets,
    and the statement-cache choice (--statement-cache, --prepare)."""

    name: ClassVar[str]
    is_async: ClassVar[bool]
    prepares: ClassVar[bool] = False  # psycopg 3: takes a prepare threshold

    url: URL  # no query: the DSN's parameters are in `args`
    args: dict[str, Any]  # the DSN's parameters, in this driver's spelling
    settings: dict[str, str]  # session settings, application_name included
    statement_cache: bool
    prepare_threshold: int | None  # psycopg 3's; None: never prepare

    def engine_args(self) -> dict[str, Any]:
        """SQLAlchemy's connect_args for this driver (libpq drivers: settings as `options`)."""
        args = {**self.args, "options": settings_options(self.settings)}
        return {**args, "prepare_threshold": self.prepare_threshold} if self.prepares else args


class AsyncDriver(Driver, ABC):
    """The async drivers: the raw layer's connections answer asyncpg's methods."""

    is_async = True

    @abstractmethod
    async def connect(self) -> Any: ...

    @abstractmethod
    async def restore(self, conn: Any) -> bool:
        """The connection back to idle for the next lease; False if it is unusable."""

    @abstractmethod
    async def discard(self, conn: Any) -> None:
        """Drop a connection that may be mid-query or dead."""

    @abstractmethod
    async def close(self, conn: Any) -> None: ...

    async def statement(self, conn: Any, sql: str) -> None:
        try:
            await conn.execute(sql)
        except Exception:  # e.g. pg_stat_force_next_flush before PostgreSQL 15
            await self.restore(conn)

    async def settings_of(self, conn: Any, names: list[str]) -> dict[str, str]:
        rows = await conn.fetch(SETTINGS_SQL_DOLLAR, names)
        return {str(name): str(value) for name, value in rows}


class AsyncpgDriver(AsyncDriver):
    name = "asyncpg"

    def _cache_args(self) -> dict[str, Any]:
        """Through a transaction pooler a server connection changes between transactions: no
        cached statements."""
        return {} if self.statement_cache else {"statement_cache_size": 0}

    def engine_args(self) -> dict[str, Any]:
        args = {**self.args, "server_settings": self.settings, **self._cache_args()}
        if not self.statement_cache:  # and the statements SQLAlchemy prepares: names unique per process
            args.update(prepared_statement_cache_size=0, prepared_statement_name_func=lambda: f"__runner_{uuid.uuid4().hex}__")
        return args

    async def connect(self) -> Any:
        import asyncpg

        args = {k: v for k, v in self.args.items() if k != "prepared_statement_cache_size"}  # SQLAlchemy's, not asyncpg's
        return await asyncpg.connect(**connect_kwargs(self.url, {**args, **self._cache_args()}, "database"), server_settings=self.settings)

    async def restore(self, conn: Any) -> bool:
        try:
            if conn.is_closed():
                return False
            if conn.is_in_transaction():
                await conn.execute("ROLLBACK")
            return True
        except Exception:  # unusable after all
            return False

    async def discard(self, conn: Any) -> None:
        try:
            conn.terminate()  # no round trip: it may be mid-query, or dead
        except Exception:  # already gone
            pass

    async def close(self, conn: Any) -> None:
        try:
            await conn.close()
        except Exception:
            pass


class PsycopgAsyncDriver(AsyncDriver):
    """psycopg 3's async connection; raw ops get it behind asyncpg's methods (PsycopgAsync)."""

    name = "psycopg"
    prepares = True

    async def connect(self) -> Any:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(
            **connect_kwargs(self.url, self.args, "dbname"),
            autocommit=True,
            options=settings_options(self.settings),
            prepare_threshold=self.prepare_threshold,
        )
        return PsycopgAsync(conn)

    async def restore(self, conn: Any) -> bool:
        try:
            raw = conn.conn
            if raw.closed:
                return False
            if raw.info.transaction_status != 0:  # psycopg.pq.TransactionStatus.IDLE
                await raw.rollback()
            return True
        except Exception:
            return False

    async def discard(self, conn: Any) -> None:
        await self.close(conn)

    async def close(self, conn: Any) -> None:
        try:
            await conn.conn.close()
        except Exception:
            pass


class SyncDriver(Driver, ABC):
    """The sync drivers: DB-API connections, a transaction begun by the first statement."""

    is_async = False

    @abstractmethod
    def connect(self) -> Any: ...

    def _kwargs(self) -> dict[str, Any]:
        return {**connect_kwargs(self.url, self.args, "dbname"), "options": settings_options(self.settings)}

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

    def settings_of(self, conn: Any, names: list[str]) -> dict[str, str]:
        with conn.cursor() as cur:
            cur.execute(SETTINGS_SQL_FORMAT, (names,))
            rows = cur.fetchall()
        conn.rollback()
        return {str(name): str(value) for name, value in rows}


class Psycopg2Driver(SyncDriver):
    name = "psycopg2"

    def connect(self) -> Any:
        import psycopg2

        return psycopg2.connect(**self._kwargs())


class PsycopgDriver(SyncDriver):
    name = "psycopg"
    prepares = True

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(prepare_threshold=self.prepare_threshold, **self._kwargs())


ASYNC_DRIVERS: dict[str, type[AsyncDriver]] = {d.name: d for d in (AsyncpgDriver, PsycopgAsyncDriver)}
SYNC_DRIVERS: dict[str, type[SyncDriver]] = {d.name: d for d in (Psycopg2Driver, PsycopgDriver)}


def _arguments(plan: WorkerPlan) -> tuple[URL, dict[str, Any], dict[str, str], bool, int | None]:
    """The worker's DSN for its driver, with this worker's session settings (named runner-worker-N)."""
    config = plan.config
    url, args, _ = driver_args(plan.dsn, config.worker_driver)  # the DSN's own settings are in plan.session_settings
    settings = {**plan.session_settings, "application_name": f"runner-worker-{plan.worker_id}"}
    return url, args, settings, config.statement_cache, config.psycopg_prepare_threshold


def async_driver(plan: WorkerPlan) -> AsyncDriver:
    return ASYNC_DRIVERS[plan.config.worker_driver](*_arguments(plan))


def sync_driver(plan: WorkerPlan) -> SyncDriver:
    return SYNC_DRIVERS[plan.config.worker_driver](*_arguments(plan))
