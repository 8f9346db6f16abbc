"""The embedded server's reaper: a detached process that outlives nothing it should not.

Started in a new session with stdin = the read end of a pipe whose write end only the run's
parent holds. When the parent exits for any reason (normal exit, exception, SIGTERM, SIGKILL)
the kernel closes that end, `read()` returns EOF, and the reaper stops postgres and deletes the
temp dir. Usage: python -m runner.server.reaper TEMP_DIR PGDATA
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

STOP_WAIT_S = 10.0
POLL_S = 0.05
START_RACE_S = 3.0
REMOVE_DEADLINE_S = 20.0  # keep killing stragglers and removing until the temp dir is gone


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_postgres(pgdata: Path) -> None:
    """Immediate shutdown (SIGQUIT): the data is thrown away, so no checkpoint is worth waiting for."""
    pid = postmaster_pid(pgdata)
    deadline = time.monotonic() + START_RACE_S
    # The owner may have died while `pg_ctl start` was still bringing the server up.
    while pid is None and (pgdata / "PG_VERSION").exists() and time.monotonic() < deadline:
        time.sleep(POLL_S)
        pid = postmaster_pid(pgdata)
    if pid is None or not alive(pid):
        return
    os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + STOP_WAIT_S
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def _parent_pid(stat_line: str) -> int:
    return int(stat_line.rsplit(")", 1)[1].split()[1])  # the name in (...) may hold spaces


def _inside(entry: Path, temp_dir: str) -> bool:
    """Whether the process works in the temp dir: postgres changes into its data directory, and
    initdb's `postgres --boot` child names it only in its environment."""
    try:
        return os.readlink(entry / "cwd").startswith(temp_dir)
    except OSError:
        return False


def pids_using(temp_dir: Path) -> set[int]:
    """Processes whose command line names the temp dir or that work inside it, and all their
    descendants.

    That is initdb (still writing when its owner died mid-start), its `postgres --boot` child
    (orphaned if initdb was killed), pg_ctl, postgres and their children. Linux only (/proc);
    elsewhere: none.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return set()
    needle = str(temp_dir).encode()
    parents: dict[int, int] = {}
    found: set[int] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            parents[int(entry.name)] = _parent_pid((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if needle in cmdline or _inside(entry, str(temp_dir)):
            found.add(int(entry.name))
    grown = True
    while grown:
        children = {pid for pid, parent in parents.items() if parent in found} - found
        found |= children
        grown = bool(children)
    found.discard(os.getpid())  # the reaper's own command line names the dir
    return found


def kill_stragglers(temp_dir: Path) -> None:
    for pid in pids_using(temp_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def remove(temp_dir: Path) -> None:
    """Kill whatever still writes into the temp dir, then delete it; again until it is gone."""
    deadline = time.monotonic() + REMOVE_DEADLINE_S
    while True:
        kill_stragglers(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        if not temp_dir.exists() or time.monotonic() > deadline:
            return
        time.sleep(POLL_S * 4)


def main(argv: list[str]) -> int:
    temp_dir, pgdata = Path(argv[0]), Path(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only EOF on the lifeline ends us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass
    try:
        stop_postgres(pgdata)
    finally:
        remove(temp_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
