"""The parent's own talk with the server: connect (explaining failures in one line), describe
the server, prepare the runner's schema, count rows. Workers make their own engines."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import zlib
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from runner.dsn import MASK, driver_args, dsn_secrets, mask_dsn, parse_dsn
from runner.errors import DatabaseError, UsageError
from runner.stoppable import stoppable
from workloads import SCHEMA, Workload

CONNECT_TIMEOUT_S = 5
MIN_MASKED_PASSWORD = 4
# Settings that change results: always reported.
REPORTED_SETTINGS = (
    "max_connections",
    "superuser_reserved_connections",
    "reserved_connections",
    "shared_buffers",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "plan_cache_mode",
    "work_mem",
    "jit",
)
# What libpq says when the peer is not a PostgreSQL server (an HTTP server, say).
NOT_POSTGRES_SIGNS = (
    "invalid response to ssl negotiation",
    "server closed the connection unexpectedly",
    "expected authentication request",
    "received invalid response",
    "unsupported frontend protocol",
)
SCHEMA_MARKER = "created by runner: runner may drop and recreate this schema"


PARENT_APP_PREFIX = "runner-parent"  # every connection of the parent: never counted as load


def control_engine(dsn: str, role: str = "control", driver: str = "psycopg2") -> Engine:
    """An engine without a pool, for the parent's short conversations (psycopg2; psycopg 3 for
    the --scale filler's COPY)."""
    # The DSN's own session settings (`options`) are the workers' business: the parent's
    # queries never run under them (a user's statement_timeout=1 would cancel its setup).
    url, args, _ = driver_args(dsn, driver)
    timeout = min(float(args.pop("connect_timeout", CONNECT_TIMEOUT_S)), CONNECT_TIMEOUT_S)
    engine = create_engine(
        url,
        poolclass=NullPool,
        connect_args={**args, "connect_timeout": int(timeout), "application_name": f"{PARENT_APP_PREFIX}-{role}"[:63]},
    )
    event.listen(engine, "connect", _opened)
    event.listen(engine, "close", _closed)
    return engine


# Every open control connection, so that a Ctrl-C during setup can cancel a blocked statement
# (a lock wait, say) from the main thread while setup runs in another.
_open: dict[int, Any] = {}
_open_lock = threading.Lock()


def _opened(dbapi_conn: Any, record: Any) -> None:
    with _open_lock:
        _open[id(dbapi_conn)] = dbapi_conn


def _closed(dbapi_conn: Any, record: Any) -> None:
    with _open_lock:
        _open.pop(id(dbapi_conn), None)


def cancel_statements() -> None:
    """Ask the server to cancel whatever the parent's control connections are running."""
    with _open_lock:
        conns = list(_open.values())
    for conn in conns:
        with contextlib.suppress(Exception):  # closing or closed meanwhile: nothing to cancel
            conn.cancel()


def explain_connect_error(dsn: str, exc: BaseException) -> str:
    """One line naming the problem and the fix, with no password in it."""
    url = parse_dsn(dsn)
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    orig = getattr(exc, "orig", exc)
    detail = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    lowered = detail.lower()
    for secret in dsn_secrets(dsn):
        # libpq does not echo passwords, but a DSN inside a message would; a very short
        # password is only masked in that form, so ordinary words stay readable.
        detail = detail.replace(f":{secret}@", f":{MASK}@").replace(f"password={secret}", f"password={MASK}")
        if len(secret) >= MIN_MASKED_PASSWORD:
            detail = detail.replace(secret, MASK)
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return f"authentication failed for user {url.username!r} at {where}: check the DSN's user and password"
    if "does not exist" in lowered and "database" in lowered:
        return f"database {url.database!r} does not exist at {where}: create it or name another in the DSN"
    if "connection refused" in lowered:
        return f"connection refused at {where}: is PostgreSQL running and listening there?"
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return f"host {url.host!r} not found: check the DSN's host name"
    if "timeout expired" in lowered or "no route to host" in lowered or "unreachable" in lowered:
        return f"host {where} unreachable (no answer in {CONNECT_TIMEOUT_S} s): check the host, port and firewall"
    if any(sign in lowered for sign in NOT_POSTGRES_SIGNS):
        return f"the server at {where} does not speak the PostgreSQL protocol: is the DSN's port a PostgreSQL server?"
    return f"cannot connect to {mask_dsn(dsn)}: {detail}"


def connect(engine: Engine, dsn: str) -> Connection:
    try:
        return engine.connect()
    except DBAPIError as exc:
        raise DatabaseError(explain_connect_error(dsn, exc)) from None


