"""The generic filler in-process against the real server: every column type family, checks,
proportions and fan-out, what it refuses and says, the statistics after."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Boolean, CheckConstraint, Column, Integer, MetaData, Table
from sqlalchemy.dialects.postgresql import TSVECTOR

from runner.errors import UsageError
from runner.load.fill import Loaded, fill
from runner.load.rows import table_rows
from runner.server.control import connect, control_engine, prepare_schema
from tests.conftest import execute, query
from tests.load.models import Base
from workloads import Workload, workload


def _built(models: Any, name: str, **shape: Any) -> Workload:
    bench = workload(name, models, **shape)

    @bench.read()
    async def nothing(ctx: Any) -> None:
        pass

    return bench.build()


def _load(dsn: str, bench: Workload, scale: int, tables: tuple[tuple[str, int], ...] = (), analyze: bool = True) -> Loaded:
    with connect(control_engine(dsn), dsn) as conn:
        prepare_schema(conn, bench, scale, populate=False)
    _, rows = table_rows(bench, scale, tables)
    return fill(control_engine(dsn, "load", "psycopg"), bench, rows, analyze=analyze)


CATALOG = """
    SELECT string_agg(d, ' | ' ORDER BY d) FROM (
        SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE connamespace = 'runner'::regnamespace
        UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'runner'
    ) AS c
"""


@pytest.fixture(scope="module")
def app(dsn: str) -> Iterator[Loaded]:
    bench = _built(Base, "fill-app", proportions={"tenants": 0.1, "comments": 3}, fanout={"comments.post_id": "zipf"})
    loaded = _load(dsn, bench, 400)
    yield loaded


def test_keys_indexes_and_foreign_keys_come_back_as_they_were(dsn: str) -> None:
    """The filler loads into bare tables and builds them after: the same catalog as create_all's."""
    bench = _built(Base, "fill-catalog")
    with connect(control_engine(dsn), dsn) as conn:
        prepare_schema(conn, bench, 20, populate=False)
    before = query(dsn, CATALOG)
    _, rows = table_rows(bench, 20)
    loaded = fill(control_engine(dsn, "load", "psycopg"), bench, rows, analyze=False)
    assert query(dsn, CATALOG) == before and "FOREIGN KEY (manager_id) REFERENCES runner.users(id)" in before and "UNIQUE (user_id)" in before
    assert loaded.keys_s is not None and 0 < loaded.keys_s < loaded.seconds


def test_rows_that_break_an_index_the_models_do_not_declare_are_one_line(dsn: str) -> None:
    metadata = MetaData()
    Table("flag", metadata, Column("id", Integer, primary_key=True), Column("on", Boolean))
    bench = _built(metadata, "fill-flag")
    with connect(control_engine(dsn), dsn) as conn:
        prepare_schema(conn, bench, 50, populate=False)
    execute(dsn, 'CREATE UNIQUE INDEX one_on ON runner.flag ("on")')  # as a migration might
    with pytest.raises(UsageError) as caught:
        fill(control_engine(dsn, "load", "psycopg"), bench, {"flag": 50}, analyze=False)
    assert "the loaded rows break index runner.one_on: could not create unique index" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_every_table_gets_its_proportion_of_the_scale(app: Loaded) -> None:
    assert {name: t.rows for name, t in app.tables.items()} == {"tenants": 40, "users": 400, "profiles": 400, "posts": 400, "comments": 1200}


def test_json_arrays_and_enums_hold_what_their_types_say(dsn: str, app: Loaded) -> None:
    assert query(dsn, "SELECT count(*) FROM runner.posts WHERE jsonb_typeof(meta) <> 'object'") == 0
    assert query(dsn, "SELECT count(*) FROM runner.posts WHERE json_typeof(extra) <> 'object'") == 0
    assert query(dsn, "SELECT count(DISTINCT meta) FROM runner.posts") > 100
    # Shaped by the annotations: Mapped[dict[str, int]], Mapped[list[Visit] | None] (a TypedDict).
    assert query(dsn, "SELECT count(*) FROM runner.posts, jsonb_each(scores) AS s WHERE jsonb_typeof(s.value) <> 'number'") == 0
    assert query(dsn, "SELECT count(*) FROM runner.posts, jsonb_each(scores)") > 100
    visits = "SELECT count(*) FROM runner.posts, jsonb_array_elements(visits::jsonb) AS v"
    assert query(dsn, visits) > 100 and query(dsn, visits + " WHERE NOT (v ? 'at' AND jsonb_typeof(v -> 'pages') = 'number')") == 0
    assert query(dsn, "SELECT coalesce(max(length(t)), 0) FROM runner.posts, unnest(tags) AS t") <= 20
    assert query(dsn, "SELECT count(*) FROM runner.posts WHERE tags IS NULL") == 0
    # A Python enum is stored by its names; both appear. A non-native enum holds only its labels.
    assert query(dsn, "SELECT string_agg(DISTINCT status::text, ',' ORDER BY status::text) FROM runner.posts") == "draft,published"
    assert query(dsn, "SELECT string_agg(DISTINCT kind, ',' ORDER BY kind) FROM runner.posts") == "a,b"


def test_numbers_times_and_binaries_fit_their_columns(dsn: str, app: Loaded) -> None:
    assert query(dsn, "SELECT max(abs(price)) FROM runner.posts") < 1000  # Numeric(5, 2): below 10**3
    assert query(dsn, "SELECT count(DISTINCT price) FROM runner.posts") > 100
    assert query(dsn, "SELECT count(DISTINCT shift) FROM runner.users") > 100  # an Interval is not always zero
    for column in ("born", "wakes", "seen", "token", "avatar"):
        assert query(dsn, f"SELECT count(*) FROM runner.users WHERE {column} IS NULL") == 0, column
    assert query(dsn, "SELECT count(DISTINCT token) FROM runner.users") > 200  # drawn from a pool of 512


