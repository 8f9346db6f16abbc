"""`runner explain FILE`: the plans of the statements the slowest ops sent (`.exemplars`).

Each distinct statement is explained once, with the parameters of the slowest op that sent it,
on one psycopg 3 connection of the parent. A result file is input from anywhere (a teammate, a
CI artifact), so a statement in it is never trusted:

- it is bound on the client (the kept JSON values as literals, as psycopg2 would) and sent
  through the extended protocol, which takes exactly one statement: `SELECT 1; DROP TABLE t`
  is refused by the server before anything runs, and the run ends naming the op (exit 2);
- without --analyze the EXPLAIN runs in a READ ONLY transaction, so not even a function the
  planner calls can write; with --analyze the statement runs, as EXPLAIN (ANALYZE, BUFFERS), in
  a transaction that is always rolled back, and the sequences of the runner's schema are set
  back to where they were (nextval is not undone by a rollback). What no rollback undoes
  elsewhere (a sequence in another schema, a function's effect outside the database) stays:
  --analyze runs what the file says.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from runner.errors import DatabaseError, UsageError
from runner.server.control import connect, control_engine
from runner.worker.psycopg_async import format_params
from workloads import SCHEMA

SYNTAX_ERROR = "42601"  # what the server answers to more than one statement in one Parse
Sequences = dict[str, tuple[int, bool]]  # a sequence of the runner's schema -> (last_value, is_called)


def _bindable(statement: str, parameters: Any) -> tuple[str, Any]:
    """The statement and parameters as psycopg's client-side binding takes them: asyncpg's `$n`
    become `%s`."""
    if isinstance(parameters, list) and "$" in statement:
        text, order = format_params(statement)
        if order:
            return text, [parameters[i] if i < len(parameters) else None for i in order]
    if not parameters:
        return statement.replace("%%", "%"), None  # no parameters: the text is sent as it is
    return statement, parameters


def distinct_statements(exemplars: dict[str, list[dict[str, Any]]]) -> list[tuple[str, float, str, Any]]:
    """(op, the slowest op's latency, statement, parameters), each statement once, slowest first."""
    seen: set[str] = set()
    out = []
    for op, kept in exemplars.items():
        for exemplar in kept:  # slowest first
            for call in exemplar["statements"]:
                if not isinstance(call["statement"], str):
                    raise TypeError(f"a statement of {op} is a {type(call['statement']).__name__}, not text")
                if call["statement"] not in seen:
                    seen.add(call["statement"])
                    out.append((op, exemplar["latency_ms"], call["statement"], call["parameters"]))
    return out


def _bound(conn: psycopg.Connection[Any], statement: str, parameters: Any) -> str:
    """The statement with its parameters as SQL literals, bound on the client."""
    text, params = _bindable(statement, parameters)
    return text if params is None else psycopg.ClientCursor(conn).mogrify(text, params)


def _sequences(conn: psycopg.Connection[Any]) -> Sequences:
    """Where each sequence of the runner's schema stands."""
    rows = conn.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = %s", (SCHEMA,)).fetchall()
    return {name: _position(conn, name) for (name,) in rows}


def _position(conn: psycopg.Connection[Any], sequence: str) -> tuple[int, bool]:
    row = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(SCHEMA, sequence))).fetchone()
    assert row is not None  # a sequence is a relation of exactly one row
    return int(row[0]), bool(row[1])


def _set_back(conn: psycopg.Connection[Any], before: Sequences) -> None:
    """Put every sequence an explained statement moved back where it was (setval, like nextval,
    is outside the transaction)."""
    for sequence, (value, called) in before.items():
        if _position(conn, sequence) != (value, called):
            conn.execute("SELECT setval(%s::regclass, %s, %s)", (sql.Identifier(SCHEMA, sequence).as_string(conn), value, called))
    conn.commit()


def _plan(conn: psycopg.Connection[Any], op: str, statement: str, parameters: Any, analyze: bool) -> list[str]:
    text = ("EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN ") + _bound(conn, statement, parameters)
    before = _sequences(conn) if analyze else {}
    conn.rollback()
    try:
        if not analyze:
            conn.execute("SET TRANSACTION READ ONLY")  # the transaction's first statement: binding for all of it
        # prepare=True: a named Parse, the extended protocol, which takes exactly one statement.
        return [str(row[0]) for row in conn.execute(text, prepare=True).fetchall()]
    except psycopg.Error as exc:
        detail = (exc.diag.message_primary or str(exc)).strip()
        if exc.sqlstate == SYNTAX_ERROR:
            raise UsageError(
                f"refused {op}'s statement: {detail} (a result file's statement must be exactly one SQL statement; nothing of it ran)"
            ) from None
        raise DatabaseError(f"EXPLAIN failed for {op}'s statement: {detail}") from None
    finally:
        conn.rollback()  # ANALYZE ran the statement: undo whatever it did
        if before:
            _set_back(conn, before)


def explain(doc: dict[str, Any], dsn: str, analyze: bool, statements: list[tuple[str, float, str, Any]]) -> list[dict[str, Any]]:
    """One entry per distinct statement (`distinct_statements` of the document's exemplars): op,
    latency of the slowest op that sent it, plan lines."""
    if not doc.get("exemplars"):
        raise UsageError("the result holds no exemplars: run with --exemplars N (e.g. --exemplars 3)")
    clone = (doc.get("load") or {}).get("clone")
    if clone:  # the run's tables were a clone of one load, in a database of their own on that server
        from runner.load.reuse import with_database

        dsn = with_database(dsn, clone["database"])
    engine = control_engine(dsn, "explain", "psycopg")
    try:
        with connect(engine, dsn) as conn:
            raw = conn.connection.driver_connection  # psycopg's own: prepare=True, ClientCursor
            assert isinstance(raw, psycopg.Connection)
            entries = []
            for op, latency_ms, statement, parameters in statements:
                plan = _plan(raw, op, statement, parameters, analyze)
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
