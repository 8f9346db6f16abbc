"""Inside an op: statements, rows, pool wait, database and Python time per op type, from
SQLAlchemy's own events; the N+1 warning; the client-bottleneck verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_runner

# Ten parents with five children each; the read loads the parents and touches each one's children.
LAZY = """
from sqlalchemy import ForeignKey, MetaData, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload
from workloads import SCHEMA, Op, Workload, register

class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)

class Parent(Base):
    __tablename__ = "parent"
    id: Mapped[int] = mapped_column(primary_key=True)
    children: Mapped[list["Child"]] = relationship(lazy="{lazy}")

class Child(Base):
    __tablename__ = "child"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey(Parent.id))

def populate(conn):
    conn.execute(insert(Parent.__table__), [{{"id": i}} for i in range(10)])
    conn.execute(insert(Child.__table__), [{{"parent_id": i % 10}} for i in range(50)])
    return {{"parent": 10, "child": 50}}

async def read_async(handle, rng):
    raise NotImplementedError

def read_sync(handle, rng):
    with handle.sessions() as session:
        for parent in session.scalars(select(Parent)):
            len(parent.children)

register(Workload("family", "parents and children", Base.metadata,
                  (Op("read", "read", 1.0, (read_async, read_sync)),), populate=populate))
"""

BURNER = """
import time
from sqlalchemy import MetaData
from workloads import SCHEMA, Op, Workload, register

async def burn(handle, rng):
    end = time.perf_counter() + 0.004
    while time.perf_counter() < end:  # 4 ms of Python that never yields to the loop
        pass

def burn_sync(handle, rng):
    pass

