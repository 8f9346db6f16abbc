"""The parent's talk with the server: one clear line for each way a connection or setup fails."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from runner.server.embedded import EmbeddedServer
from tests.conftest import execute, query, run_runner


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.system
def test_a_runner_schema_it_did_not_create_is_never_dropped(dsn: str) -> None:
    execute(dsn, "DROP DATABASE IF EXISTS foreign_db", "CREATE DATABASE foreign_db")
    other = dsn.rsplit("/", 1)[0] + "/foreign_db"
    execute(other, "CREATE SCHEMA runner", "CREATE TABLE runner.precious (id int)", "INSERT INTO runner.precious VALUES (1)")
    result = run_runner("--ops", "10", dsn=other)
    assert result.code == 3
    assert "not created by runner" in _one_line(result.stderr)
    assert query(other, "SELECT count(*) FROM runner.precious") == 1


@pytest.mark.system
def test_authentication_failed(server: EmbeddedServer, dsn: str) -> None:
    execute(dsn, "DROP ROLE IF EXISTS pwuser", "CREATE ROLE pwuser LOGIN PASSWORD 'right-pw'")
    # The embedded server asks every connection for its password (SCRAM)
    result = run_runner("--ops", "10", dsn=f"postgresql://pwuser:wrong-pw@127.0.0.1:{server.port}/postgres")
    assert result.code == 3
    line = _one_line(result.stderr)
    assert "authentication failed" in line and "wrong-pw" not in result.stderr + result.stdout


@pytest.mark.system
def test_host_not_found() -> None:
    result = run_runner("--ops", "10", dsn="postgresql://u:p@no-such-host.invalid:5432/db")
    assert result.code == 3
    assert "not found" in _one_line(result.stderr)


@pytest.fixture
def not_postgres() -> Iterator[int]:
    """A TCP server that answers like an HTTP server, not PostgreSQL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


@pytest.mark.system
def test_a_server_that_is_not_postgresql(not_postgres: int) -> None:
    result = run_runner("--ops", "10", dsn=f"postgresql://u:p@127.0.0.1:{not_postgres}/db")
    assert result.code == 3
    assert "does not speak the PostgreSQL protocol" in _one_line(result.stderr)


@pytest.mark.system
def test_host_unreachable_is_one_line() -> None:
    # TEST-NET-1 (RFC 5737): never routed; either no answer within the timeout or no route.
    result = run_runner("--ops", "10", dsn="postgresql://u:p@192.0.2.1:5432/db", timeout=60)
    assert result.code == 3
    line = _one_line(result.stderr)
    assert "unreachable" in line or "refused" in line


@pytest.mark.system
def test_a_users_statement_timeout_never_cancels_the_runners_own_queries(dsn: str) -> None:
    # tpcb's set-up fills 100,000 accounts in one statement, far beyond 50 ms: the parent's own
    # queries must be exempt. (At 1 ms, the workers' own preflight query could time out on a
    # loaded machine: CI saw it. That one rightly runs under the user's settings.)
    result = run_runner("--workload", "tpcb", "--ops", "60", "--pg-setting", "statement_timeout=50", "--quiet", dsn=dsn)
    assert result.code in (0, 5), result.stderr  # the workers' ops may time out: counted, not fatal
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    doc = result.doc
    assert doc is not None and doc["complete"] is True
    totals = doc["totals"]
    assert totals["ok"] + totals["errors"] == 60
    # Whatever broke (a cancelled statement, the transaction it left), each class keeps a message.
    assert set(totals["error_samples"]) == set(totals["errors_by_class"])
    assert doc["database"]["rows"] == doc["database"]["expected_rows"]
