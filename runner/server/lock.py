"""The run's hold on its schema: an advisory lock taken on a connection of its own, held for the
run's whole life, and watched.

A second run on the same database would drop the first one's tables. The lock is a
transaction-level lock in a transaction left open: through a transaction pooler (PgBouncer) a
session lock would stay with whichever server connection took it, after this run ended.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import zlib

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from runner.errors import DatabaseError
from runner.server.control import PARENT_APP_PREFIX, connect, control_engine

LOCK_CLASS = 0x52554E4E  # "RUNN"
LOCK_CHECK_S = 1.0  # how often a run checks its lock is still held
IMMUNE_TO = ("idle_in_transaction_session_timeout", "transaction_timeout")  # the latter: PostgreSQL 17+
HOLDER_QUERY = text(
    """
    SELECT a.application_name, host(a.client_addr), to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ')
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :cls AND l.objid = :obj AND l.objsubid = 2
    """
)


class SchemaTaken(DatabaseError):
    """Another run holds the schema's lock."""

    def __str__(self) -> str:
        return f"{self.args[0]}: wait for it to end, or pass --wait-for-lock to queue behind it"


def schema_lock_key(schema: str) -> tuple[int, int]:
    return LOCK_CLASS, zlib.crc32(schema.encode()) & 0x7FFFFFFF


def lock_schema(dsn: str, schema: str, wait: bool) -> Connection:
    """Hold the schema's advisory lock until the returned connection is closed (its open
    transaction rolls back, which releases the lock).

    Refused with one line naming the run that holds it, unless `wait`: then this blocks (a Ctrl-C
    cancels the wait through `cancel_statements`).
    """
    name = f"{PARENT_APP_PREFIX}-lock pid {os.getpid()} on {socket.gethostname()}"
    conn = connect(control_engine(dsn, "lock"), dsn)
    conn.execute(text("SELECT set_config('application_name', :n, true)"), {"n": name[:63]})
    # The lock's transaction stays open, idle, for the whole run: a server's timeouts for idle or
    # long transactions would end it, and the lock with it (two runs then drop each other's
    # tables). Off for this transaction only (set_config's `true`).
    for setting in IMMUNE_TO:
        if conn.execute(text("SELECT count(*) FROM pg_settings WHERE name = :n"), {"n": setting}).scalar_one():
            conn.execute(text("SELECT set_config(:n, '0', true)"), {"n": setting})
    cls, obj = schema_lock_key(schema)
    try:
        if wait:
            conn.execute(text("SELECT pg_advisory_xact_lock(:cls, :obj)"), {"cls": cls, "obj": obj})
        elif not conn.execute(text("SELECT pg_try_advisory_xact_lock(:cls, :obj)"), {"cls": cls, "obj": obj}).scalar_one():
            holder = conn.execute(HOLDER_QUERY, {"cls": cls, "obj": obj}).first()
            who = f" ({holder[0]}, connected since {holder[2]}{' from ' + holder[1] if holder[1] else ''})" if holder else ""
            raise SchemaTaken(f"another runner run is using schema {schema!r} in this database{who}")
    except BaseException:
        conn.close()
        raise
    return conn


def release_lock(conn: Connection) -> None:
    """End the lock's transaction. A server restart or a killed backend has ended it already."""
    with contextlib.suppress(DBAPIError):
        conn.close()


class SchemaLock:
    """The run's hold on its schema, watched: the lock's connection can still be lost (its backend
    terminated, the server restarted). Then the lock is taken again at once; if another run took it
    meanwhile, the run must stop, since that run may drop this one's tables."""

    def __init__(self, dsn: str, schema: str, wait: bool) -> None:
        self._dsn, self._schema = dsn, schema
        self._conn: Connection | None = lock_schema(dsn, schema, wait)
        self._checked = time.monotonic()
        self.lost: str | None = None  # why the run no longer holds its schema

    def check(self) -> str | None:
        """None while the lock is held (one round trip at most every LOCK_CHECK_S); once it is
        lost for good, why. A server that cannot be reached yet (restarting) is tried again."""
        now = time.monotonic()
        if self.lost is not None or now - self._checked < LOCK_CHECK_S:
            return self.lost
        self._checked = now
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return None
            except DBAPIError:
                release_lock(self._conn)
                self._conn = None
        try:
            self._conn = lock_schema(self._dsn, self._schema, wait=False)
        except SchemaTaken as exc:
            self.lost = f"the schema lock was lost, and {exc.args[0]}: stopped, since it may drop this run's tables"
        except DatabaseError:
            pass  # not reachable yet (a restart): tried again at the next check
        return self.lost

    def release(self) -> None:
        if self._conn is not None:
            release_lock(self._conn)
            self._conn = None
