"""One real embedded PostgreSQL per test session; the runner is driven as users drive it."""

from __future__ import annotations

import compileall
import glob
import json
import multiprocessing.process
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import create_engine, text

from runner.dsn import child_env, parse_dsn
from runner.server.embedded import TEMP_PREFIX, EmbeddedServer

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    doc: dict[str, Any] | None
    stdout: str
    stderr: str


def run_runner(*args: str, dsn: str | None = None, timeout: float = 180, env: dict[str, str] | None = None) -> Result:
    """`python -m runner ARGS` in a real subprocess, stdout parsed as the JSON document; `dsn` goes
    in DATABASE_URL, as the README says to pass a password (argv is every local user's to read)."""
    argv = [sys.executable, "-m", "runner", *args]
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if dsn is not None:
        full_env = child_env(dsn, full_env)
    full_env.update(env or {})
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=full_env)
    try:
        doc = json.loads(proc.stdout)
    except ValueError:  # --help, --version, or nothing at all
        doc = None
    return Result(proc.returncode, doc, proc.stdout, proc.stderr)


def run_cli(*args: str, dsn: str | None = None) -> Result:
    """`runner ARGS` in this process, through the CLI's own main(): for what starts no server or
    worker (input the runner refuses; compare, report, explain; the unit tier's guard fails the
    test if one starts). The same code as `python -m runner`, without an interpreter's start
    (~0.5 s of CPU each, a report's matplotlib 1 s more); descriptors 1 and 2 are captured, as the
    CLI moves stdout onto stderr for a run. `dsn` goes in DATABASE_URL, as with run_runner."""
    from runner.cli import main

    saved = {fd: os.dup(fd) for fd in (1, 2)}
    streams = sys.stdout, sys.stderr
    environ = os.environ.pop("DATABASE_URL", None)  # as run_runner: the CLI's own default
    if dsn is not None:
        os.environ["DATABASE_URL"] = dsn
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        open_before = set(os.listdir("/proc/self/fd")) | {str(copy) for copy in saved.values()}
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115  (flushed and dropped below)
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.stdout, sys.stderr = streams
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            captured = {(os.fstat(f.fileno()).st_dev, os.fstat(f.fileno()).st_ino) for f in (out, err)}
            for fd in set(os.listdir("/proc/self/fd")) - open_before:  # the CLI's copy of stdout, no other
                try:  # (matplotlib keeps its fonts open: closing those broke the next report's text)
                    if (os.fstat(int(fd)).st_dev, os.fstat(int(fd)).st_ino) in captured:
                        os.close(int(fd))
                except OSError:
                    pass
            os.environ.pop("DATABASE_URL", None)
            if environ is not None:
                os.environ["DATABASE_URL"] = environ
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if "TierError" in stderr:  # the CLI reported the guard's error as its own: a run began
        pytest.fail(f"run_cli({' '.join(args)}) got past the input checks and began a run: {stderr.strip()}")
    try:
        doc = json.loads(stdout)
    except ValueError:
        doc = None
    return Result(code, doc, stdout, stderr)


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


LEAK_WAIT_S = 15.0
# Processes a test may start through the runner or a fixture, and must not leave running.
SERVICE_NAMES = ("raylet", "gcs_server", "pgbouncer", "postgres")
ACTOR_TITLE = "ray::RunnerWorker"
# Every process this session starts inherits it (through the runner, pg_ctl, Ray's daemons), so
# the leak check sees this session's processes only: another runner's, or another test
# session's on the same machine, are none of its business (and must not fail it).
SESSION_MARK = "RUNNER_TEST_SESSION"
TMP_ROOT = "RUNNER_TEST_TMP_ROOT"  # where every session's TMPDIR is made (the first session's temp dir)


def _ours(proc: psutil.Process) -> bool:
    try:
        return proc.environ().get(SESSION_MARK) == os.environ[SESSION_MARK]
    except psutil.Error:  # gone, or another user's
        return False


def _services() -> set[int]:
    """This session's Ray daemons and actors, PgBouncers and PostgreSQL processes, by pid."""
    found = set()
    for proc in psutil.process_iter(["name", "cmdline"]):
        if (proc.info["name"] in SERVICE_NAMES or ACTOR_TITLE in " ".join(proc.info["cmdline"] or [])) and _ours(proc):
            found.add(proc.pid)
    return found


