"""The worker's preflight: tried again when its own statement timeout (--op-timeout) cancels it,
refused at once for anything else. The cancellations here are the server's own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import psycopg2
import pytest

from runner.resolve import spec
from runner.worker.engine import PREFLIGHT_TRIES, PreflightError, settle_async, settle_sync
from runner.worker.plan import WorkerPlan

SLOW = "SELECT pg_sleep(0.05)"  # five times the timeout below: always cancelled


def _plan(dsn: str) -> WorkerPlan:
    return WorkerPlan(0, spec(dsn=dsn, ops=10), dsn, 10, 0, 1, 1, 0, {}, {})


def _sync_attempts(dsn: str, cancelled: int, sql_after: str = "SELECT 'ready'") -> tuple[list[int], Callable[[], str]]:
    """An attempt that the server cancels `cancelled` times (statement_timeout 10 ms), then runs `sql_after`."""
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        conn = psycopg2.connect(dsn, options="-c statement_timeout=10")
        try:
            with conn.cursor() as cur:
                cur.execute(SLOW if len(calls) <= cancelled else sql_after)
                return str(cur.fetchone()[0])  # type: ignore[index]
        finally:
            conn.close()

    return calls, attempt


def test_a_preflight_cancelled_by_its_statement_timeout_is_tried_again(dsn: str) -> None:
    calls, attempt = _sync_attempts(dsn, cancelled=2)
    assert settle_sync(attempt, _plan(dsn)) == "ready"
    assert len(calls) == 3


def test_a_preflight_cancelled_every_time_is_refused_in_the_drivers_words(dsn: str) -> None:
    calls, attempt = _sync_attempts(dsn, cancelled=PREFLIGHT_TRIES)
    with pytest.raises(PreflightError, match=r"QueryCanceled\w*: canceling statement due to statement timeout"):
        settle_sync(attempt, _plan(dsn))
    assert len(calls) == PREFLIGHT_TRIES


def test_a_preflight_failing_otherwise_is_refused_at_once(dsn: str) -> None:
    calls, attempt = _sync_attempts(dsn, cancelled=0, sql_after="SELECT FROM nowhere_at_all")
    with pytest.raises(PreflightError, match="UndefinedTable"):
        settle_sync(attempt, _plan(dsn))
    assert len(calls) == 1


def test_the_async_preflight_is_tried_again_too(dsn: str) -> None:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        conn = await asyncpg.connect(dsn, server_settings={"statement_timeout": "10"})
        try:
            return str(await conn.fetchval(SLOW if len(calls) <= 2 else "SELECT 'ready'"))
        finally:
            await conn.close()

    assert asyncio.run(settle_async(attempt, _plan(dsn))) == "ready"
    assert len(calls) == 3
