"""The parent's own talk with the server: connect (explaining failures in one line), describe
the server, prepare the runner's schema, count rows. Workers make their own engines."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from runner.config import mask_dsn, parse_dsn, with_driver
from runner.errors import DatabaseError, UsageError
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


def control_engine(dsn: str, role: str = "control") -> Engine:
    """A psycopg2 engine without a pool, for the parent's short conversations."""
    return create_engine(
        with_driver(dsn, "psycopg2"),
        poolclass=NullPool,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": f"{PARENT_APP_PREFIX}-{role}"},
    )


def explain_connect_error(dsn: str, exc: BaseException) -> str:
    """One line naming the problem and the fix, with no password in it."""
    url = parse_dsn(dsn)
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    orig = getattr(exc, "orig", exc)
    detail = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    lowered = detail.lower()
    if url.password:
        # libpq does not echo passwords, but a DSN inside a message would; a very short
        # password is only masked in that form, so ordinary words stay readable.
        detail = detail.replace(f":{url.password}@", ":***@")
        if len(str(url.password)) >= MIN_MASKED_PASSWORD:
            detail = detail.replace(str(url.password), "***")
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


def apply_session_settings(conn: Connection, settings: dict[str, str]) -> None:
    """SET LOCAL each --pg-setting in this transaction, refusing one the server does not accept."""
    for name, value in settings.items():
        try:
            # is_local: the value lasts until this transaction ends, so setup does not run under it.
            conn.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})
        except DBAPIError as exc:
            conn.rollback()
            message = str(exc.orig).strip().splitlines()[0]
            raise UsageError(f"--pg-setting {name}={value} refused by the server: {message}") from None


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


def prepare_schema(conn: Connection, workload: Workload) -> dict[str, int]:
    """Drop and recreate the runner's schema and the workload's tables in it, then populate them.

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
        workload.metadata.create_all(conn)
        populated = workload.populate(conn) if workload.populate else {}
        conn.commit()  # one transaction: the schema appears with its marker or not at all
    except DBAPIError as exc:
        conn.rollback()
        raise DatabaseError(f"cannot create the workload's tables: {str(exc.orig).strip()}") from None
    return populated


def count_rows(conn: Connection, workload: Workload) -> dict[str, int]:
    return {
        str(table.name): int(conn.execute(text(f"SELECT count(*) FROM {SCHEMA}.{table.name}")).scalar_one())
        for table in workload.metadata.sorted_tables
    }
