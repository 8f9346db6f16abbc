"""--exemplars keeps the slowest ops with their statements; `runner explain` shows their plans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Result, execute, query, run_cli, run_runner


def _explain(*args: str, dsn: str) -> Result:
    """`runner explain ARGS` against `dsn` (in DATABASE_URL: it holds the server's password)."""
    return run_cli("explain", *args, dsn=dsn)


@pytest.fixture(scope="module")
def kept(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seed run's document with 2 exemplars per op type (warm-up first: the empty table's
    first reads would otherwise be the slowest, with no B to load)."""
    out = tmp_path_factory.mktemp("exemplars") / "run.json"
    result = run_runner("--ops", "600", "--warmup", "200", "--exemplars", "2", "--seed", "5", "--output", str(out), dsn=dsn)
    assert result.code == 0, result.stderr
    return out


def test_the_slowest_ops_are_kept_with_their_statements(kept: Path) -> None:
    doc = json.loads(kept.read_text())
    reads, writes = doc["exemplars"]["read"], doc["exemplars"]["write"]
    assert len(reads) == 2 and len(writes) == 2
    assert reads[0]["latency_ms"] >= reads[1]["latency_ms"] >= 0
    assert reads[0]["latency_ms"] <= doc["totals"]["by_op"]["read"]["latency_ms"]["max"] * 1.01  # the slowest, measured part
    statements = [call["statement"] for call in reads[0]["statements"]]
    assert len(statements) == 2 and "FROM runner.a" in statements[0] and "FROM runner.b" in statements[1]
    assert reads[0]["statements"][1]["parameters"]  # the A ids the selectinload asked for
    assert all(isinstance(e["worker"], int) for e in reads)


@pytest.mark.system
def test_explain_shows_the_seq_scan_the_summary_hints_at(kept: Path, dsn: str) -> None:
    result = _explain(str(kept), dsn=dsn)
    assert result.code == 0, result.stderr
    plans = json.loads(result.stdout)["plans"]
    b_read = [p for p in plans if p["op"] == "read" and "FROM runner.b" in p["statement"]]
    assert len(b_read) == 1 and any("Seq Scan on b" in line for line in b_read[0]["plan"])
    assert "Seq Scan on b" in result.stderr


@pytest.mark.system
def test_explain_analyze_runs_writes_and_rolls_them_back(kept: Path, dsn: str) -> None:
    before = query(dsn, "SELECT count(*) FROM runner.a")
    sequence = query(dsn, "SELECT last_value::text || ' ' || is_called::text FROM runner.a_id_seq")
    result = _explain(str(kept), "--analyze", dsn=dsn)
    assert result.code == 0, result.stderr
    plans = json.loads(result.stdout)["plans"]
    assert any("actual time" in line for p in plans for line in p["plan"])
    assert any(p["op"] == "write" for p in plans)
    assert query(dsn, "SELECT count(*) FROM runner.a") == before  # the explained INSERTs left nothing
    # ...nor moved a sequence, which a rollback does not undo: set back where it was
    assert query(dsn, "SELECT last_value::text || ' ' || is_called::text FROM runner.a_id_seq") == sequence


def _crafted(kept: Path, tmp_path: Path, statement: str) -> Path:
    """The run's document with its slowest read's first statement replaced, as anyone could."""
    doc = json.loads(kept.read_text())
    doc["exemplars"]["read"][0]["statements"][0] = {"statement": statement, "parameters": None}
    crafted = tmp_path / "crafted.json"
    crafted.write_text(json.dumps(doc))
    return crafted


@pytest.mark.system
@pytest.mark.parametrize("analyze", [[], ["--analyze"]], ids=["plain", "analyze"])
def test_a_crafted_file_runs_no_statement_of_its_own(kept: Path, dsn: str, tmp_path: Path, analyze: list[str]) -> None:
    """A statement that is more than one (the simple protocol would run them all, COMMIT
    included) is refused by name: nothing of it runs, with or without --analyze."""
    execute(dsn, "DROP TABLE IF EXISTS public.victim", "CREATE TABLE public.victim (id int)", "DROP ROLE IF EXISTS adv",
            "CREATE ROLE adv LOGIN PASSWORD 'before'")
    secret = query(dsn, "SELECT rolpassword FROM pg_authid WHERE rolname = 'adv'")
    try:
        for statement in ("SELECT 1; COMMIT; DROP TABLE public.victim; COMMIT", "SELECT 1; ALTER ROLE adv PASSWORD 'pwned'"):
            result = _explain(str(_crafted(kept, tmp_path, statement)), *analyze, dsn=dsn)
            assert result.code == 2, result.stderr
            line = result.stderr.strip()
            assert len(line.splitlines()) == 1 and "refused read's statement" in line and "exactly one SQL statement" in line
            assert result.stdout == ""
        assert query(dsn, "SELECT to_regclass('public.victim')::text") == "victim"
        assert query(dsn, "SELECT rolpassword FROM pg_authid WHERE rolname = 'adv'") == secret
    finally:
        execute(dsn, "DROP TABLE IF EXISTS public.victim", "DROP ROLE IF EXISTS adv")


@pytest.mark.system
def test_without_analyze_not_even_the_planner_writes(kept: Path, dsn: str, tmp_path: Path) -> None:
    """EXPLAIN alone runs nothing, but the planner folds an IMMUTABLE function into a constant by
    calling it, and one can hide a call to a function that writes. Without --analyze the
    transaction is READ ONLY, so what it would write (here a sequence's nextval, which no rollback
    undoes) is refused by the server."""
    execute(
        dsn,
        "DROP SEQUENCE IF EXISTS public.bumped CASCADE", "CREATE SEQUENCE public.bumped",
        "CREATE OR REPLACE FUNCTION public.bump() RETURNS bigint VOLATILE LANGUAGE sql AS $$ SELECT nextval('public.bumped') $$",
        "CREATE OR REPLACE FUNCTION public.looks_pure() RETURNS bigint IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN RETURN public.bump(); END $$",
    )
    try:
        result = _explain(str(_crafted(kept, tmp_path, "SELECT public.looks_pure()")), dsn=dsn)
        assert result.code == 3 and "read-only transaction" in result.stderr, result.stderr
        assert query(dsn, "SELECT is_called FROM public.bumped") is False  # never moved
    finally:
        execute(dsn, "DROP FUNCTION IF EXISTS public.looks_pure()", "DROP FUNCTION IF EXISTS public.bump()", "DROP SEQUENCE IF EXISTS public.bumped")


@pytest.mark.system
def test_explain_refuses_what_it_cannot_do(dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "plain.json"
    assert run_runner("--ops", "50", "--output", str(out), "--quiet", dsn=dsn).code == 0
    no_exemplars = _explain(str(out), dsn=dsn)
    assert no_exemplars.code == 2 and no_exemplars.stderr.strip() == (
        "runner: error: the result holds no exemplars: run with --exemplars N (e.g. --exemplars 3)"
    )
    env_free = run_cli("explain", str(out))
    assert env_free.code == 2 and "needs --dsn" in env_free.stderr and len(env_free.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["--no-anatomy"], ["--layer", "raw"], ["--exemplars", "-1"]])
def test_exemplars_need_the_statements(args: list[str]) -> None:
    extra = [] if "--exemplars" in args else ["--exemplars", "2"]
    result = run_cli("--ops", "10", *extra, *args)
    assert result.code == 2 and "--exemplars" in result.stderr and "Traceback" not in result.stderr
