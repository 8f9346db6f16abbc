"""--scale end to end: the generic filler and a workload's own populate(conn, scale), run by the CLI on the real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.dsn import child_env
from tests.conftest import REPO, query, run_cli, run_runner, started

WITH_POPULATE = '''
from sqlalchemy import MetaData, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from workloads import workload


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(8), unique=True)


bench = workload("items", Base)


@bench.populate
def fill(conn, {params}):
    n = {rows}
    conn.execute(text(f"INSERT INTO runner.item SELECT g, 'i' || g FROM generate_series(1, {{n}}) g"))
    return {{"item": n}}


@bench.read()
async def get(ctx):
    async with ctx.sessions() as session:
        await session.get(Item, ctx.keys.pick(max(ctx.scale, 1)))
'''


@pytest.mark.system
def test_the_seed_tables_filled_by_the_generic_filler(dsn: str) -> None:
    result = run_runner("--scale", "5000", "--ops", "400", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr  # writes after the load: the id sequences carried on past 5000
    doc = result.doc
    assert doc is not None
    load = doc["load"]
    assert load["source"] == "generic" and load["scale"] == 5000 and doc["config"]["scale"] == 5000
    assert {t: v["rows"] for t, v in load["tables"].items()} == {"a": 5000, "b": 5000}
    assert load["rows"] == 10000 and load["rows_per_s"] == pytest.approx(load["rows"] / load["seconds"], rel=0.01)
    assert doc["database"]["rows"] == doc["database"]["expected_rows"]
    assert doc["database"]["expected_rows"]["a"] == 5000 + 3 * doc["totals"]["by_op"]["write"]["ok"]
    # Every b points at an a the filler made, and the values are not all alike.
    assert query(dsn, "SELECT count(*) FROM runner.b WHERE id <= 5000 AND a_id > 5000") == 0
    assert query(dsn, "SELECT count(DISTINCT a_id) FROM runner.b WHERE id <= 5000") > 2500
    assert query(dsn, "SELECT count(DISTINCT data) FROM runner.a WHERE id <= 5000") > 100


@pytest.mark.system
def test_unique_and_length_limited_columns_hold(dsn: str) -> None:
    result = run_runner("--workload", "examples.shop.bench", "--scale", "3000", "--ops", "100", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    assert query(dsn, "SELECT count(DISTINCT email) FROM runner.users") == 3000
    assert query(dsn, "SELECT max(length(sku)) FROM runner.products") <= 32
    assert query(dsn, "SELECT count(*) FROM runner.order_lines l LEFT JOIN runner.products p ON p.id = l.product_id WHERE p.id IS NULL") == 0


@pytest.mark.system
@pytest.mark.parametrize(("params", "rows", "source"), [("scale", "scale or 5", "workload"), ("_unused=None", "7", None)])
def test_a_populate_that_takes_the_scale_is_used_one_that_does_not_is_replaced(
    dsn: str, tmp_path: Path, params: str, rows: str, source: str | None
) -> None:
    path = tmp_path / "items.py"
    path.write_text(textwrap.dedent(WITH_POPULATE.format(params=params, rows=rows)))
    if source is None:  # fill(conn, _unused=None) takes no scale: count its parameters as one
        path.write_text(path.read_text().replace("def fill(conn, _unused=None):", "def fill(conn):"))
    result = run_runner("--workload", str(path), "--scale", "300", "--ops", "50", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None
    assert doc["load"]["source"] == (source or "generic")
    assert doc["database"]["rows"]["item"] == 300
    names = query(dsn, "SELECT min(name) FROM runner.item")
    assert names.startswith("i") == (source == "workload")
    without = run_runner("--workload", str(path), "--ops", "50", "--quiet", dsn=dsn).doc
    assert without is not None and without["load"] is None  # no --scale, no default: its populate as it is
    assert without["database"]["rows"]["item"] == (7 if source is None else 5)  # scale None: its own default


UUID_KEYS = '''
import uuid

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from workloads import workload


class Base(DeclarativeBase):
    pass


class Tag(Base):
    __tablename__ = "tag"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


class Label(Base):
    __tablename__ = "label"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tag_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Tag.id))


bench = workload("tags", Base)


@bench.read()
async def get(ctx):
    async with ctx.sessions() as session:
        assert await session.get(Tag, uuid.UUID(int=ctx.keys.pick(ctx.scale))) is not None
'''


@pytest.mark.system
def test_tables_keyed_by_uuids_are_loaded_and_committed(dsn: str, tmp_path: Path) -> None:
    """Every key a UUID: the load never ran a statement through SQLAlchemy (no sequence to set),
    so its transaction was never committed: `.load` said 500 rows, the tables held 0, and the run
    measured empty tables (every read failed here)."""
    path = tmp_path / "tags.py"
    path.write_text(UUID_KEYS)
    result = run_runner("--workload", str(path), "--scale", "500", "--ops", "50", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    assert result.doc is not None and result.doc["database"]["rows"] == {"tag": 500, "label": 500}
    assert query(dsn, "SELECT count(*) FROM runner.label l JOIN runner.tag t ON t.id = l.tag_id") == 500


COMPOSITE = '''
from sqlalchemy import MetaData, Table, Column, Integer
from workloads import workload

metadata = MetaData()
Table("pair", metadata, Column("a", Integer, primary_key=True), Column("b", Integer, primary_key=True))
bench = workload("pairs", metadata)


@bench.read()
async def nothing(ctx):
    pass
'''


@pytest.mark.system
def test_a_table_the_filler_cannot_fill_is_one_line(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "pairs.py"
    path.write_text(COMPOSITE)
    result = run_runner("--workload", str(path), "--scale", "10", "--ops", "10", dsn=dsn)
    assert result.code == 2
    assert "cannot fill pair: it has a composite primary key" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_bad_scale_is_refused() -> None:
    result = run_cli("--scale", "0", "--ops", "10")
    assert result.code == 2 and "--scale must be at least 1" in result.stderr


@pytest.mark.system
def test_an_exception_in_the_workloads_populate_is_the_workloads(dsn: str, tmp_path: Path) -> None:
    """It was "internal error: KeyError", as if the runner had a bug."""
    path = tmp_path / "items.py"
    path.write_text(textwrap.dedent(WITH_POPULATE.format(params="scale", rows="scale or 5")).replace(
        "    n = ", "    raise KeyError('no such config value')\n    n = "))
    result = run_runner("--workload", str(path), "--ops", "10", dsn=dsn)
    assert result.code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "the workload's populate failed: KeyError: 'no such config value'" in result.stderr and "internal error" not in result.stderr


FEED = '''
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from workloads import workload


class Base(AsyncAttrs, DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(120), unique=True)


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey(User.id))
    comments: Mapped[list["Comment"]] = relationship(lazy="select")


class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey(Post.id))
    body: Mapped[str] = mapped_column(String(200))


bench = workload("feed", Base, proportions={"users": 0.05, "comments": 3}, fanout={"comments.post_id": "zipf"})


@bench.read()
async def feed(ctx):
    async with ctx.sessions() as session:
        posts = (await session.scalars(select(Post).where(Post.author_id == ctx.keys.pick("users")).limit(10))).all()
        for post in posts:
            await post.awaitable_attrs.comments  # one SELECT per post: the N+1
'''


@pytest.mark.system
def test_proportions_make_a_feeds_n_plus_1_visible(dsn: str, tmp_path: Path) -> None:
    """With N rows in every table each user had ~1 post and the lazy loads hid in the noise; at 20
    posts per user (users 0.05 of the posts) a feed of 10 posts is 11 statements, 10 of them one
    comment SELECT."""
    path = tmp_path / "feed.py"
    path.write_text(FEED)
    result = run_runner("--workload", str(path), "--scale", "users=100", "--ops", "60", "--seed", "1", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None
    load = doc["load"]
    assert load["scale"] == 2000 and {t: v["rows"] for t, v in load["tables"].items()} == {"users": 100, "posts": 2000, "comments": 6000}
    assert load["fanout"]["comments.post_id"]["shape"] == "zipf" and load["fanout"]["posts.author_id"]["mean"] == 20.0
    assert load["analyze_s"] is not None
    anatomy = doc["totals"]["by_op"]["feed"]["anatomy"]
    assert anatomy["statements_per_op"] >= 8, anatomy  # 1 + a lazy load per post (10, or all of a user's if fewer)
    repeated = anatomy["most_repeated"]
    assert "FROM runner.comments" in repeated["statement"] and repeated["per_op"] >= 7, repeated


@pytest.mark.system
def test_ctrl_c_during_the_load_ends_it_and_leaves_nothing_loaded(dsn: str) -> None:
    """The load is one transaction on a connection the parent can cancel: a Ctrl-C rolls it back,
    keys and foreign keys dropped inside it included, and ends the run."""
    argv = [sys.executable, "-m", "runner", "--scale", "3000000", "--ops", "10"]
    env = child_env(dsn, {k: v for k, v in os.environ.items() if k != "DATABASE_URL"})
    run = started(subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    assert run.stderr is not None
    for line in run.stderr:
        if line.startswith("runner: loading"):
            break
    os.kill(run.pid, signal.SIGINT)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 130 and stdout == "", stderr
    assert stderr.strip().splitlines()[-1] == "runner: error: interrupted by SIGINT before any op was measured"
    assert query(dsn, "SELECT count(*) FROM runner.a") == 0
    assert query(dsn, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'runner.b'::regclass AND contype = 'f'") == 1  # rolled back with the rows
    assert query(dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'runner%'") == 0
