"""Workloads from an import path, in the decorator form, over an app's own models in its own
schemas: run for real, checked in the database afterwards."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import query, run_runner

MODELS = '''
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Customer(Base):  # the app keeps it in its own schema
    __tablename__ = "customer"
    __table_args__ = {"schema": "shop"}
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


class Visit(Base):  # and this one in no schema at all (public, in the app)
    __tablename__ = "visit"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("shop.customer.id"))
    worker: Mapped[int]
'''

BENCH = '''
from sqlalchemy import func, select, text

from workloads import workload
from app.models import Base, Customer, Visit

CUSTOMERS = 50
helper = 42

bench = workload("visits", Base, description="customers and their visits")


@bench.populate
def fill(conn):
    conn.execute(Customer.__table__.insert(), [{"id": i, "name": f"c{i}"} for i in range(1, CUSTOMERS + 1)])
    return {"customer": CUSTOMERS}


@bench.write(weight=1, rows={"visit": 1})
async def visit(ctx):
    async with ctx.sessions() as session:
        session.add(Visit(customer_id=ctx.keys.pick(CUSTOMERS), worker=ctx.worker_id))
        await session.commit()


@bench.read(weight=1)
async def count(ctx):
    async with ctx.sessions() as session:
        await session.scalar(select(func.count()).select_from(Visit).where(Visit.customer_id == ctx.rng.randint(1, CUSTOMERS)))
'''


@pytest.fixture
def app(tmp_path: Path) -> dict[str, str]:
    """A package `app` (models + bench) on PYTHONPATH, as a user's service would be."""
    package = tmp_path / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(textwrap.dedent(MODELS))
    (package / "bench.py").write_text(textwrap.dedent(BENCH))
    (package / "broken.py").write_text("raise RuntimeError('no config file')\n")
    (package / "empty.py").write_text("x = 1\n")
    (package / "two.py").write_text(
        "from app.bench import bench\nfrom workloads import workload\nfrom app.models import Base\n"
        "other = workload('other', Base)\n@other.read()\nasync def r(ctx):\n    pass\n"
    )
    return {"PYTHONPATH": str(tmp_path)}


@pytest.mark.system
@pytest.mark.parametrize("name", ["app.bench", "app.bench:bench"])
def test_an_import_path_runs_the_apps_models_without_touching_its_schemas(dsn: str, app: dict[str, str], name: str) -> None:
    result = run_runner("--workload", name, "--ops", "300", "--procs", "2", "--keys", "hotspot:0.1:1", "--quiet", dsn=dsn, env=app)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None and doc["totals"]["errors"] == 0
    visits = doc["totals"]["by_op"]["visit"]["ok"]
    assert visits > 0 and doc["database"]["rows"] == {"customer": 50, "visit": visits}
    # The app's tables were made in the runner's schema, and nowhere else.
    assert query(dsn, "SELECT count(*) FROM runner.visit") == visits
    assert query(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'shop'") == 0
    assert query(dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    # The context: each worker's id, and keys by --keys (all to the hot 10 %: customers 1-5).
    assert query(dsn, "SELECT count(DISTINCT worker) FROM runner.visit") == 2
    assert query(dsn, "SELECT max(customer_id) FROM runner.visit") <= 5


@pytest.mark.system
@pytest.mark.parametrize("name", ["app.bench", "app/bench.py"])
def test_the_console_script_finds_a_workload_in_the_working_directory(dsn: str, app: dict[str, str], name: str) -> None:
    """`runner --workload app.bench` from the app's directory said "no module named" (the console
    script's sys.path has its bin directory, not the working directory; `python -m` worked)."""
    import subprocess
    import sys

    from runner.dsn import child_env

    script = Path(sys.executable).parent / "runner"
    env = {k: v for k, v in child_env(dsn).items() if k != "PYTHONPATH"}
    done = subprocess.run([str(script), "--workload", name, "--ops", "20", "--quiet"], cwd=app["PYTHONPATH"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = __import__("json").loads(done.stdout)
    assert doc["totals"]["ok"] == 20
    assert doc["config"]["workload"] == (name if "/" not in name else str(Path(app["PYTHONPATH"]) / name))  # a path, made absolute


@pytest.mark.system
def test_an_async_only_op_refuses_the_sync_mode_naming_it(app: dict[str, str]) -> None:
    result = run_runner("--workload", "app.bench", "--mode", "sync", "--ops", "10", env=app)
    assert result.code == 2
    assert "op 'visit' of workload 'visits' has no sync orm implementation" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("nosuch.module", "no module named 'nosuch'"),
        ("sede", "unknown --workload 'sede': no module named 'sede'; not a built-in (seed,"),
        ("app.bench:nope", "module app.bench has no attribute 'nope'"),
        ("app.bench:helper", "helper is a int, not a workload"),
        ("app.broken", "does not import: RuntimeError: no config file"),
        ("app.empty", "module app.empty must hold exactly one workload, it holds 0"),
        ("app.two", "module app.two must hold exactly one workload, it holds 2: name one with module:attribute"),
        ("app bench", "unknown --workload 'app bench'"),
    ],
)
@pytest.mark.system
def test_every_way_an_import_path_fails_is_one_line(app: dict[str, str], name: str, needle: str) -> None:
    result = run_runner("--workload", name, "--ops", "10", env=app)
    assert result.code == 2, result.stderr
    assert needle in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.system
def test_the_named_attribute_picks_one_of_two(dsn: str, app: dict[str, str]) -> None:
    result = run_runner("--workload", "app.two:other", "--ops", "20", "--quiet", dsn=dsn, env=app)
    assert result.code == 0, result.stderr
    assert result.doc is not None and list(result.doc["totals"]["by_op"]) == ["r"]
