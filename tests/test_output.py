"""Where results go: --output never replaces what is not a regular file, stdout holds only the
document, and a closed or full stdout (or --output) loses nothing else."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runner.errors import UsageError
from runner.output import check_writable, write_output
from tests.conftest import REPO, run_runner

DOC = b'{"schema_version": 1}\n'


def test_a_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_output(str(link), DOC)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == DOC


def _fifo_with_reader(path: Path) -> tuple[threading.Thread, list[bytes]]:
    """A named pipe at `path` and a thread reading it (a writer's open blocks until one reads)."""
    os.mkfifo(path)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(path.read_bytes()), daemon=True)
    reader.start()
    return reader, received


def test_a_fifo_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    reader, received = _fifo_with_reader(fifo)
    write_output(str(fifo), DOC)
    reader.join(10)
    assert received == [DOC]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still a FIFO: nothing was renamed over it
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # and no temp file left beside it


def test_a_symlink_to_a_fifo_reaches_the_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    reader, received = _fifo_with_reader(fifo)
    link = tmp_path / "out"
    link.symlink_to(fifo)
    write_output(str(link), DOC)
    reader.join(10)
    assert received == [DOC] and link.is_symlink() and stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_new_file_gets_the_umask_mode_and_an_old_one_keeps_its_mode(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        write_output(str(tmp_path / "new.json"), DOC)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640
    old = tmp_path / "old.json"
    old.write_text("x")
    old.chmod(0o604)
    write_output(str(old), DOC)
    assert stat.S_IMODE(old.stat().st_mode) == 0o604 and old.read_bytes() == DOC


def test_a_socket_is_refused_before_the_run(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(UsageError, match="socket"):
            check_writable(str(path))


@pytest.mark.system
def test_output_to_a_fifo_through_the_cli(tmp_path: Path, dsn: str) -> None:
    fifo = tmp_path / "pipe"
    reader, received = _fifo_with_reader(fifo)
    result = run_runner("--workload", "noop", "--ops", "50", "--quiet", "--output", str(fifo), dsn=dsn)
    reader.join(10)
    assert result.code == 0, result.stderr
    assert json.loads(received[0])["totals"]["ok"] == 50
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


PRINTING_WORKLOAD = """
import random
print("hello from the module")
from sqlalchemy import MetaData
from workloads import SCHEMA, Op, Workload, register

async def op_async(handle, rng):
    print("hello from an async op")

def op_sync(handle, rng):
    print("hello from a sync op")

register(Workload(name="printing", description="prints", metadata=MetaData(schema=SCHEMA),
                  ops=(Op("say", "read", 1.0, orm=(op_async, op_sync)),)))
"""


@pytest.mark.system
@pytest.mark.parametrize("mode", ["chunked", "sync"])
def test_prints_in_a_workload_never_reach_stdout(tmp_path: Path, mode: str, dsn: str) -> None:
    path = tmp_path / "printing.py"
    path.write_text(PRINTING_WORKLOAD)
    result = run_runner("--workload", str(path), "--mode", mode, "--ops", "20", "--procs", "2", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    assert result.doc is not None and result.doc["totals"]["ok"] == 20  # stdout is the document alone
    assert "hello from the module" in result.stderr
    assert f"hello from a{'n async' if mode == 'chunked' else ' sync'} op" in result.stderr


FULL_AT = 1024  # bytes: semaphores and lock files fit, a run document (~5 KB) does not


def _limit_file_size() -> None:
    """In the child: no regular file may grow past FULL_AT bytes, and a write past it fails with
    EFBIG instead of killing the process. A full disk without touching the machine's /dev/full (a
    test that once ran old code against it turned /dev/full into a regular file)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (FULL_AT, resource.RLIM_INFINITY))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _limit_zero() -> None:
    """In the child: not one byte may go into a regular file (gettempdir's probe fails)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _runner(*args: str, stdout: object, full_files: bool = False) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # args carry --dsn
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=REPO,
        stdout=stdout,  # type: ignore[arg-type]
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_limit_file_size if full_files else None,
    )


@pytest.mark.system
def test_a_closed_stdout_still_writes_output_and_says_so(tmp_path: Path, dsn: str) -> None:
    out = tmp_path / "run.json"
    proc = _runner("--workload", "noop", "--ops", "200", "--output", str(out), "--dsn", dsn, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # what `| true` does
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 6, stderr
    assert "stdout failed" in stderr and "written to --output" in stderr and "Traceback" not in stderr
    assert json.loads(out.read_text())["totals"]["ok"] == 200
    assert "ops/s" in stderr  # the human summary too


@pytest.mark.system
def test_jsonl_into_a_reader_that_leaves_stops_the_run_gracefully(tmp_path: Path, dsn: str) -> None:
    out = tmp_path / "run.json"
    proc = _runner("--duration", "60", "--interval", "0.5", "--jsonl", "--quiet", "--output", str(out), "--dsn", dsn, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # what `| head -1` does
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=60)
    assert first["kind"] == "interval"
    assert proc.returncode == 6, stderr
    doc = json.loads(out.read_text())
    assert doc["complete"] is False and "stdout failed" in doc["stop_reason"]
    assert doc["totals"]["wall_s"] < 30  # stopped when the reader left, not at --duration
    assert all(w["status"] == "stopped" for w in doc["workers"])  # stopped, not killed
    assert doc["totals"]["ok"] > 0


@pytest.mark.system
def test_a_full_stdout_is_one_line_not_an_internal_error(tmp_path: Path, dsn: str) -> None:
    out = tmp_path / "run.json"  # a FIFO: --output still works while regular files cannot grow
    reader, received = _fifo_with_reader(out)
    with open(tmp_path / "stdout", "w") as stdout:
        proc = _runner("--workload", "noop", "--ops", "100", "--quiet", "--output", str(out), "--dsn", dsn, stdout=stdout, full_files=True)
        _, stderr = proc.communicate(timeout=120)
    reader.join(10)
    assert proc.returncode == 6, stderr
    assert "stdout" in stderr and os.strerror(errno.EFBIG) in stderr and "internal error" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert json.loads(received[0])["totals"]["ok"] == 100


@pytest.mark.system
def test_a_failing_output_keeps_the_document_on_stdout(tmp_path: Path, dsn: str) -> None:
    out = tmp_path / "run.json"
    proc = _runner("--workload", "noop", "--ops", "100", "--quiet", "--output", str(out), "--dsn", dsn, stdout=subprocess.PIPE, full_files=True)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 6, stderr
    assert json.loads(stdout)["totals"]["ok"] == 100
    assert f"--output {out}: {os.strerror(errno.EFBIG)}" in stderr
    assert [p.name for p in tmp_path.iterdir()] == []  # no temp file left behind, nothing half-written


@pytest.mark.system
def test_a_full_temp_dir_without_dsn_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["TMPDIR"] = str(tmp_path / "missing")  # gettempdir() falls back to /tmp, which is also "full"
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--workload", "noop", "--ops", "10", "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, preexec_fn=_limit_zero,
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("runner: error: embedded PostgreSQL: no room") and "internal error" not in proc.stderr
