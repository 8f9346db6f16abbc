"""The raw layer is the driver itself: its own raw pool (no SQLAlchemy), with the same sizing,
settings, preflight and fault handling as the other layers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest

from runner.resolve import spec
from runner.worker.plan import WorkerPlan
from runner.worker.psycopg_async import PsycopgAsync, format_params
from runner.worker.raw import AsyncRawBackend, SyncRawBackend
from tests.conftest import query, run_runner
from tests.test_faults import _finish, _start

RAW_DRIVERS = [["--driver", "asyncpg"], ["--driver", "psycopg"], ["--mode", "sync", "--driver", "psycopg2", "--threads", "4"],
               ["--mode", "sync", "--driver", "psycopg", "--threads", "4"]]


def _plan(dsn: str, **options: Any) -> WorkerPlan:
    config = spec(layer="raw", dsn=dsn, ops=10, **options)
    return WorkerPlan(0, config, dsn, 10, 0, 1, 3, 0, {}, {})


def test_format_params_reorders_and_escapes() -> None:
    assert format_params("SELECT $2, $1 WHERE x LIKE 'a%'") == ("SELECT %s, %s WHERE x LIKE 'a%%'", (1, 0))
    assert format_params("SELECT 1 WHERE x LIKE 'a%'") == ("SELECT 1 WHERE x LIKE 'a%'", ())  # no parameters: as it is



def test_psycopg_gets_the_arguments_in_the_order_of_its_placeholders(dsn: str) -> None:
    async def go() -> list[Any]:
        conn = PsycopgAsync(await psycopg.AsyncConnection.connect(dsn, autocommit=True))
        try:
            return [
                tuple(await conn.fetchrow("SELECT $1::text, $2::text", "a", "b")),  # in turn: as given
                tuple(await conn.fetchrow("SELECT $2::text, $1::text, $2::text", "a", "b")),
                await conn.fetchval("SELECT '100%'"),  # no parameters: % left alone
                await conn.fetchval("SELECT $1::text || '%'", "100"),  # with them: % escaped
                [tuple(row) for row in await conn.fetch("SELECT $2::int - $1::int", 1, 5)],
                await conn.execute("SELECT $2::text, $1::text", "a", "b"),
            ]
        finally:
            await conn.conn.close()

    assert asyncio.run(go()) == [("a", "b"), ("b", "a", "b"), "100%", "100%", [(4,)], "SELECT 1"]


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
def test_the_async_raw_pool_has_no_engine_and_keeps_its_size(dsn: str, driver: str) -> None:
    backend = AsyncRawBackend(_plan(dsn, driver=driver))
    assert backend.handle.engine is None and backend.handle.sessions is None  # no SQLAlchemy at all

    async def go() -> tuple[int, int, int, list[Any]]:
        settings = await backend.preflight()
        async def op() -> Any:
            async with backend.handle.raw() as conn:
                await asyncio.sleep(0.05)
                return await conn.fetchval("SELECT pg_backend_pid()")
        ops = asyncio.gather(*(op() for _ in range(9)))  # 9 ops, pool of 3: they queue
        seen = []
        while not ops.done():
            seen.append(backend.checked_out())
            await asyncio.sleep(0.01)
        pids = await ops
        after = backend.checked_out()
        await backend.close()
        return len(set(pids)), max(seen), after, [settings]

    distinct, most, after, _ = asyncio.run(go())
    assert distinct == 3  # three connections served nine ops
    assert most == 3 and after == 0  # connections lent, not the ops waiting for one; all returned


def test_the_async_raw_pool_closes_what_overflowed_when_it_comes_back(dsn: str) -> None:
    plan = _plan(dsn, max_overflow=2)
    backend = AsyncRawBackend(WorkerPlan(0, plan.config, dsn, 10, 0, 1, 1, 0, {}, {}))  # a pool of one, two more at a push

    async def go() -> tuple[int, int, int]:
        async def op() -> Any:
            async with backend.handle.raw() as conn:
                await asyncio.sleep(0.05)
                return await conn.fetchval("SELECT pg_backend_pid()")
        pids = await asyncio.gather(*(op() for _ in range(3)))
        await asyncio.sleep(0.1)  # the overflow connections' closing
        opened = await asyncio.gather(*(op() for _ in range(1)))
        idle = len(backend._pool.idle)
        await backend.close()
        return len(set(pids)), len(set(pids) | set(opened)), idle

    distinct, ever, idle = asyncio.run(go())
    assert distinct == 3  # the pool grew by its overflow
    assert ever == 3 and idle == 1  # one kept, the two beyond the pool size closed, none opened again


def test_the_sync_raw_pool_times_out_like_sqlalchemys(dsn: str) -> None:
    backend = SyncRawBackend(_plan(dsn, mode="sync", pool_timeout_s=0.2))
    with backend.handle.raw(), backend.handle.raw(), backend.handle.raw():
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="--pool-timeout"):
            with backend.handle.raw():
                pass
        assert time.monotonic() - start >= 0.19
        assert backend.checked_out() == 3
    assert backend.checked_out() == 0
    backend.close()


SLEEPER = """
from sqlalchemy import MetaData, text
from workloads import SCHEMA, Op, Workload, register

