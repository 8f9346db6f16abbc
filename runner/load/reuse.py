"""One load, many runs: the loaded tables kept in a template database and cloned for each run.

--repeat, `runner capacity` and `runner advise` measure many runs of one workload at one scale,
and --keep-load lets later processes (a sweep) do the same. Reloading for each of them cost a
whole load per run (seconds to minutes). Of the ways PostgreSQL offers to start every run from
the same state, a template database cloned per run was chosen:

- `CREATE DATABASE ... TEMPLATE ... STRATEGY FILE_COPY` copies the files: 0.2-0.4 s for 204 MB
  (two 1M-row tables with their keys) on this 2-core machine, where loading them took 11 s. The
  clone has the loaded rows, their keys and the planner statistics (pg_statistic is per
  database), the rows still frozen (COPY FREEZE).
- Undoing a run's writes works only for inserts (an UPDATE's old row version cannot be put
  back), and a kept copy restored per run costs a table copy and an index build, close to a load.

It needs a role that may CREATE DATABASE: the embedded server's always may; on a --dsn server a
role that may not reloads for every run, and the document says so (`.load.reuse`). The databases
are named after the DSN's database (`<db>__runner_load`, `<db>__runner_run`), carry a marker
comment (a database of that name without it is never dropped), the run's clone replaces the
last one at each run, as the `runner` schema does, and stays after the run for `runner explain`;
the template is dropped when the command ends, unless --keep-load keeps it for the next process
(which reuses it only when its key, the tables' DDL and the load's options, is the same).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateTable

from runner import __version__
from runner.dsn import parse_dsn
from runner.errors import DatabaseError
from runner.server.control import connect, control_engine
from workloads import Workload

MARKER = "runner load"  # a database's comment: "runner load <key>" (template) or "runner load run"
TEMPLATE_SUFFIX = "__runner_load"
RUN_SUFFIX = "__runner_run"
NAME_ROOM = 63 - len(TEMPLATE_SUFFIX)  # PostgreSQL's identifier limit
CLONE_TRIES = 20  # a template still in use (autovacuum's last visit) is retried, 0.25 s apart
CLONE_RETRY_S = 0.25


def load_key(workload: Workload, scale: int, tables: tuple[tuple[str, int], ...], analyze: bool, source: str) -> str:
    """What the loaded state depends on: the tables' DDL, the scale, the filler's version."""
    ddl = "\n".join(str(CreateTable(table).compile(dialect=postgresql.dialect())) for table in workload.metadata.sorted_tables)  # type: ignore[no-untyped-call]
    parts = [__version__, workload.name, ddl, str(scale), repr(tables), str(analyze), source]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def with_database(dsn: str, database: str) -> str:
    """The same DSN, another database on the server."""
    return parse_dsn(dsn).set(database=database).render_as_string(hide_password=False)


@dataclass
class Template:
    key: str
    dsn: str  # the template's DSN: the load goes there
    loaded: Any = None  # what the load left: rows per table and `.load`'s figures (runner.run)
    kept: bool = False  # found from an earlier process (--keep-load), not loaded by this one


class Clones:
    """The template database and each run's clone, on the server of `dsn`."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._engine = control_engine(dsn, "load").execution_options(isolation_level="AUTOCOMMIT")
        with connect(self._engine, dsn) as conn:
            base = str(conn.execute(text("SELECT current_database()")).scalar())[:NAME_ROOM]
            self._file_copy = int(conn.execute(text("SHOW server_version_num")).scalar() or 0) >= 150000
        self.template_name, self.run_name = base + TEMPLATE_SUFFIX, base + RUN_SUFFIX
        self.template: Template | None = None
        self.refused: str | None = None  # why this server cannot hold a template (allowed())

    def allowed(self) -> str | None:
        """None when the role may create databases; else why not, for `.load.reuse`."""
        with connect(self._engine, self.dsn) as conn:
            may = conn.execute(text("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")).scalar()
        return None if may else "the role may not CREATE DATABASE (grant it CREATEDB to load once)"

    def kept_template(self, key: str) -> Template | None:
        """A template an earlier process kept (--keep-load) for the same key, whole (its load's
        figures in its comment, written once the load committed)."""
        with connect(self._engine, self.dsn) as conn:
            comment = self._marker(conn, self.template_name) or ""
        prefix = f"{MARKER} {key} "
        if not comment.startswith(prefix):
            return None
        try:
            loaded = json.loads(comment[len(prefix) :])
        except ValueError:
            return None
        self.template = Template(key, with_database(self.dsn, self.template_name), loaded, kept=True)
        return self.template

    def keep_result(self, populated: dict[str, int], load: dict[str, Any] | None) -> None:
        """What the load put in the template, kept with it (its comment) for a later process; the
        template then takes no connections, so nothing (autovacuum included) holds it when cloned."""
        assert self.template is not None
        self.template.loaded = {"populated": populated, "load": load}
        # Quoted for SQL, and its colons escaped from SQLAlchemy's :name parameters.
        comment = f"{MARKER} {self.template.key} {json.dumps(self.template.loaded)}".replace("'", "''").replace(":", "\\:")
        with connect(self._engine, self.dsn) as conn:
            conn.execute(text(f"COMMENT ON DATABASE \"{self.template_name}\" IS '{comment}'"))
            conn.execute(text(f'ALTER DATABASE "{self.template_name}" WITH ALLOW_CONNECTIONS false'))

    def loaded(self) -> tuple[dict[str, int], dict[str, Any]]:
        """Rows per table and `.load` of the template's load."""
        assert self.template is not None and self.template.loaded is not None
        return dict(self.template.loaded["populated"]), dict(self.template.loaded["load"])

    def new_template(self, key: str) -> Template:
        """An empty template database for the load (an older one of ours dropped first)."""
        with connect(self._engine, self.dsn) as conn:
            self._drop(conn, self.template_name)
            conn.execute(text(f'CREATE DATABASE "{self.template_name}"'))
            conn.execute(text(f"COMMENT ON DATABASE \"{self.template_name}\" IS '{MARKER} {key}'"))
        self.template = Template(key, with_database(self.dsn, self.template_name))
        return self.template

    def clone(self) -> tuple[str, float]:
        """A fresh copy of the template for one run (the last run's copy replaced); its DSN and
        the seconds the copy took."""
        assert self.template is not None
        started = time.monotonic()
        strategy = " STRATEGY FILE_COPY" if self._file_copy else ""  # the files copied, not every page through the WAL
        with connect(self._engine, self.dsn) as conn:
            self._drop(conn, self.run_name)
            for attempt in range(CLONE_TRIES):
                try:
                    conn.execute(text(f'CREATE DATABASE "{self.run_name}" TEMPLATE "{self.template_name}"{strategy}'))
                    break
                except DBAPIError as exc:  # 55006: the template is being accessed (autovacuum, a late close)
                    if getattr(exc.orig, "pgcode", None) != "55006" or attempt == CLONE_TRIES - 1:
                        raise
                    time.sleep(CLONE_RETRY_S)
            conn.execute(text(f"COMMENT ON DATABASE \"{self.run_name}\" IS '{MARKER} run'"))
        return with_database(self.dsn, self.run_name), time.monotonic() - started

    def close(self, keep_template: bool) -> None:
        """The template dropped unless it is to be kept; the last run's clone stays (explain)."""
        if self.template is not None and not keep_template:
            with connect(self._engine, self.dsn) as conn:
                self._drop(conn, self.template_name)
        self._engine.dispose()

    def _marker(self, conn: Connection, name: str) -> str | None:
        row = conn.execute(text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"), {"n": name}).first()
        return None if row is None else (row[0] or "")

    def _drop(self, conn: Connection, name: str) -> None:
        """Drop a database of ours by that name; one without our marker is refused, untouched."""
        comment = self._marker(conn, name)
        if comment is None:
            return
        if not comment.startswith(MARKER):
            raise DatabaseError(f"database {name!r} exists and was not created by runner: refusing to drop it (drop it yourself, or use another database)")
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
