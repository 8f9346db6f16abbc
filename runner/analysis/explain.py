"""`runner explain FILE`: the plans of the statements the slowest ops sent (`.exemplars`).

Each distinct statement is explained once, with the parameters of the slowest op that sent it,
on one psycopg2 connection of the parent (its client-side binding takes the kept JSON values
as they are). With --analyze the statement runs, as EXPLAIN (ANALYZE, BUFFERS), inside a
transaction that is rolled back, so an explained INSERT leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

import psycopg2
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from runner.errors import DatabaseError, UsageError
from runner.server.control import connect, control_engine
from runner.worker.raw import format_params


def _bindable(statement: str, parameters: Any) -> tuple[str, Any]:
    """The statement and parameters as psycopg2 takes them: asyncpg's `$n` become `%s`."""
    if isinstance(parameters, list) and "$" in statement:
        text, order = format_params(statement)
        if order:
            return text, [parameters[i] if i < len(parameters) else None for i in order]
    if not parameters:
        return statement.replace("%%", "%"), None  # no parameters: psycopg2 sends the text as it is
    return statement, parameters


def distinct_statements(exemplars: dict[str, list[dict[str, Any]]]) -> list[tuple[str, float, str, Any]]:
    """(op, the slowest op's latency, statement, parameters), each statement once, slowest first."""
    seen: set[str] = set()
    out = []
    for op, kept in exemplars.items():
        for exemplar in kept:  # slowest first
            for call in exemplar["statements"]:
                if call["statement"] not in seen:
                    seen.add(call["statement"])
                    out.append((op, exemplar["latency_ms"], call["statement"], call["parameters"]))
    return out


def _plan(conn: Connection, statement: str, parameters: Any, analyze: bool) -> list[str]:
    text, params = _bindable(statement, parameters)
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
    cursor = conn.connection.cursor()  # the DB-API cursor: psycopg2 binds %s and %(name)s itself
    try:
        cursor.execute(prefix + text, params)
        return [str(row[0]) for row in cursor.fetchall()]
    finally:
        cursor.close()
        conn.rollback()  # ANALYZE ran the statement: undo whatever it did


def explain(doc: dict[str, Any], dsn: str, analyze: bool) -> list[dict[str, Any]]:
    """One entry per distinct statement: op, latency of the slowest op that sent it, plan lines."""
    exemplars = doc.get("exemplars")
    if not exemplars:
        raise UsageError("the result holds no exemplars: run with --exemplars N (e.g. --exemplars 3)")
    engine = control_engine(dsn, "explain")
    try:
        with connect(engine, dsn) as conn:
            entries = []
            for op, latency_ms, statement, parameters in distinct_statements(exemplars):
                try:
                    plan = _plan(conn, statement, parameters, analyze)
                except (DBAPIError, psycopg2.Error) as exc:  # a raw cursor raises psycopg2's own errors
                    detail = str(getattr(exc, "orig", exc)).strip().splitlines()
                    raise DatabaseError(f"EXPLAIN failed for {op}'s statement: {detail[0] if detail else type(exc).__name__}") from None
                entries.append({"op": op, "latency_ms": latency_ms, "statement": statement, "parameters": parameters, "plan": plan})
            return entries
    finally:
        engine.dispose()


def render(entries: list[dict[str, Any]]) -> str:
    blocks = []
    for entry in entries:
        blocks.append(
            f"-- {entry['op']}: slowest op {entry['latency_ms']} ms\n{entry['statement']}\n"
            f"-- parameters: {entry['parameters']}\n" + "\n".join(entry["plan"])
        )
    return "\n\n".join(blocks)
