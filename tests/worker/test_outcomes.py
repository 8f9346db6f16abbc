"""Outcomes: exceptions a workload declares are answers, not failures (k6's expected responses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.worker.recorder import Recorder
from tests.conftest import run_runner
from workloads import WorkloadFileError, workload

# Op n of the one sync lane: every 4th inserts the populated row's key again (the driver's
# UniqueViolation under SQLAlchemy's IntegrityError), every other 5th raises the app's Conflict
# after its insert (rolled back), the rest insert a row. `other` raises Conflict undeclared.
OUTCOMES = """
import itertools
from psycopg2.errors import UniqueViolation
from sqlalchemy import MetaData, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from workloads import SCHEMA, workload

class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)

class Note(Base):
    __tablename__ = "note"
    id: Mapped[int] = mapped_column(primary_key=True)

class Conflict(Exception):
    pass

bench = workload("outcomes", Base)
counter = itertools.count()

@bench.populate
def fill(conn):
    conn.execute(insert(Note.__table__), [{"id": 1}])
    return {"note": 1}

@bench.write(rows={"note": 1}, outcomes=(Conflict, UniqueViolation))
def add(ctx):
    n = next(counter)
    with ctx.sessions() as session, session.begin():
        session.add(Note(id=1 if n % 4 == 0 else 1000 + n))
        session.flush()
        if n % 5 == 0 and n % 4:
            raise Conflict("version moved")

@bench.read(weight=1)
def other(ctx):
    raise Conflict("undeclared here")
"""


@pytest.mark.system
def test_declared_outcomes_are_counted_apart_from_errors_and_gated(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "outcomes_wl.py"
    path.write_text(OUTCOMES)
    result = run_runner(
        "--workload", str(path), "--mode", "sync", "--ops", "60", "--read-ratio", "0.33", "--seed", "3", "--quiet",
        "--check", "add.outcome_rate < 10%", "--check", "add.errors == 0", dsn=dsn,
    )
    assert result.code == 7 and result.doc is not None, result.stderr
    add, other = result.doc["totals"]["by_op"]["add"], result.doc["totals"]["by_op"]["other"]
    n = add["ops"]
    unique, conflict = len(range(0, n, 4)), sum(1 for i in range(n) if i % 5 == 0 and i % 4)
    assert add["outcomes"] == {"UniqueViolation": unique, "Conflict": conflict} and add["errors"] == 0 and add["ok"] == n
    assert other["errors"] == other["ops"] > 0 and other["errors_by_class"] == {"Conflict": other["ops"]} and other["outcomes"] == {}
    assert result.doc["totals"]["outcomes"] == add["outcomes"]
    assert add["latency_ms"]["max"] > 0  # an outcome is timed as an ok op is
    database = result.doc["database"]  # the rolled-back ops are not expected in the table
    assert database["expected_rows"] == {"note": 1 + n - unique - conflict} == database["rows"] and result.doc["complete"]
    checks = {c["check"]: c for c in result.doc["checks"]}
    assert checks["add.outcome_rate < 10%"]["value"] == pytest.approx((unique + conflict) / n) and not checks["add.outcome_rate < 10%"]["pass"]
    assert checks["add.errors == 0"]["pass"]


def test_an_outcome_is_recognised_under_sqlalchemys_wrapper_and_only_for_its_op() -> None:
    from psycopg2.errors import UniqueViolation
    from sqlalchemy.exc import IntegrityError

    recorder = Recorder(outcomes={"add": (UniqueViolation,)})
    wrapped = IntegrityError("INSERT", {}, UniqueViolation("duplicate key"))
    recorder.record("add", 1_000_000, wrapped)
    recorder.record("read", 1_000_000, wrapped)  # not declared for this op: an error
    deltas = recorder.take()
    assert deltas["add"]["outcomes"] == {"UniqueViolation": 1} and deltas["add"]["ok"] == 1 and deltas["add"]["errors"] == {}
    assert deltas["read"]["outcomes"] == {} and deltas["read"]["errors"] == {"UniqueViolation": 1} and deltas["read"]["ok"] == 0


def test_outcomes_must_be_exception_classes() -> None:
    from sqlalchemy import MetaData

    with pytest.raises(WorkloadFileError, match="outcomes= takes exception classes"):
        workload("bad_outcomes", MetaData()).write(outcomes=("StaleDataError",))  # type: ignore[arg-type]