async def orm(handle, rng):
    async with handle.sessions() as session:
        await session.execute(text("SELECT pg_sleep(0.01)"))

def orm_sync(handle, rng):
    with handle.sessions() as session:
        session.execute(text("SELECT pg_sleep(0.01)"))

async def raw(handle, rng):
    async with handle.raw() as conn:
        await conn.fetchval("SELECT pg_sleep($1)", 0.1 if rng.random() < 0.5 else 0.0)

def raw_sync(handle, rng):
    with handle.raw() as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(%s)", (0.1 if rng.random() < 0.5 else 0.0,))
        conn.rollback()

register(Workload("sleeper", "half the raw ops sleep 100 ms", MetaData(schema=SCHEMA),
                  (Op("sleep", "read", 1.0, (orm, orm_sync), raw=(raw, raw_sync)),)))
"""


@pytest.mark.system
@pytest.mark.parametrize("args", RAW_DRIVERS, ids=lambda a: " ".join(a))
def test_raw_reads_back_session_settings_and_counts_timeouts(dsn: str, args: list[str], tmp_path: Any) -> None:
    path = tmp_path / "sleeper.py"
    path.write_text(SLEEPER)
    # 30 ms: the sleeping half always runs past it, the other half finishes within it even on a
    # busy machine (at 5 ms, every op of one run was cancelled once beside other work).
    result = run_runner("--workload", str(path), "--layer", "raw", *args, "--ops", "40", "--op-timeout", "0.03", "--quiet", dsn=dsn)
    assert result.code in (0, 5), result.stderr
    doc = result.doc
    assert doc is not None and doc["complete"] is True
    assert doc["server"]["settings"]["statement_timeout"] == "30ms"  # from the raw worker's own connection
    # The driver's own class: QueryCanceledError (asyncpg, psycopg2) or QueryCanceled (psycopg 3).
    canceled = [name for name in doc["totals"]["errors_by_class"] if name.startswith("QueryCanceled")]
    assert len(canceled) == 1 and doc["totals"]["errors_by_class"][canceled[0]] > 0
    assert "canceling statement" in doc["totals"]["error_samples"][canceled[0]]
    assert 0 < doc["totals"]["ok"] < 40  # the ops that did not sleep finished


@pytest.mark.system
@pytest.mark.parametrize("args", RAW_DRIVERS[:1] + RAW_DRIVERS[2:3], ids=lambda a: " ".join(a))
def test_raw_survives_killed_connections(dsn: str, args: list[str]) -> None:
    # Bounded by time, not a count: a count long enough to outlast start-up on a busy machine ran
    # for a minute on a quiet one (the seed's reads scan a growing table).
    width = [] if "sync" in args else ["--chunk", "10"]  # the sync mode's is --threads, in args
    parent, _ = _start(dsn, "--layer", "raw", *args, "--procs", "2", *width, "--duration", "6", "--quiet")
    killed = 0
    for _ in range(3):
        killed += int(query(dsn, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'runner-worker-%'"))
        time.sleep(0.7)
    code, doc, stderr = _finish(parent)
    assert killed > 0
    assert code in (0, 5), stderr
    totals = doc["totals"]
    assert totals["ok"] + totals["errors"] == totals["ops"] and totals["ok"] > totals["errors"]  # the broken connections were replaced
    assert totals["errors"] <= killed
    assert doc["database"]["rows"] == doc["database"]["expected_rows"]  # every committed write was reported


@pytest.mark.system
def test_raw_preflight_refuses_a_worker_that_cannot_connect(pgbouncer: Any) -> None:
    # PgBouncer refuses the startup parameter libpq drivers carry session settings in.
    # --quiet: beside other work the start can take long enough for a "starting workers" line.
    result = run_runner("--layer", "raw", "--mode", "sync", "--op-timeout", "5", "--ops", "10", "--quiet", dsn=pgbouncer())
    assert result.code == 3, result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "worker 0 cannot start" in line and "unsupported startup parameter" in line
