"""One real embedded PostgreSQL per test session; the runner is driven as users drive it."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import create_engine, text

from runner.server.embedded import TEMP_PREFIX, EmbeddedServer, start_embedded

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    doc: dict[str, Any] | None
    stdout: str
    stderr: str


def run_runner(*args: str, dsn: str | None = None, timeout: float = 180, env: dict[str, str] | None = None) -> Result:
    """`python -m runner ARGS` in a real subprocess, stdout parsed as the JSON document."""
    argv = [sys.executable, "-m", "runner", *args]
    if dsn is not None:
        argv += ["--dsn", dsn]
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full_env.update(env or {})
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=full_env)
    try:
        doc = json.loads(proc.stdout)
    except ValueError:  # --help, --version, or nothing at all
        doc = None
    return Result(proc.returncode, doc, proc.stdout, proc.stderr)


def wait_for_workers(parent_pid: int, count: int, timeout_s: float = 60) -> list[psutil.Process]:
    """The parent's worker processes (spawned children, not multiprocessing's resource tracker)."""
    deadline = time.monotonic() + timeout_s
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and len(workers) < count:
        time.sleep(0.2)
        workers = [c for c in psutil.Process(parent_pid).children() if "spawn_main" in _cmdline(c)]
    assert len(workers) == count, "workers did not start"
    return workers


def _cmdline(process: psutil.Process) -> str:
    """A child's command line; "" for one that is exiting (pg_ctl's short life ends as a zombie)."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


_TEMP_DIRS_AT_START: set[str] = set()
LEAK_WAIT_S = 15.0


def pytest_sessionstart(session: pytest.Session) -> None:
    _TEMP_DIRS_AT_START.update(glob.glob(f"/tmp/{TEMP_PREFIX}*"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No test may leave an embedded server, its temp dir, or a worker process behind."""
    deadline = time.monotonic() + LEAK_WAIT_S
    while True:
        dirs = set(glob.glob(f"/tmp/{TEMP_PREFIX}*")) - _TEMP_DIRS_AT_START
        workers = [p for p in psutil.Process().children(recursive=True) if "spawn_main" in _cmdline(p)]
        if (not dirs and not workers) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if dirs or workers:
        print(f"\nLEAK: temp dirs {sorted(dirs)}, worker processes {[p.pid for p in workers]}")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def server() -> Iterator[EmbeddedServer]:
    embedded = start_embedded()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def dsn(server: EmbeddedServer) -> str:
    return server.dsn


def execute(dsn: str, *statements: str) -> Any:
    """Run statements in autocommit on the test server; the first column of the last one's first row."""
    engine = create_engine(dsn.replace("postgresql://", "postgresql+psycopg2://"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            result = None
            for statement in statements:
                result = conn.execute(text(statement))
            return result.scalar() if result is not None and result.returns_rows else None
    finally:
        engine.dispose()


query = execute  # a single SELECT reads best as a query