def temp_glob() -> str:
    """Where this session's embedded servers put their temp dirs: its own TMPDIR."""
    return f"{tempfile.gettempdir()}/{TEMP_PREFIX}*"


COMPILED = ("runner", "workloads", "examples")  # what every runner and worker process imports from the checkout


def _compile_checkout() -> None:
    """The checkout's modules as bytecode beside them, as pip leaves an installed package: every
    `python -m runner` a test starts (cwd REPO) and each of its workers imports them from here.
    Where PYTHONDONTWRITEBYTECODE is set (it is on our CI machine) each of those processes compiled
    ~80 modules from source: 0.1-0.15 s of CPU a process, ~18 % of a short run's. Python still reads
    bytecode it may not write; compileall writes it whatever the variable says, and skips what is
    up to date."""
    for package in COMPILED:
        compileall.compile_dir(REPO / package, quiet=2)


def pytest_sessionstart(session: pytest.Session) -> None:
    """A TMPDIR and a mark of this session's own, inherited by everything it starts."""
    _compile_checkout()
    os.environ[SESSION_MARK] = uuid.uuid4().hex
    # With pytest-xdist each worker is a session of its own, started by the controller after its
    # own session began: its TMPDIR goes beside the controller's, not inside it (Ray's socket
    # paths under it must stay within AF_UNIX's 107 bytes).
    root = os.environ.setdefault(TMP_ROOT, tempfile.gettempdir())
    session_tmp = tempfile.mkdtemp(prefix="runner-tests-", dir=root)
    os.chmod(session_tmp, 0o755)  # as root, the embedded server's OS user works inside it
    os.environ["TMPDIR"] = session_tmp
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No test may leave an embedded server, its temp dir, a worker process, a Ray daemon or
    actor, or a PgBouncer behind."""
    deadline = time.monotonic() + LEAK_WAIT_S
    while True:
        dirs = set(glob.glob(temp_glob()))
        workers = [p for p in psutil.Process().children(recursive=True) if "spawn_main" in _cmdline(p)]
        services = _services()
        if (not dirs and not workers and not services) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if dirs or workers or services:
        print(f"\nLEAK: temp dirs {sorted(dirs)}, worker processes {[p.pid for p in workers]}, services {sorted(services)}")
        session.exitstatus = 1
    else:
        shutil.rmtree(tempfile.gettempdir(), ignore_errors=True)  # the session's own TMPDIR


_STARTED: list[subprocess.Popen[Any]] = []


def started(proc: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    """A run a test started in the background: ended after the test whatever happened in it, so a
    failed test never leaves a run holding the schema's lock for the next (one did: three more
    failures followed it)."""
    _STARTED.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _end_started_runs() -> Iterator[None]:
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()  # its workers see their parent gone; the embedded server's reaper cleans up
            proc.communicate(timeout=60)


TIERS = ("unit", "db", "system")
DB_FIXTURES = {"server", "dsn", "runner_server", "pgbouncer"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test in one tier: its own marker (the closest one), else db if it asks for the
    session's server, else unit."""
    for item in items:
        if _tier(item) is None:
            item.add_marker("db" if DB_FIXTURES & set(getattr(item, "fixturenames", ())) else "unit")


def _tier(item: pytest.Item) -> str | None:
    return next((mark.name for mark in item.iter_markers() if mark.name in TIERS), None)


class TierError(Exception):
    pass


@pytest.fixture(autouse=True)
def _tier_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit or db test that starts a process fails, naming the tier it belongs to: the quick
    tiers stay quick and do not depend on what else runs on the machine."""
    tier = _tier(request.node)
    if tier == "system":
        return

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise TierError(f"a {tier} test started a process: mark it pytest.mark.system")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)


@pytest.fixture(scope="session")
def server(runner_server: EmbeddedServer) -> EmbeddedServer:
    """The session's embedded server: the package's own pytest plugin's (runner.pytest_plugin),
    so this suite uses the fixture it ships."""
    return runner_server


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

TABLE_OID = "SELECT to_regclass('runner.a')::oid"


def table_oid(dsn: str) -> int | None:
    """runner.a's oid now (a run makes its tables afresh: a new oid), None before any run."""
    found = query(dsn, TABLE_OID)
    return None if found is None else int(found)


