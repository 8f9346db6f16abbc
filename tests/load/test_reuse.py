"""One load, many runs: the template database cloned per run (runner.load.reuse), end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.load.reuse import with_database
from tests.conftest import execute, query, run_cli, run_runner

SCALE = ("--scale", "3000", "--ops", "60", "--quiet")


@pytest.fixture
def own_db(dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of the test's own on the session's server (the clones are named after it)."""
    name = "reuse_" + request.node.name.split("[")[0][-40:].lower()
    execute(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    try:
        yield with_database(dsn, name)
    finally:
        for db in (name, f"{name}__runner_run", f"{name}__runner_load"):
            execute(dsn, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _databases(dsn: str, name: str) -> list[str]:
    found = query(dsn, f"SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE '{name}%'")
    return str(found or "").split(",")


@pytest.mark.system
def test_repeat_loads_once_and_clones_it_for_every_run(dsn: str, own_db: str, tmp_path: Path) -> None:
    name = own_db.rpartition("/")[2]
    output = tmp_path / "run.json"
    result = run_runner("--repeat", "3", *SCALE, "--exemplars", "1", "--seed", "1", "--output", str(output), dsn=own_db)
    assert result.code == 0 and result.doc is not None, result.stderr
    load = result.doc["load"]
    assert load["rows"] == 6000 and load["clone"]["database"] == f"{name}__runner_run" and load["reload_reason"] is None
    assert load["clone"]["seconds"] > 0 and load["clone"]["kept"] is False
    # The template is gone; the last run's clone stays, holding the loaded rows and that run's
    # writes; the DSN's own database never got the runner's schema.
    assert _databases(dsn, name) == [name, f"{name}__runner_run"]
    assert query(own_db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'runner'") == 0
    clone = with_database(dsn, f"{name}__runner_run")
    last = result.doc["repeat"]["per_run"][-1]
    assert query(clone, "SELECT count(*) FROM runner.a") + query(clone, "SELECT count(*) FROM runner.b") >= 6000
    assert last["complete"] and query(clone, "SELECT count(*) FROM pg_stats WHERE schemaname = 'runner'") > 0  # the load's statistics came along
    explained = run_cli("explain", str(output), "--dsn", own_db)  # it finds the tables in the clone
    assert explained.code == 0 and json.loads(explained.stdout)["plans"], explained.stderr


@pytest.mark.system
def test_keep_load_serves_the_next_process_until_the_tables_or_scale_change(dsn: str, own_db: str) -> None:
    name = own_db.rpartition("/")[2]
    first = run_runner("--keep-load", *SCALE, dsn=own_db)
    assert first.code == 0 and first.doc is not None and first.doc["load"]["clone"]["reused"] is False, first.stderr
    assert f"{name}__runner_load" in _databases(dsn, name)
    comment = query(dsn, f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{name}__runner_load'")
    assert str(comment).startswith("runner load ") and '"populated"' in str(comment)
    second = run_runner("--keep-load", *SCALE, "--mode", "sync", dsn=own_db)
    assert second.code == 0 and second.doc is not None, second.stderr
    assert second.doc["load"]["clone"] == {**second.doc["load"]["clone"], "reused": True, "kept": True}
    assert second.doc["load"]["seconds"] == first.doc["load"]["seconds"]  # the figures of the one load
    other = run_runner("--keep-load", "--scale", "2000", "--ops", "30", "--quiet", dsn=own_db)  # another scale: loaded again
    assert other.code == 0 and other.doc is not None and other.doc["load"]["clone"]["reused"] is False and other.doc["load"]["rows"] == 4000
    last = run_runner("--scale", "2000", "--ops", "30", "--quiet", dsn=own_db)  # a run alone (a sweep's last) clones it, then drops it
    assert last.code == 0 and last.doc is not None and last.doc["load"]["clone"]["kept"] is True, last.stderr
    assert _databases(dsn, name) == [name, f"{name}__runner_run"]


@pytest.mark.system
def test_a_role_that_cannot_create_databases_loads_for_every_run_and_says_why(dsn: str, own_db: str) -> None:
    name = own_db.rpartition("/")[2]
    execute(dsn, "DROP ROLE IF EXISTS loader", "CREATE ROLE loader LOGIN PASSWORD 'pw'", f'GRANT CREATE ON DATABASE "{name}" TO loader')
    try:
        as_loader = own_db.replace("postgres:", "loader:", 1).split("@", 1)
        role_dsn = as_loader[0].rsplit(":", 1)[0] + ":pw@" + as_loader[1]
        result = run_runner("--repeat", "2", *SCALE, dsn=role_dsn)
        assert result.code == 0 and result.doc is not None, result.stderr
        assert result.doc["load"]["clone"] is None and "CREATE DATABASE" in result.doc["load"]["reload_reason"]
        assert _databases(dsn, name) == [name]
    finally:
        execute(own_db, "DROP SCHEMA IF EXISTS runner CASCADE")
        execute(dsn, f'REVOKE ALL ON DATABASE "{name}" FROM loader', "DROP ROLE IF EXISTS loader")


@pytest.mark.system
def test_a_database_of_that_name_the_runner_did_not_make_is_never_dropped(dsn: str, own_db: str) -> None:
    name = own_db.rpartition("/")[2]
    execute(dsn, f'CREATE DATABASE "{name}__runner_run"')
    result = run_runner("--repeat", "2", *SCALE, dsn=own_db)
    assert result.code == 3 and f"database '{name}__runner_run' exists and was not created by runner" in result.stderr
    assert f"{name}__runner_run" in _databases(dsn, name) and f"{name}__runner_load" not in _databases(dsn, name)


def test_keep_load_needs_a_server_that_outlives_the_run_and_a_load() -> None:
    embedded = run_cli("--keep-load", "--scale", "100")
    assert embedded.code == 2 and "--keep-load keeps the load on a server that outlives the run: give --dsn" in embedded.stderr
    nothing = run_cli("--keep-load", "--dsn", "postgresql://u:p@127.0.0.1:1/db")
    assert nothing.code == 2 and "--keep-load keeps a load: give --scale" in nothing.stderr
