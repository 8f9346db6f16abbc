"""A column's CHECK constraints, kept by its values: the server says which of a pool's values a
single-column CHECK accepts (`balance >= 0`, `char_length(code) = 8`), and rows draw only from
those. The constraint is read from the created table (pg_constraint), so a check written in SQL,
in the model or by a migration is seen alike. A check over several columns is left to the COPY,
whose failure names it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ARRAY, Column, Connection, Table, bindparam, text
from sqlalchemy.exc import DBAPIError

from runner.load.values import POOL_OBJECTS, cannot_fill
from workloads import SCHEMA

CHECKS = text(
    """
    SELECT c.conname, pg_get_expr(c.conbin, c.conrelid), a.attname, format_type(a.atttypid, a.atttypmod)
    FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
    WHERE c.conrelid = CAST(:table AS regclass) AND c.contype = 'c' AND cardinality(c.conkey) = 1
    ORDER BY c.conname
    """
)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def keep_checked(conn: Connection, table: Table, columns: list[Column[Any]], pools: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The pools with only the values every single-column CHECK of the table accepts."""
    by_name = {c.name: c for c in columns}
    out = dict(pools)
    for name, expression, column, sql_type in conn.execute(CHECKS, {"table": f"{SCHEMA}.{_quoted(str(table.name))}"}):
        if column not in by_name or column not in out:
            continue
        values = out[column]
        probe = text(
            f"SELECT v.ord FROM unnest(CAST(:values AS {sql_type}[])) WITH ORDINALITY AS v({_quoted(column)}, ord) WHERE ({expression})"
        ).bindparams(bindparam("values", type_=ARRAY(by_name[column].type)))
        try:
            with conn.begin_nested():
                kept = {int(i) - 1 for (i,) in conn.execute(probe, {"values": values})}
        except DBAPIError:  # values the probe cannot cast: the COPY will say what the check refused
            continue
        accepted = [v for i, v in enumerate(values) if i in kept]
        if not accepted:
            raise cannot_fill(table, f"none of {POOL_OBJECTS} generated values meets its check {name} ({expression})", column)
        out[column] = accepted
    return out
