"""The raw layer's raw pools: up to --pool-size (+ --max-overflow) driver connections per worker,
opened on first use, lent out one op at a time, first in, first out, waited for up to
--pool-timeout (then TimeoutError, as SQLAlchemy's pool says it).

It is written here rather than taken from a driver: asyncpg's own pool runs a reset query on
every release (one more round trip per op, which a hand-written script would not pay), psycopg2's
does not wait when it is empty, and one small pool keeps the semantics identical across drivers,
which is the point of comparing them. After a failed op the connection is rolled back if it is
still usable and dropped if not (a killed backend, a cancelled op), so a pg_terminate_backend
costs one op, not the pool.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from runner.worker.anatomy import pool_wait, pool_wait_async


class AsyncOpener(Protocol):
    """How to open, restore and close one async driver's connections (runner.worker.raw)."""

    async def connect(self) -> Any: ...
    async def restore(self, conn: Any) -> bool: ...
    async def discard(self, conn: Any) -> None: ...
    async def close(self, conn: Any) -> None: ...
    async def statement(self, conn: Any, sql: str) -> None: ...


class SyncOpener(Protocol):
    def connect(self) -> Any: ...
    def restore(self, conn: Any) -> bool: ...
    def close(self, conn: Any) -> None: ...
    def statement(self, conn: Any, sql: str) -> None: ...


def _lease_type(pool: AsyncRawPool) -> Callable[[], AbstractAsyncContextManager[Any]]:
    """The pool's own lease class: `async with pool.lease() as conn:` one op's connection.

    Every raw op takes and gives back a connection through it beside PostgreSQL on the same
    cores, so taking a lease is one C-level call (no lease() or __init__ frame) and its hot paths
    read the pool's deques from this closure, not the pool's attributes. The lease still costs
    ~5,000 instructions per op, ~3,000 of them the `async with` protocol itself (BENCHMARKS.md, "Every layer at its own speed")."""
    idle, waiters, size = pool.idle, pool.waiters, pool.size
    lend, take_back = idle.popleft, idle.append

    class AsyncLease:
        __slots__ = ("_conn",)

        async def __aenter__(self) -> Any:
            # An idle connection with nobody waiting is lent at once, without awaiting or timing
            # anything: there was no wait, so the op's pool wait stays 0. Somebody waiting: then
            # first come, first served, so acquire() queues behind the waiters.
            if idle and not waiters:
                conn = self._conn = lend()
                return conn
            conn = self._conn = await pool_wait_async(pool.acquire)
            return conn

        async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
            if kind is None:
                if not waiters and len(idle) < size:  # give_back's common case, inline
                    take_back(self._conn)
                else:
                    pool.give_back(self._conn)
            else:
                await pool.recover(self._conn, cancelled=issubclass(kind, asyncio.CancelledError))

    return AsyncLease


class AsyncRawPool:
    """The async raw pool; one per worker, used from its event loop only."""

    def __init__(self, driver: AsyncOpener, size: int, overflow: int, timeout_s: float) -> None:
        self._driver, self.size, self._capacity, self._timeout_s = driver, size, size + overflow, timeout_s
        self.idle: deque[Any] = deque()  # never replaced: the lease class holds them (see _lease_type)
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self._opened = 0  # open or opening, lent or idle
        self.lease = _lease_type(self)  # `lease()`: one op's connection

    def checked_out(self) -> int:
        """Connections lent out now (or being opened for an op), as SQLAlchemy's pool counts
        them: not the ops waiting for one. Read once per interval, so counted, not tracked."""
        return self._opened - len(self.idle)

    async def acquire(self) -> Any:
        if self.idle:
            return self.idle.popleft()
        if self._opened < self._capacity:
            self._opened += 1
            try:
                return await self._driver.connect()
            except BaseException:
                self._opened -= 1
                raise
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, self._timeout_s)
        except TimeoutError:
            raise TimeoutError(f"no connection free within --pool-timeout {self._timeout_s:g} s") from None

    def give_back(self, conn: Any) -> None:
        while self.waiters:  # the longest waiter gets it; a cancelled one (timed out) is skipped
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)  # lent on, never idle
                return
        if len(self.idle) >= self.size:  # an overflow connection: closed, as SQLAlchemy's QueuePool does
            self._opened -= 1
            asyncio.get_running_loop().create_task(self._driver.close(conn))
            return
        self.idle.append(conn)

    async def recover(self, conn: Any, cancelled: bool) -> None:
        """After a failed op: keep the connection if a rollback makes it usable again."""
        if not cancelled and await self._driver.restore(conn):
            self.give_back(conn)
            return
        self._opened -= 1
        await self._driver.discard(conn)

    async def each_idle(self, sql: str) -> None:
        """Run `sql` once on every idle connection (warm-up's statistics flush)."""
        for conn in list(self.idle):
            await self._driver.statement(conn, sql)

    async def close(self) -> None:
        while self.idle:
            await self._driver.close(self.idle.popleft())


