"""DSNs as users paste them: no fragment of a password echoed, libpq's forms understood, each
driver given the query parameters in its own words (or a parameter refused by name)."""

from __future__ import annotations

import urllib.parse

import pytest

from runner.dsn import driver_args, mask_dsn, options_settings, parse_dsn
from runner.errors import UsageError
from runner.server.embedded import EmbeddedServer
from tests.conftest import run_cli, run_runner


@pytest.mark.parametrize(
    ("password", "named"),
    [("Xq7@Zk9#Wm3", "'@' '#'"), ("Xq7/Zk9", "'/'"), ("Xq7?Zk9", "'?'"), ("Xq7@Zk9", "'@'")],
)
def test_unencoded_password_characters_are_refused_without_echo(password: str, named: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_dsn(f"postgresql://user:{password}@127.0.0.1:5432/db")
    message = str(caught.value)
    assert named in message and "percent-encode" in message
    for fragment in ("Xq7", "Zk9", "Wm3"):
        assert fragment not in message


def test_the_cli_never_prints_part_of_such_a_password() -> None:
    result = run_cli("--ops", "10", "--dsn", "postgresql://user:p@ss#word@127.0.0.1/db")
    assert result.code == 2
    assert "ss#word" not in result.stderr and "word" not in result.stderr.replace("password", "")
    assert len(result.stderr.strip().splitlines()) == 1


def test_percent_encoded_passwords_and_colons_are_fine() -> None:
    url = parse_dsn("postgresql://user:p%40ss%23w:rd@db.example:5433/bench")
    assert url.password == "p@ss#w:rd" and url.host == "db.example" and url.port == 5433
    assert "p%40ss" not in (mask_dsn("postgresql://user:p%40ss%23w:rd@db.example:5433/bench") or "")


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://postgres@%2Ftmp%2Fsock:5432/db", "postgresql://postgres@:5432/db?host=/tmp/sock",
        "postgres://postgres@%2ftmp%2fsock:5432/db", "postgresql://postgres@/db?host=/tmp/sock&port=5432",
    ],
)
def test_libpq_socket_forms(dsn: str) -> None:
    url = parse_dsn(dsn)
    assert url.host == "/tmp/sock" and url.port == 5432 and "host" not in url.query and "port" not in url.query
    for driver in ("asyncpg", "psycopg2", "psycopg"):  # ?port= was refused by name for asyncpg
        assert driver_args(dsn, driver)[0].port == 5432


def test_asyncpg_gets_libpq_parameters_in_its_own_words() -> None:
    url, args, settings = driver_args(
        "postgresql://u:p@h/db?sslmode=disable&connect_timeout=7&application_name=app"
        "&prepared_statement_cache_size=0&options=-c%20search_path%3Dapp%20-c%20work_mem%3D8MB",
        "asyncpg",
    )
    assert url.drivername == "postgresql+asyncpg" and not url.query
    assert args == {"ssl": "disable", "timeout": 7.0, "prepared_statement_cache_size": 0}
    assert settings == {"search_path": "app", "work_mem": "8MB"}


def test_libpq_drivers_keep_libpq_parameters_and_drop_asyncpg_ones() -> None:
    _, args, _ = driver_args("postgresql://u:p@h/db?sslmode=require&statement_cache_size=0", "psycopg2")
    assert args == {"sslmode": "require"}


def test_a_parameter_asyncpg_cannot_take_is_refused_by_name() -> None:
    with pytest.raises(UsageError, match="'sslrootcert' is not understood by asyncpg"):
        driver_args("postgresql://u:p@h/db?sslrootcert=/ca.pem", "asyncpg")
    result = run_cli("--ops", "10", "--dsn", "postgresql://u:p@127.0.0.1:1/db?sslrootcert=/ca.pem")
    assert result.code == 2 and "sslrootcert" in result.stderr


def test_options_forms() -> None:
    assert options_settings("-c a=1 -cb=2 --c-d=3") == {"a": "1", "b": "2", "c_d": "3"}
    with pytest.raises(UsageError):
        options_settings("endpoint=x")


@pytest.mark.system
def test_sslmode_in_the_dsn_runs_on_asyncpg(dsn: str) -> None:
    result = run_runner("--ops", "40", "--quiet", dsn=dsn + "?sslmode=disable&connect_timeout=5")
    assert result.code == 0, result.stderr
    assert result.doc is not None and result.doc["totals"]["ok"] == 40


@pytest.mark.system
@pytest.mark.parametrize("form", ["in the host", "as ?host= and ?port="])
def test_a_socket_dsn_runs(server: EmbeddedServer, form: str) -> None:
    socket_dir = urllib.parse.quote(str(server.socket_dir), safe="")
    dsn = (
        f"postgresql://postgres:{server.password}@{socket_dir}:{server.port}/postgres" if form == "in the host"
        else f"postgresql://postgres:{server.password}@/postgres?host={server.socket_dir}&port={server.port}"
    )
    result = run_runner("--ops", "40", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    assert result.doc is not None and result.doc["totals"]["ok"] == 40
