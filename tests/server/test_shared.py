"""`python -m runner.server`: one embedded server for a sweep's runs, and scripts/sweep.sh on it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, query, started

START_S = 60


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A TMPDIR short enough for the server's socket path (108 bytes; pytest's tmp_path is not)."""
    path = Path(tempfile.mkdtemp(prefix="rs"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _dsn_when_ready(path: Path, proc: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + START_S
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the shared server did not start"
        time.sleep(0.1)
    return path.read_text().strip()


@pytest.mark.system
def test_the_shared_server_serves_until_told_to_stop_and_leaves_nothing(short_tmp: Path) -> None:
    tmp_path = short_tmp
    dsn_file = tmp_path / "dsn"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = started(subprocess.Popen([sys.executable, "-m", "runner.server", "--dsn-file", str(dsn_file)], cwd=REPO, env=env, text=True))
    dsn = _dsn_when_ready(dsn_file, proc)
    assert stat.S_IMODE(dsn_file.stat().st_mode) == 0o600 and query(dsn, "SELECT 1") == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("runner-pg-")]  # its data directory
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("runner-pg-")]


@pytest.mark.system
def test_the_shared_server_ends_with_the_process_that_started_it(short_tmp: Path) -> None:
    """A sweep killed outright (no trap runs) must not leave the server behind."""
    tmp_path = short_tmp
    dsn_file = tmp_path / "dsn"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    shell = started(subprocess.Popen(
        # The wait is bounded: a server that never starts must not leave this shell spinning.
        ["bash", "-c", f'{sys.executable} -m runner.server --dsn-file {dsn_file} & echo $!; for _ in $(seq 600); do [ -s {dsn_file} ] && break; sleep 0.1; done'],
        cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
    ))
    assert shell.stdout is not None
    server_pid = int(shell.stdout.readline())
    assert shell.wait(timeout=START_S) == 0  # the parent is gone now
    deadline = time.monotonic() + 30
    while Path(f"/proc/{server_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{server_pid}").exists()
    deadline = time.monotonic() + 30
    while [p for p in tmp_path.iterdir() if p.name.startswith("runner-pg-")] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("runner-pg-")]


@pytest.mark.system
def test_a_sweep_with_scale_loads_once_on_one_embedded_server(tmp_path: Path, short_tmp: Path) -> None:
    out = tmp_path / "sweep.jsonl"
    work = short_tmp
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"PYTHON": sys.executable, "TMPDIR": str(work)}
    argv = ["scripts/sweep.sh", "-g", "chunk=10 20 30", "-o", str(out), "-r", "", "--", "--scale", "2000", "--ops", "30"]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["config"]["chunk"] for d in docs] == [10, 20, 30] and all(d["complete"] and d["load"]["rows"] == 4000 for d in docs)
    assert [d["load"]["clone"]["reused"] for d in docs] == [False, True, True]
    assert len({d["load"]["seconds"] for d in docs}) == 1  # one load's figures, reported by every run
    left = [p.name for p in work.iterdir() if p.name != ".runner-initdb.lock"]  # the lock file initdb runs under stays, as in /tmp
    assert left == []  # the server, its data directory and the DSN file are gone
