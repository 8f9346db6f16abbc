"""The worker's engine (the orm and core layers): URL and connect arguments for its driver, pool
options, the preflight, and the backends the worker body drives.

The preflight runs before a worker says it is ready: it checks that the process may open as many
descriptors as its pool needs, opens one real connection and reads back the session settings the
server gave it. A worker that cannot connect ends the run before it starts, with the driver's
own message, instead of turning every op into an error whose reason nobody sees.
"""

from __future__ import annotations

import asyncio
import random
import resource
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import Pool, QueuePool

from runner.dsn import dsn_secrets
from runner.worker.anatomy import TimedAsyncQueuePool, TimedQueuePool, instrument
from runner.worker.drivers import async_driver, sync_driver
from runner.worker.plan import WorkerPlan
from runner.worker.recorder import error_class, error_message
from runner.worker.retry import Retrier
from workloads import Handle, resolve

# A backend flushes its statistics at most once a second; warm-up's must be in before the
# parent's snapshot at the start barrier, or the measured deltas would include them (PG 15+).
FLUSH_STATS_SQL = "SELECT pg_stat_force_next_flush()"
DISPOSE_TIMEOUT_S = 5.0  # closing the pool must not hang a worker whose connections are stuck
FD_MARGIN = 64  # descriptors beyond the pool's connections: the driver, the channel, Python's files
SETTINGS_QUERY = text("SELECT name, current_setting(name) FROM unnest(CAST(:names AS text[])) AS name")
# The preflight's connection already has --op-timeout as its statement_timeout: at a few ms, a
# moment without a core cancels the settings query itself, which says nothing about the server.
QUERY_CANCELED = "57014"
PREFLIGHT_TRIES = 5
T = TypeVar("T")


# A transaction pooler hands each transaction a different server connection: a statement
# prepared on one is missing (or already there) on another.
PREPARED_STATEMENT_ERRORS = (
    "InvalidSQLStatementNameError",  # asyncpg: prepared statement "..." does not exist
    "DuplicatePreparedStatementError",  # asyncpg: prepared statement "..." already exists
    "InvalidSqlStatementName",  # psycopg 3
    "DuplicatePreparedStatement",
)
POOLER_HINT = "a transaction pooler (PgBouncer pool_mode=transaction) in front of PostgreSQL? Run with --statement-cache off"


class PreflightError(Exception):
    """The worker cannot start; the message says why, in the driver's words, password masked."""


def secrets(plan: WorkerPlan) -> tuple[str, ...]:
    """What must never appear in a message the worker sends: the DSN's secrets."""
    return dsn_secrets(plan.dsn)


def engine_options(plan: WorkerPlan, poolclass: type[Pool]) -> dict[str, Any]:
    """Pool sizing; with --anatomy the pool class that times each checkout; an app's schemas
    mapped into the runner's (schema_translate_map), when its models declare any other."""
    config = plan.config
    options: dict[str, Any] = {"pool_size": plan.pool_size, "max_overflow": config.max_overflow, "pool_timeout": config.pool_timeout_s}
    workload = resolve(config.workload)
    if workload.translates:  # the built-ins' tables are ours already: no translation to pay for
        options["execution_options"] = {"schema_translate_map": workload.schema_map}
    return {**options, "poolclass": poolclass} if config.anatomy else options


def check_descriptors(plan: WorkerPlan) -> None:
    """Raise the soft descriptor limit to the hard one; refuse a hard limit the pool cannot fit in."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    needed = plan.pool_size + plan.config.max_overflow + FD_MARGIN
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise PreflightError(
            f"its pool needs about {needed} file descriptors but the hard limit is {hard}: "
            "raise it (ulimit -Hn, LimitNOFILE) or lower --chunk, --pool-size or --procs per host"
        )


def _settings(rows: Any) -> dict[str, str]:
    return {str(name): str(value) for name, value in rows}


def refusal(exc: Exception, plan: WorkerPlan) -> PreflightError:
    """A preflight failure as the worker reports it: the driver's class and message, and the fix
    where it is known."""
    name = error_class(exc)
    hint = f": {POOLER_HINT}" if name in PREPARED_STATEMENT_ERRORS else ""
    return PreflightError(f"{name}: {error_message(exc, secrets(plan))}{hint}")


def _preflight_retrier(plan: WorkerPlan) -> Retrier:
    """The preflight's tries: again while the statement timeout cancels it (QUERY_CANCELED)."""
    return Retrier(PREFLIGHT_TRIES - 1, random.Random(plan.seed), (QUERY_CANCELED,))


