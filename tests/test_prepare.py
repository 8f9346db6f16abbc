"""--prepare and --statement-cache are one setting seen two ways; psycopg2 cannot prepare."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import UsageError
from runner.resolve import spec
from tests.conftest import query, run_runner

# Each op runs one statement, then records how many statements its session has prepared.
PROBE = """
from sqlalchemy import Column, Integer, MetaData, Table, text
from workloads import SCHEMA, Op, Workload, register

metadata = MetaData(schema=SCHEMA)
Table("seen", metadata, Column("id", Integer, primary_key=True), Column("prepared", Integer))
RECORD = text("INSERT INTO runner.seen (prepared) SELECT count(*) FROM pg_prepared_statements")

async def probe(handle, rng):
    async with handle.sessions() as session:
        await session.execute(text("SELECT 1"))
        await session.execute(RECORD)
        await session.commit()

def probe_sync(handle, rng):
    with handle.sessions() as session:
        session.execute(text("SELECT 1"))
        session.execute(RECORD)
        session.commit()

register(Workload("probe", "prepared statements seen by the session", metadata,
                  (Op("probe", "write", 1.0, (probe, probe_sync)),), rows_per_op={"probe": {"seen": 1}}))
"""


def test_never_is_the_cache_off_and_back() -> None:
    assert spec(prepare="never").statement_cache is False
    assert spec(statement_cache=False).prepare == "never"
    assert spec(driver="psycopg", prepare="always").psycopg_prepare_threshold == 0
    assert spec(driver="psycopg").psycopg_prepare_threshold == 5
    assert spec(driver="psycopg", prepare="never").psycopg_prepare_threshold is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prepare": "always", "statement_cache": False}, "contradict"),
        ({"prepare": "always", "mode": "sync"}, "psycopg2 sends every statement as text"),
        ({"prepare": "sometimes"}, "unknown --prepare"),
    ],
)
def test_what_cannot_be_done_is_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        spec(**options)  # type: ignore[arg-type]


@pytest.mark.system
@pytest.mark.parametrize(("prepare", "prepared"), [("auto", False), ("never", False), ("always", True)])
def test_psycopg_prepares_as_told(dsn: str, tmp_path: Path, prepare: str, prepared: bool) -> None:
    path = tmp_path / "probe.py"
    path.write_text(PROBE)
    # 4 ops on 4 connections: one execution each, under psycopg's threshold of 5 (auto).
    result = run_runner("--workload", str(path), "--driver", "psycopg", "--chunk", "4", "--ops", "4", "--prepare", prepare, dsn=dsn)
    assert result.code == 0, result.stderr
    assert result.doc is not None and result.doc["config"]["prepare"] == prepare
    most = int(query(dsn, "SELECT max(prepared) FROM runner.seen"))
    assert (most > 0) is prepared, most
