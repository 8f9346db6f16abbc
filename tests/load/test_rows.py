"""--scale's forms and the rows each table gets from them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table

from runner.errors import UsageError
from runner.load.rows import parse_scale, table_rows
from workloads import Workload, WorkloadFileError, workload


def _app(name: str, **shape: Any) -> Workload:
    metadata = MetaData()
    Table("users", metadata, Column("id", Integer, primary_key=True))
    Table("posts", metadata, Column("id", Integer, primary_key=True), Column("author_id", ForeignKey("users.id")))
    bench = workload(name, metadata, **shape)

    @bench.read()
    async def nothing(ctx: Any) -> None:
        pass

    return bench.build()


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1000", (1000, ())),
        ("1_000,posts=50000", (1000, (("posts", 50000),))),
        ("posts=50000, users=10", (None, (("posts", 50000), ("users", 10)))),
        (None, (None, ())),
    ],
)
def test_the_forms_of_scale(text: str | None, parsed: tuple[Any, ...]) -> None:
    assert parse_scale(text) == parsed


@pytest.mark.parametrize(
    ("text", "said"),
    [("0", "at least 1"), ("ten", "not N or table=N"), ("10,20", "two units"), ("posts=1,posts=2", "table given twice"), ("=5", "no table named")],
)
def test_a_bad_scale_is_one_line(text: str, said: str) -> None:
    with pytest.raises(UsageError, match=said):
        parse_scale(text)


def test_proportions_scale_the_unit_and_a_table_given_sets_it() -> None:
    app = _app("rows-app", proportions={"users": 0.1})
    assert table_rows(app, 1000) == (1000, {"users": 100, "posts": 1000})
    assert table_rows(app, None, (("users", 50),)) == (500, {"users": 50, "posts": 500})
    assert table_rows(app, 1000, (("posts", 7),)) == (1000, {"users": 100, "posts": 7})
    assert table_rows(app, 1) == (1, {"users": 1, "posts": 1})  # never an empty parent
    with pytest.raises(UsageError, match="has no table 'comments'"):
        table_rows(app, 10, (("comments", 5),))


@pytest.mark.parametrize(
    ("shape", "said"),
    [
        ({"proportions": {"comments": 1}}, "proportions name 'comments'"),
        ({"proportions": {"users": 0}}, "must be above 0"),
        ({"fanout": "pareto"}, "one of uniform, zipf"),
        ({"fanout": {"posts.id": "zipf"}}, "not a foreign key"),
        ({"columns": {"posts.body": lambda rng: 1}}, "not a table.column"),
        ({"columns": {"posts.author_id": 3}}, "must be a function of the RNG"),
    ],
)
def test_a_shape_that_names_nothing_is_refused_when_the_workload_is_built(shape: dict[str, Any], said: str) -> None:
    with pytest.raises(WorkloadFileError, match=said):
        _app("rows-bad", **shape)