def wait_until_writing(dsn: str, before: int | None, timeout_s: float = 90.0) -> None:
    """Until the run started after `before` (runner.a's oid then) has committed a write: measured
    ops, not a guess at how long start-up takes (2 s was not enough beside two CPU hogs)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            oid = table_oid(dsn)
            if oid is not None and oid != before and query(dsn, "SELECT count(*) FROM runner.a"):
                return
        except Exception:  # the tables being made again, or locked: look again
            pass
        time.sleep(0.1)
    raise AssertionError(f"no write committed within {timeout_s:g} s of the run's start")


PGBOUNCER_HOME = REPO / ".cache" / "pgbouncer"  # where scripts/fetch-pgbouncer.sh unpacks it


def _pgbouncer_command() -> tuple[list[str], dict[str, str]]:
    """PgBouncer from PATH, or the one scripts/fetch-pgbouncer.sh unpacked (the README's test
    command runs it). Missing is a failure, not a skip: the pooler tests would test nothing."""
    found = shutil.which("pgbouncer")
    if found:
        return [found], {}
    unpacked = PGBOUNCER_HOME / "usr" / "sbin" / "pgbouncer"
    if not unpacked.exists():
        pytest.fail("PgBouncer is missing: run scripts/fetch-pgbouncer.sh (the README's test command does)")
    libs = ":".join(str(p) for p in (PGBOUNCER_HOME / "usr" / "lib").glob("*-linux-gnu"))
    return [str(unpacked)], {"LD_LIBRARY_PATH": libs}


@pytest.fixture
def pgbouncer(server: EmbeddedServer) -> Iterator[Any]:
    """A factory: a real PgBouncer in transaction mode in front of the session's server, on
    127.0.0.1; returns its DSN. Every one started is stopped at the end of the test."""
    import pwd
    import socket

    command, env = _pgbouncer_command()
    password = parse_dsn(server.dsn).password
    # Not under pytest's tmp_path: as root PgBouncer runs as another user, who must reach its files.
    base = Path(tempfile.mkdtemp(prefix="runner-pgbouncer-"))
    base.chmod(0o755)
    started: list[subprocess.Popen[bytes]] = []

    def start(max_client_conn: int = 500, ignore: str = "extra_float_digits") -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        home = base / str(port)
        home.mkdir(mode=0o700)
        # The server's password, in files only PgBouncer's user reads; clients log in with it too
        # (SCRAM), so the pooler lets in no more than the server behind it does.
        (home / "userlist.txt").write_text(f'"postgres" "{password}"\n')
        ini = home / "pgbouncer.ini"
        ini.write_text(
            f"[databases]\npostgres = host=127.0.0.1 port={server.port} dbname=postgres user=postgres password={password}\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = scram-sha-256\nauth_file = {home / 'userlist.txt'}\npool_mode = transaction\n"
            f"max_client_conn = {max_client_conn}\ndefault_pool_size = 10\nignore_startup_parameters = {ignore}\n"
            f"logfile = {home / 'pgbouncer.log'}\n"
        )
        as_user: list[str] = []
        if os.geteuid() == 0:  # it refuses to run as root: as the embedded server's OS user, who owns its files
            as_user = ["-u", "pgserver"]
            entry = pwd.getpwnam("pgserver")
            for path in (home, home / "userlist.txt", ini):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        for path in (home / "userlist.txt", ini):
            path.chmod(0o600)
        proc = subprocess.Popen([*command, *as_user, str(ini)], env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    return f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
            assert proc.poll() is None, (home / "pgbouncer.log").read_text() if (home / "pgbouncer.log").exists() else "pgbouncer exited"
            time.sleep(0.05)
        raise AssertionError("PgBouncer did not start listening")

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)
    shutil.rmtree(base, ignore_errors=True)


def interrupt_after(argv: list[str], line: str, wait_s: float) -> tuple[int, dict[str, Any], str]:
    """`python -m runner ARGV` in the background, sent SIGINT `wait_s` after it writes a stderr
    line starting with `line`; its exit code, its document and the rest of its stderr."""
    parent = started(subprocess.Popen([sys.executable, "-m", "runner", *argv], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    assert parent.stderr is not None
    for written in parent.stderr:
        if written.startswith(line):
            break
    time.sleep(wait_s)
    os.kill(parent.pid, signal.SIGINT)
    stdout, stderr = parent.communicate(timeout=60)
    return parent.returncode, json.loads(stdout), stderr