def check_session_settings(conn: Connection, settings: dict[str, str]) -> dict[str, str]:
    """Try each --pg-setting in a transaction of its own, refusing one the server does not accept.

    Returns each setting as the server shows it (`1` -> `1ms`), for comparing with what the
    workers' sessions report. Each is rolled back at once: the parent's own queries never run
    under the user's settings (a statement_timeout of 1 ms would cancel them).
    """
    shown = {}
    for name, value in settings.items():
        try:
            shown[name] = str(conn.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}).scalar_one())
        except DBAPIError as exc:
            message = str(exc.orig).strip().splitlines()[0]
            raise UsageError(f"--pg-setting {name}={value} refused by the server: {message}") from None
        finally:
            conn.rollback()
    return shown


def describe_server(conn: Connection, extra_settings: tuple[str, ...] = ()) -> dict[str, Any]:
    """Version and result-changing settings; refuses a server that is not PostgreSQL."""
    version = conn.execute(text("SELECT version()")).scalar_one()
    if not str(version).startswith("PostgreSQL"):
        raise DatabaseError(f"the server is not PostgreSQL (it says {str(version)[:60]!r})")
    rows = conn.execute(
        text("SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(:names)"),
        {"names": [*REPORTED_SETTINGS, *extra_settings]},
    ).all()
    return {
        "version": conn.execute(text("SHOW server_version")).scalar_one(),
        "version_string": version,
        "settings": {name: value for name, value in sorted(rows)},
    }


def connections_in_use(conn: Connection) -> int:
    """Client connections open on the whole server right now, this one included."""
    return int(
        conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        ).scalar_one()
    )


def prepare_schema(conn: Connection, workload: Workload, scale: int | None = None, populate: bool = True) -> dict[str, int]:
    """Drop and recreate the runner's schema and the workload's tables in it, then populate them
    (`populate(conn, scale)` when the workload's populate takes a scale; not at all with
    populate=False, when the generic filler fills them after this).

    Returns the rows the populate step put in each table.

    A schema of that name that the runner did not create (no marker comment) is never touched.
    """
    marker = conn.execute(
        text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = :s"),
        {"s": SCHEMA},
    ).first()
    if marker is not None and marker[0] != SCHEMA_MARKER:
        raise DatabaseError(
            f"schema {SCHEMA!r} exists and was not created by runner: refusing to drop it "
            "(drop it yourself or point --dsn at another database)"
        )
    try:
        if marker is not None:
            conn.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        conn.execute(text(f"COMMENT ON SCHEMA {SCHEMA} IS '{SCHEMA_MARKER}'"))
        # For the rest of this transaction, a name the workload's DDL or its populate leaves
        # unqualified (raw SQL's `INSERT INTO item`, a type) is created in, and found first in, our
        # schema, not the server's `public` (an extension's type or function is still found there).
        conn.execute(text(f"SET LOCAL search_path TO {SCHEMA}, public"))
        conn.execution_options(schema_translate_map=workload.schema_map)  # an app's schemas become ours
        workload.metadata.create_all(conn)
        populated: dict[str, int] = {}
        if populate and workload.populate is not None:
            populated = _populate(conn, workload, scale)
        conn.commit()  # one transaction: the schema appears with its marker or not at all
    except DBAPIError as exc:
        conn.rollback()
        raise DatabaseError(f"cannot create the workload's tables: {str(exc.orig).strip()}") from None
    return populated


def _populate(conn: Connection, workload: Workload, scale: int | None) -> dict[str, int]:
    """The workload's own populate; what it raises is the workload's fault, said in its words (a
    statement it sent that failed stays a database error, DBAPIError, handled by the caller)."""
    assert workload.populate is not None
    try:
        with stoppable():  # the workload's own Python, which may loop where no cancel reaches
            return workload.populate(conn, scale) if workload.populate_takes_scale else workload.populate(conn)
    except DBAPIError:
        raise
    except Exception as exc:
        detail = str(exc).strip().splitlines()
        raise UsageError(f"the workload's populate failed: {type(exc).__name__}{': ' + detail[0] if detail else ''}") from None


def count_rows(conn: Connection, workload: Workload) -> dict[str, int]:
    return {
        str(table.name): int(conn.execute(text(f"SELECT count(*) FROM {SCHEMA}.{table.name}")).scalar_one())
        for table in workload.metadata.sorted_tables
    }


# The run's hold on its schema: an advisory lock, on a connection of its own, for the run's whole
# life. A second run on the same database would drop the first one's tables. It is a
# transaction-level lock in a transaction left open: through a transaction pooler (PgBouncer) a
# session lock would stay with whichever server connection took it, after this run ended.
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