register(Workload("burner", "CPU without the database", MetaData(schema=SCHEMA), (Op("burn", "read", 1.0, (burn, burn_sync)),)))
"""


def _anatomy(doc: dict[str, Any], op: str) -> dict[str, Any]:
    anatomy = doc["totals"]["by_op"][op]["anatomy"]
    assert anatomy is not None
    return anatomy


@pytest.mark.system
@pytest.mark.parametrize("layer", ["orm", "core"])
def test_the_seed_read_is_one_plus_its_selectinload(dsn: str, layer: str) -> None:
    result = run_runner("--ops", "300", "--chunk", "10", "--layer", layer, "--seed", "3", dsn=dsn)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None
    read, write = _anatomy(doc, "read"), _anatomy(doc, "write")
    assert read["ops"] == doc["totals"]["by_op"]["read"]["ok"]
    # The first reads find no A yet (one statement); after that, A and then its B: two.
    assert 1.5 < read["statements_per_op"] <= 2 and read["statements_max"] == 2
    assert write["statements_per_op"] >= 2  # INSERT a ... RETURNING, INSERT b
    for part in ("pool_wait_ms", "db_ms", "python_ms"):
        assert read[part]["max"] > 0
    assert read["db_ms"]["p50"] > 0 and read["python_ms"]["p50"] > 0
    assert read["most_repeated"]["per_op"] <= 1
    assert not any("N+1" in w for w in doc["warnings"])
    assert "anatomy read: " in result.stderr and "statements/op" in result.stderr
    # Every timeline entry carries its own anatomy.
    assert all(e["by_op"]["read"]["anatomy"]["statements_per_op"] > 0 for e in doc["timeline"] if "read" in e["by_op"])


@pytest.mark.system
def test_the_parts_add_up_to_the_latency(dsn: str) -> None:
    result = run_runner("--ops", "200", "--chunk", "5", "--workload", "tpcb", dsn=dsn)
    assert result.code == 0, result.stderr
    assert result.doc is not None
    for op in result.doc["totals"]["by_op"].values():
        anatomy = op["anatomy"]
        parts = anatomy["pool_wait_ms"]["mean"] + anatomy["db_ms"]["mean"] + anatomy["python_ms"]["mean"]
        assert parts == pytest.approx(op["latency_ms"]["mean"], rel=0.03)  # each op's parts sum to its latency


@pytest.mark.system
def test_a_lazy_load_is_named_as_n_plus_one_and_selectin_is_not(dsn: str, tmp_path: Path) -> None:
    docs = {}
    for lazy in ("select", "selectin"):
        path = tmp_path / f"family_{lazy}.py"
        path.write_text(LAZY.format(lazy=lazy))
        result = run_runner("--workload", str(path), "--mode", "sync", "--ops", "30", dsn=dsn)
        assert result.code == 0, result.stderr
        docs[lazy] = result
    lazy_read = _anatomy(docs["select"].doc, "read")  # type: ignore[arg-type]
    assert lazy_read["statements_per_op"] == 11 and lazy_read["statements_max"] == 11
    assert lazy_read["rows_per_op"] == 60  # 10 parents, 50 children: rows counted as psycopg2 returns them
    assert lazy_read["most_repeated"]["per_op"] == 10 and "child" in lazy_read["most_repeated"]["statement"]
    warning = [w for w in docs["select"].doc["warnings"] if "N+1" in w]  # type: ignore[index]
    assert len(warning) == 1 and warning[0].startswith("read sends one statement 10.0 times per op") and "child" in warning[0]
    assert "N+1" in docs["select"].stderr
    eager = docs["selectin"]
    assert _anatomy(eager.doc, "read")["statements_per_op"] == 2  # type: ignore[arg-type]
    assert not any("N+1" in w for w in eager.doc["warnings"])  # type: ignore[index]


@pytest.mark.system
def test_raw_sees_the_pool_wait_only_and_no_anatomy_turns_it_off(dsn: str) -> None:
    raw = run_runner("--layer", "raw", "--workload", "tpcb", "--ops", "100", "--chunk", "4", dsn=dsn)
    assert raw.code == 0, raw.stderr
    assert raw.doc is not None
    anatomy = _anatomy(raw.doc, "tpcb")
    assert anatomy["pool_wait_ms"] is not None and anatomy["db_ms"] is None and anatomy["statements_per_op"] is None
    off = run_runner("--ops", "100", "--no-anatomy", dsn=dsn)
    assert off.code == 0 and off.doc is not None
    assert off.doc["config"]["anatomy"] is False
    assert all(op["anatomy"] is None for op in off.doc["totals"]["by_op"].values())
    assert "anatomy " not in off.stderr


@pytest.mark.parametrize(
    ("mode", "wide_args", "narrow_args"),
    [
        ("async", ["--chunk", "4"], ["--chunk", "8", "--pool-size", "2"]),
        ("sync", ["--mode", "sync", "--driver", "psycopg2", "--threads", "4"], ["--mode", "sync", "--driver", "psycopg2", "--threads", "8", "--pool-size", "2"]),
    ],
)
@pytest.mark.system
def test_raw_pool_wait_is_zero_for_an_idle_connection_and_timed_for_a_queue(dsn: str, mode: str, wide_args: list[str], narrow_args: list[str]) -> None:
    # Pool as wide as the window (or the threads): after each connection's first use, every op
    # finds one idle (in the sync mode, the thread's own).
    wide = run_runner("--layer", "raw", "--workload", "tpcb", "--ops", "200", *wide_args, dsn=dsn)
    # Two connections for eight lanes or threads: most ops queue behind an op in flight.
    narrow = run_runner("--layer", "raw", "--workload", "tpcb", "--ops", "200", *narrow_args, dsn=dsn)
    assert wide.code == 0 and narrow.code == 0, wide.stderr + narrow.stderr
    assert wide.doc is not None and narrow.doc is not None
    idle, queued = _anatomy(wide.doc, "tpcb")["pool_wait_ms"], _anatomy(narrow.doc, "tpcb")["pool_wait_ms"]
    assert idle["p50"] == 0 and idle["max"] > 0  # the max: a first use, which connects
    # (p99: a sync thread that gives a connection back often takes it again before a waiter wakes)
    assert queued["p99"] > 0.1 and queued["mean"] > idle["mean"]


@pytest.mark.system
def test_a_busy_event_loop_is_called_the_bottleneck(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "burner.py"
    path.write_text(BURNER)
    result = run_runner("--workload", str(path), "--ops", "800", "--chunk", "40", dsn=dsn)
    assert result.code == 0, result.stderr
    assert result.doc is not None
    verdict = result.doc["client"]["bottleneck"]
    worker = result.doc["workers"][0]
    # 40 ops of 4 ms each hold the loop for 160 ms a chunk: the probe timer fires that late.
    assert worker["tick_lag_ms"]["p99"] > 50
    assert verdict["limited"] is True and verdict["workers"] == [0]
    if worker["cpu_share"] >= verdict["busy_share"]:
        assert verdict["cause"] == "cpu" and "add --procs" in verdict["verdict"]
    else:  # the machine's other core was busy too: still the client, waiting for a core
        assert verdict["cause"] == "starved"
    assert "client: the client limited this run" in result.stderr


@pytest.mark.system
def test_an_idle_client_is_not_called_the_bottleneck(dsn: str) -> None:
    # 4 s: 400 probe ticks, so two stray stalls of the shared 2-core machine cannot make the p99.
    result = run_runner("--workload", "noop", "--rate", "50", "--duration", "4", dsn=dsn)
    assert result.code == 0, result.stderr
    assert result.doc is not None
    verdict = result.doc["client"]["bottleneck"]
    assert verdict["limited"] is False and verdict["verdict"] is None
    assert result.doc["workers"][0]["tick_lag_ms"]["p99"] < verdict["lag_limit_ms"]
    assert "the client limited" not in result.stderr