def _unretried(_: BaseException) -> None:
    """A preflight's retries are not counted: no op has started."""


async def settle_async(attempt: Callable[[], Awaitable[T]], plan: WorkerPlan) -> T:
    """The preflight's attempt, tried again while the statement timeout cancels it; any other
    failure, or the last try's, is the worker's PreflightError."""
    result: list[T] = []

    async def call() -> None:
        result.append(await attempt())

    _, error = await _preflight_retrier(plan).call_async(call, _unretried)
    if error is not None:  # any failure here means the worker cannot do its job
        raise refusal(error, plan) from None
    return result[0]


def settle_sync(attempt: Callable[[], T], plan: WorkerPlan) -> T:
    result: list[T] = []
    _, error = _preflight_retrier(plan).call_sync(lambda: result.append(attempt()), _unretried)
    if error is not None:
        raise refusal(error, plan) from None
    return result[0]


async def preflight_async(engine: AsyncEngine, plan: WorkerPlan) -> dict[str, str]:
    """One connection, opened and asked for its session settings; PreflightError if it fails."""

    async def attempt() -> dict[str, str]:
        async with engine.connect() as conn:
            rows = (await conn.execute(SETTINGS_QUERY, {"names": sorted(plan.session_settings)})).all()
            await conn.rollback()
        return _settings(rows)

    return await settle_async(attempt, plan)


def preflight_sync(engine: Engine, plan: WorkerPlan) -> dict[str, str]:
    def attempt() -> dict[str, str]:
        with engine.connect() as conn:
            rows = conn.execute(SETTINGS_QUERY, {"names": sorted(plan.session_settings)}).all()
            conn.rollback()
        return _settings(rows)

    return settle_sync(attempt, plan)


class AsyncEngineBackend:
    """The orm and core layers in the async modes: an AsyncEngine with its QueuePool."""

    def __init__(self, plan: WorkerPlan) -> None:
        driver = async_driver(plan)
        self._plan = plan
        self._engine = create_async_engine(driver.url, connect_args=driver.engine_args(), **engine_options(plan, TimedAsyncQueuePool))
        if plan.config.anatomy:
            instrument(self._engine.sync_engine)
        self._pool = cast(QueuePool, self._engine.sync_engine.pool)  # pool_size/max_overflow: always a QueuePool
        self.handle = Handle(self._engine, async_sessionmaker(self._engine, expire_on_commit=False))

    def checked_out(self) -> int:
        return self._pool.checkedout()

    async def preflight(self) -> dict[str, str]:
        return await preflight_async(self._engine, self._plan)

    async def flush_stats(self) -> None:
        connections = [await self._engine.connect() for _ in range(self._pool.checkedin())]
        for conn in connections:
            try:
                await conn.exec_driver_sql(FLUSH_STATS_SQL)
                await conn.rollback()  # idle again: the backend flushes now
            except DBAPIError:  # before PostgreSQL 15: the function does not exist
                await conn.rollback()
            await conn.close()

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._engine.dispose(), DISPOSE_TIMEOUT_S)
        except TimeoutError:
            pass  # the process is about to end: the kernel closes what the pool could not


class SyncEngineBackend:
    """The orm and core layers in the sync mode."""

    def __init__(self, plan: WorkerPlan) -> None:
        driver = sync_driver(plan)
        self._plan = plan
        self._engine = create_engine(driver.url, connect_args=driver.engine_args(), **engine_options(plan, TimedQueuePool))
        if plan.config.anatomy:
            instrument(self._engine)
        self._pool = cast(QueuePool, self._engine.pool)
        self.handle = Handle(self._engine, sessionmaker(self._engine))

    def checked_out(self) -> int:
        return self._pool.checkedout()

    def preflight(self) -> dict[str, str]:
        return preflight_sync(self._engine, self._plan)

    def flush_stats(self) -> None:
        connections = [self._engine.connect() for _ in range(self._pool.checkedin())]
        for conn in connections:
            try:
                conn.exec_driver_sql(FLUSH_STATS_SQL)
                conn.rollback()
            except DBAPIError:
                conn.rollback()
            conn.close()

    def close(self) -> None:
        self._engine.dispose()
