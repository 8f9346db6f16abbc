"""Top statements from pg_stat_statements matched to op types (no server here ships the
extension: the embedded wheel has no contrib, so the matching is tested on the texts both sides
really produce)."""

from __future__ import annotations

from runner.analysis.statements import match_ops, shape

ASYNCPG_READ = "SELECT runner.b.a_id, runner.b.id, runner.b.data \nFROM runner.b \nWHERE runner.b.a_id IN ($1::INTEGER, $2::INTEGER, $3::INTEGER)"
PSYCOPG2_READ = "SELECT runner.a.id, runner.a.data, runner.a.create_date \nFROM runner.a \n LIMIT %(param_1)s"
WRITE = "INSERT INTO runner.a (data) SELECT p0::VARCHAR FROM (VALUES ($1::VARCHAR, 0), ($2::VARCHAR, 1)) AS imp_sen(p0, sen_counter)"


def test_shapes_agree_across_placeholders_literals_and_squashed_lists() -> None:
    assert shape(PSYCOPG2_READ) == shape("SELECT runner.a.id, runner.a.data, runner.a.create_date FROM runner.a LIMIT $1")
    assert shape(ASYNCPG_READ) == shape("select runner.b.a_id, runner.b.id, runner.b.data from runner.b where runner.b.a_id in ($1 /*, ... */)")
    assert shape("SELECT 1 WHERE x = 'it''s'") == shape("SELECT $1 WHERE x = $2")


def test_each_top_statement_gets_the_ops_that_sent_it() -> None:
    top = [
        {"query": "select runner.b.a_id, runner.b.id, runner.b.data from runner.b where runner.b.a_id in ($1 /*, ... */)"},
        {"query": "SELECT runner.a.id, runner.a.data, runner.a.create_date FROM runner.a LIMIT $1"},
        {"query": WRITE.replace("0)", "$3)").replace("1))", "$4))")},
        {"query": "SELECT pg_stat_force_next_flush()"},
    ]
    ops = match_ops(top, {"read": [ASYNCPG_READ, PSYCOPG2_READ], "write": [WRITE]})
    assert ops == [["read"], ["read"], ["write"], []]


def test_a_short_common_prefix_is_not_a_match() -> None:
    assert match_ops([{"query": "SELECT $1"}], {"read": ["SELECT 1 FROM runner.a"]}) == [[]]