def test_checks_hold_and_the_server_fills_its_own_columns(dsn: str, app: Loaded) -> None:
    assert query(dsn, "SELECT count(*) FROM runner.tenants WHERE balance < 0 OR char_length(code) <> 8") == 0
    assert query(dsn, "SELECT count(DISTINCT balance) FROM runner.tenants") > 20
    # A server default is the server's (now(), at the load), a computed column the server's formula.
    assert query(dsn, "SELECT count(*) FROM runner.users WHERE created < now() - interval '1 hour'") == 0
    assert query(dsn, "SELECT count(*) FROM runner.posts WHERE title_len <> char_length(title)") == 0


def test_keys_a_tree_and_a_one_to_one(dsn: str, app: Loaded) -> None:
    assert query(dsn, "SELECT count(*) FROM runner.users WHERE manager_id >= id") == 0  # parents first
    assert query(dsn, "SELECT count(*) FROM runner.users WHERE manager_id IS NULL") == 1  # the root
    assert query(dsn, "SELECT count(DISTINCT user_id) FROM runner.profiles") == 400
    assert query(dsn, "SELECT count(DISTINCT email) FROM runner.users") == 400
    assert query(dsn, "SELECT count(*) FROM runner.users u LEFT JOIN runner.tenants t ON t.id = u.tenant_id WHERE t.id IS NULL") == 0
    shapes = {name: f.shape for name, f in app.fanout.items()}
    assert shapes == {
        "users.tenant_id": "uniform", "users.manager_id": "tree", "profiles.user_id": "one-to-one", "posts.author_id": "uniform", "comments.post_id": "zipf"
    }


def test_fanout_is_counted_and_zipf_is_skewed(dsn: str, app: Loaded) -> None:
    comments, posts = app.fanout["comments.post_id"], app.fanout["posts.author_id"]
    assert comments.mean == 3.0 and posts.mean == 1.0
    assert comments.max == query(dsn, "SELECT max(n) FROM (SELECT count(*) AS n FROM runner.comments GROUP BY post_id) c")
    assert comments.childless == query(dsn, "SELECT count(*) FROM runner.posts p WHERE NOT EXISTS (SELECT FROM runner.comments c WHERE c.post_id = p.id)")
    # zipf with theta 0.99 over 400 posts: the first rank's share is 1/zeta(400) ~ 15 %, ~180 of 1,200;
    # uniform at 3 per post would have a maximum near 10.
    assert comments.max > 60 and posts.max < 15


def test_the_statistics_are_taken_after_the_load(dsn: str, app: Loaded) -> None:
    assert app.analyze_s is not None and app.analyze_s > 0
    assert query(dsn, "SELECT reltuples FROM pg_class WHERE oid = 'runner.comments'::regclass") == 1200


def test_rows_given_per_table_set_the_unit(dsn: str) -> None:
    metadata = MetaData()
    Table("parent", metadata, Column("id", Integer, primary_key=True))
    bench = _built(metadata, "fill-given", proportions={"parent": 0.5})
    unit, rows = table_rows(bench, None, (("parent", 30),))
    assert (unit, rows) == (60, {"parent": 30})
    loaded = _load(dsn, bench, unit, (("parent", 30),), analyze=False)
    assert loaded.tables["parent"].rows == 30 and loaded.analyze_s is None


def test_a_check_over_several_columns_is_one_line_naming_it(dsn: str) -> None:
    metadata = MetaData()
    Table("span", metadata, Column("id", Integer, primary_key=True), Column("lo", Integer), Column("hi", Integer), CheckConstraint("lo < hi", name="lo_below_hi"))
    with pytest.raises(UsageError) as caught:
        _load(dsn, _built(metadata, "fill-span"), 50)
    message = str(caught.value)
    assert "span refused the generic filler's rows" in message and "lo_below_hi" in message and "columns={" in message
    assert "\n" not in message


def test_a_type_without_fake_values_is_named_and_a_factory_fills_it(dsn: str) -> None:
    def model() -> MetaData:
        metadata = MetaData()
        Table("doc", metadata, Column("id", Integer, primary_key=True), Column("body", TSVECTOR), Column("n", Integer))
        return metadata

    with pytest.raises(UsageError) as caught:
        _load(dsn, _built(model(), "fill-doc"), 10)
    assert "cannot fill doc.body: no fake values for its type TSVECTOR" in str(caught.value) and "columns={'doc.body'" in str(caught.value)
    words = ["a fat cat", "the rat sat"]
    _load(dsn, _built(model(), "fill-doc-factory", columns={"doc.body": lambda rng: rng.choice(words)}), 10)
    assert query(dsn, "SELECT count(*) FROM runner.doc WHERE body @@ to_tsquery('cat | rat')") == 10


def test_a_check_no_generated_value_meets_is_named(dsn: str) -> None:
    metadata = MetaData()
    Table("odd", metadata, Column("id", Integer, primary_key=True), Column("n", Integer, CheckConstraint("n = 123456789", name="exact")))
    with pytest.raises(UsageError) as caught:
        _load(dsn, _built(metadata, "fill-odd"), 10)
    assert "cannot fill odd.n: none of 512 generated values meets its check exact" in str(caught.value)
