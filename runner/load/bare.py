"""Load into bare tables, as `pgbench -i` does: the primary keys, unique constraints, indexes and
foreign keys of the tables are dropped inside the load's transaction, the rows COPYed in, and
all of them built again after, each in one pass over the loaded rows (a foreign key checked row
by row during the COPY was three quarters of the load's time). They are read from the catalog
(pg_get_constraintdef, pg_get_indexdef), so whatever made them, the models, a DDL event or a
migration, they come back as they were. Another session sees none of it: the transaction holds
its tables' locks until the commit. CHECK and NOT NULL stay: they cost little per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, text

from runner.errors import UsageError

CONSTRAINTS = text(
    """
    SELECT c.conrelid::regclass::text, quote_ident(c.conname), pg_get_constraintdef(c.oid), c.contype
    FROM pg_constraint c
    WHERE c.conrelid = ANY(CAST(:tables AS regclass[])) AND c.contype IN ('p', 'u', 'f')
    ORDER BY c.contype, c.conrelid, c.conname
    """
)
INDEXES = text(
    """
    SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
    FROM pg_index i
    WHERE i.indrelid = ANY(CAST(:tables AS regclass[]))
      AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
    ORDER BY i.indexrelid
    """
)


@dataclass(frozen=True)
class _Constraint:
    table: str  # schema-qualified, quoted as needed
    name: str  # quoted as needed
    definition: str  # "PRIMARY KEY (id)", "FOREIGN KEY (a_id) REFERENCES runner.a(id)"
    kind: str  # p, u or f


@contextmanager
def bare(conn: Connection, tables: list[str]) -> Iterator[None]:
    """The tables (schema-qualified names) without keys, unique constraints, indexes or foreign
    keys inside the block, with all of them built again after it, in the caller's transaction."""
    constraints = [_Constraint(*row) for row in conn.execute(CONSTRAINTS, {"tables": tables})]
    indexes = [(str(name), str(definition)) for name, definition in conn.execute(INDEXES, {"tables": tables})]
    foreign = [c for c in constraints if c.kind == "f"]
    keys = [c for c in constraints if c.kind != "f"]
    for c in foreign + keys:  # a foreign key depends on its parent's key: it goes first
        conn.execute(text(f"ALTER TABLE {c.table} DROP CONSTRAINT {c.name}"))
    for name, _ in indexes:
        conn.execute(text(f"DROP INDEX {name}"))
    yield
    for c in keys + foreign:  # and comes back last
        _build(conn, f"ALTER TABLE {c.table} ADD CONSTRAINT {c.name} {c.definition}", f"{c.table}'s {c.name}")
    for name, definition in indexes:
        _build(conn, definition, f"index {name}")


def _build(conn: Connection, statement: str, what: str) -> None:
    from sqlalchemy.exc import IntegrityError

    try:
        conn.execute(text(statement))
    except IntegrityError as exc:  # the loaded rows break it: a unique index the models do not declare, say
        first = str(exc.orig).strip().splitlines()[0]
        raise UsageError(f"--scale: the loaded rows break {what}: {first}; give the workload its own populate(conn, scale)") from None