class SyncLease:
    __slots__ = ("_pool", "_conn", "_own")

    def __init__(self, pool: SyncRawPool, own: _Pinned | None) -> None:
        self._pool = pool
        self._conn: Any = None
        self._own = own  # the thread's own pinned connection, where the pool keeps one per thread

    def __enter__(self) -> Any:
        # The thread's own connection is taken without timing anything (every op's hot path in
        # the sync mode): nothing was waited for, so the op's pool wait stays 0. Taken here,
        # inline: each call an op makes beside PostgreSQL on the same cores is a cold one.
        own = self._own
        if own is not None and own.conn is not None:
            self._conn, own.conn = own.conn, None
        else:
            self._conn = pool_wait(self._pool.acquire)
        return self._conn

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if kind is None:
            self._pool.give_back(self._conn, self._own)
        else:
            self._pool.recover(self._conn, self._own)


class _Pinned:
    """One thread's own pinned connection (see SyncRawPool)."""

    __slots__ = ("conn",)

    def __init__(self) -> None:
        self.conn: Any = None


class SyncRawPool:
    """The sync raw pool, shared by the worker's threads.

    When the pool has a connection for every thread (the default: --pool-size is --threads), a
    thread keeps the connection it used last: an op then takes no lock at all, as a hand-written
    script with a connection per thread takes none. With fewer connections than threads they
    are shared through one condition variable, first in, first out.
    """

    def __init__(self, driver: SyncOpener, size: int, overflow: int, timeout_s: float, threads: int) -> None:
        self._driver, self._size, self._capacity, self._timeout_s = driver, size, size + overflow, timeout_s
        self._pinned = size >= threads
        self._local = threading.local()
        self._owns: list[_Pinned] = []  # every thread's own connection, to count the idle ones
        self.idle: deque[Any] = deque()
        self._ready = threading.Condition()
        self._opened = 0

    def lease(self, pin: bool = True) -> SyncLease:
        """One op's connection; `pin=False` for a thread that runs no ops (the preflight's), whose
        connection must go back to the shared queue, not stay with it."""
        return SyncLease(self, self._own() if self._pinned and pin else None)

    def _own(self) -> _Pinned:
        own: _Pinned | None = getattr(self._local, "own", None)
        if own is None:
            own = self._local.own = _Pinned()
            with self._ready:
                self._owns.append(own)
        return own

    def checked_out(self) -> int:
        """Connections lent out now (read once per interval, so counted, not tracked per op)."""
        with self._ready:
            return self._opened - len(self.idle) - sum(1 for own in self._owns if own.conn is not None)

    def acquire(self) -> Any:
        with self._ready:
            if self.idle:
                return self.idle.popleft()
            if self._opened >= self._capacity:
                if not self._ready.wait_for(lambda: self.idle, self._timeout_s):
                    raise TimeoutError(f"no connection free within --pool-timeout {self._timeout_s:g} s")
                return self.idle.popleft()
            self._opened += 1
        try:
            return self._driver.connect()
        except BaseException:
            self._forget()
            raise

    def _forget(self) -> None:
        """A connection that was never opened, or is closed and not coming back."""
        with self._ready:
            self._opened -= 1

    def give_back(self, conn: Any, own: _Pinned | None = None) -> None:
        """A connection back: to the thread's own connection if it has one and it has none now,
        otherwise to the shared queue (or closed, beyond the pool's size)."""
        if own is not None and own.conn is None:
            own.conn = conn
            return
        with self._ready:
            overflow = len(self.idle) >= self._size
            if not overflow:
                self.idle.append(conn)
                self._ready.notify()
                return
            self._opened -= 1
        self._driver.close(conn)  # an overflow connection: closed, as SQLAlchemy's QueuePool does

    def recover(self, conn: Any, own: _Pinned | None = None) -> None:
        if self._driver.restore(conn):
            self.give_back(conn, own)
            return
        self._forget()
        self._driver.close(conn)

    def each_idle(self, sql: str) -> None:
        """Run `sql` once on every idle connection (warm-up's statistics flush; no op is running)."""
        with self._ready:
            conns = list(self.idle) + [own.conn for own in self._owns if own.conn is not None]
        for conn in conns:
            self._driver.statement(conn, sql)

    def close(self) -> None:
        with self._ready:
            conns = list(self.idle) + [own.conn for own in self._owns if own.conn is not None]
            self.idle.clear()
            for own in self._owns:
                own.conn = None
        for conn in conns:
            self._driver.close(conn)
