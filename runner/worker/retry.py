"""--retries N: an op that failed with a serialization failure or a deadlock is run again.

Only SQLSTATE 40001 (serialization_failure) and 40P01 (deadlock_detected) are retried, as
pgbench's --max-tries does: they mean "the same transaction may well succeed now"; anything else
is the op's error. Between tries a full-jitter exponential backoff (1 ms, doubling, at most
100 ms: AWS's "exponential backoff and jitter") keeps the retries of conflicting ops apart.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from runner.worker.recorder import driver_error

RETRYABLE = ("40001", "40P01")
BACKOFF_BASE_S = 0.001
BACKOFF_CAP_S = 0.1


def sqlstate(exc: BaseException) -> str | None:
    """The server's SQLSTATE, whichever driver raised it (asyncpg and psycopg: sqlstate;
    psycopg2: pgcode)."""
    inner = driver_error(exc)
    code = getattr(inner, "sqlstate", None) or getattr(inner, "pgcode", None)
    return code if isinstance(code, str) else None


class Retrier:
    """Up to `retries` more tries of a call that failed with one of `codes` (SQLSTATEs)."""

    def __init__(self, retries: int, rng: random.Random, codes: tuple[str, ...] = RETRYABLE) -> None:
        self.retries = retries
        self._rng = rng
        self._codes = codes

    def again(self, exc: BaseException, retried: int) -> bool:
        return retried < self.retries and sqlstate(exc) in self._codes

    def backoff_s(self, retried: int) -> float:
        return self._rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (retried - 1)))

    def _pause(self, exc: Exception, retried: int, on_retry: Callable[[BaseException], None]) -> float | None:
        """After a failed try: the seconds to wait before the next, or None (give up: not
        retryable, or the tries are used up)."""
        if not self.again(exc, retried):
            return None
        on_retry(exc)
        return self.backoff_s(retried + 1)

    async def call_async(self, call: Callable[[], Awaitable[None]], on_retry: Callable[[BaseException], None]) -> tuple[int, Exception | None]:
        """(retries made, the last try's error or None). A cancellation is not caught."""
        retried = 0
        while True:
            try:
                await call()
                return retried, None
            except Exception as exc:
                if (pause := self._pause(exc, retried, on_retry)) is None:
                    return retried, exc
            retried += 1
            await asyncio.sleep(pause)

    def call_sync(self, call: Callable[[], None], on_retry: Callable[[BaseException], None]) -> tuple[int, Exception | None]:
        retried = 0
        while True:
            try:
                call()
                return retried, None
            except Exception as exc:
                if (pause := self._pause(exc, retried, on_retry)) is None:
                    return retried, exc
            retried += 1
            time.sleep(pause)
