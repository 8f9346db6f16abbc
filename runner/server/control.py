"""The parent's own talk with the server: connect (explaining failures in one line), describe
the server, prepare the runner's schema, count rows. Workers make their own engines."""

from __future__ import annotations

import contextlib
import threading
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
