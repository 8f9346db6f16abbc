"""Nothing outside the runner's schema is created, read or written by its setup: every object in
every other schema is listed before and after runs whose models declare enum types (with no
schema, and in an app's schema) and whose populate names a table unqualified, on a database
that already has a type and a table of those names (the app's own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import execute, query, run_runner

OBJECTS = """
SELECT string_agg(kind || ' ' || nspname || '.' || name, ', ' ORDER BY kind, nspname, name) FROM (
    SELECT 'relation' AS kind, n.nspname, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    UNION ALL SELECT 'type', n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    UNION ALL SELECT 'function', n.nspname, p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    UNION ALL SELECT 'schema', nspname, '' FROM pg_namespace
) objects WHERE nspname NOT IN ('runner', 'pg_catalog', 'information_schema', 'pg_toast') AND nspname NOT LIKE 'pg_temp%'
  AND nspname NOT LIKE 'pg_toast_temp%'
"""

MODELS = '''
import enum

from sqlalchemy import String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from workloads import workload


class Status(enum.Enum):
    draft = "draft"
    live = "live"


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    __table_args__ = {SCHEMA_ARGS}
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))
    status: Mapped[Status]


bench = workload("items", Base)


@bench.populate
def fill(conn):
    conn.execute(text("INSERT INTO item (name, status) SELECT 'i' || g, 'live' FROM generate_series(1, 100) g"))
    return {"item": 100}


@bench.write(rows={"item": 1})
async def add(ctx):
    async with ctx.sessions() as session, session.begin():
        session.add(Item(name="new", status=Status.draft))
'''


@pytest.mark.system
def test_setup_touches_nothing_outside_its_schema(dsn: str, tmp_path: Path) -> None:
    # The app's own type and table of the same names, with other contents.
    execute(dsn, "DROP TABLE IF EXISTS public.item", "DROP TYPE IF EXISTS public.status",
            "CREATE TYPE public.status AS ENUM ('archived')", "CREATE TABLE public.item (id int, name text)",
            "INSERT INTO public.item VALUES (1, 'the app''s own')")
    try:
        before = query(dsn, OBJECTS)
        for schema_args in ("{}", '{"schema": "app"}'):
            path = tmp_path / "items.py"
            path.write_text(MODELS.replace("{SCHEMA_ARGS}", schema_args))
            result = run_runner("--workload", str(path), "--ops", "40", "--read-ratio", "0", "--quiet", dsn=dsn)
            assert result.code == 0, result.stderr  # every write's enum label is runner.status's
            assert result.doc is not None and result.doc["database"]["rows"] == {"item": 140}
            assert query(dsn, OBJECTS) == before, schema_args
            assert query(dsn, "SELECT count(*) FROM public.item") == 1
            assert query(dsn, "SELECT string_agg(enumlabel, ',') FROM pg_enum WHERE enumtypid = 'public.status'::regtype") == "archived"
            assert query(dsn, "SELECT udt_schema FROM information_schema.columns WHERE table_schema = 'runner' AND column_name = 'status'") == "runner"
    finally:
        execute(dsn, "DROP TABLE IF EXISTS public.item", "DROP TYPE IF EXISTS public.status")
