"""DSNs as users paste them: parsed once, shown without secrets, and translated for each driver.

A DSN's query parameters are libpq's (`sslmode`, `connect_timeout`, ...). psycopg2 and psycopg 3
take them as they are; asyncpg takes a few of them under other names and refuses the rest with a
TypeError deep inside a worker. So the query is taken off the URL and handed to each driver in its
own words, and a parameter a driver cannot honour is refused by name before anything starts.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from runner.errors import UsageError

KNOWN_DRIVERS = ("asyncpg", "psycopg2", "psycopg")
LIBPQ_DRIVERS = ("psycopg2", "psycopg")
# Characters that end the user:password part of a URL early when they are not percent-encoded.
USERINFO_BREAKERS = {"@": "%40", "#": "%23", "/": "%2F", "?": "%3F"}
# asyncpg's own settings: meaningless to libpq, which would refuse them.
ASYNCPG_ONLY = ("statement_cache_size", "prepared_statement_cache_size")
# libpq name -> asyncpg.connect() name, with the value's type.
ASYNCPG_RENAMED: dict[str, tuple[str, type]] = {"sslmode": ("ssl", str), "connect_timeout": ("timeout", float)}
ASYNCPG_SAME = {
    "target_session_attrs": str,
    "passfile": str,
    "krbsrvname": str,
    "gsslib": str,
    "statement_cache_size": int,
    "prepared_statement_cache_size": int,
    "password": str,  # libpq's `?password=`, which psycopg takes too: the same DSN works on every driver
}
# The runner sets these itself on every connection.
RUNNER_OWNED = ("application_name",)
# libpq's parameters that carry a secret themselves (a file's path, as `passfile`, is not one).
SECRET_PARAMS = ("password", "sslpassword")
MASK = "***"


def _check_userinfo(dsn: str) -> None:
    """Refuse a password (or user) whose special characters would move the host boundary.

    `postgresql://u:p@ss#word@host/db` parses with host `ss#word@host`, and every message that
    names the host would then show part of the password: never echo anything of it.
    """
    rest = dsn.split("://", 1)[1] if "://" in dsn else dsn
    at = rest.rfind("@")
    if at < 0:
        return
    userinfo = rest[:at]
    found = [char for char in USERINFO_BREAKERS if char in userinfo]
    if found:
        encodings = ", ".join(f"{char} as {USERINFO_BREAKERS[char]}" for char in found)
        raise UsageError(
            f"the DSN's user or password contains {' '.join(repr(c) for c in found)}: percent-encode "
            f"them ({encodings}); the DSN is not shown here because it holds a password"
        )


def parse_dsn(dsn: str) -> URL:
    """Parse a PostgreSQL DSN, refusing other dialects and drivers with one clear line."""
    if dsn.startswith("postgres://"):  # the libpq/Heroku spelling that SQLAlchemy does not know
        dsn = "postgresql://" + dsn[len("postgres://") :]
    _check_userinfo(dsn)
    try:
        url = make_url(dsn)
    except (ArgumentError, ValueError):
        raise UsageError("malformed DSN: expected postgresql://user:password@host:port/database") from None
    if url.get_backend_name() != "postgresql":
        raise UsageError(
            f"DSN dialect {url.get_backend_name()!r} is not supported: runner speaks PostgreSQL only (use postgresql://...)"
        )
    driver = url.get_driver_name() if "+" in url.drivername else None
    if driver is not None and driver not in KNOWN_DRIVERS:
        raise UsageError(
            f"DSN driver {driver!r} is unknown: use postgresql:// (the runner picks the driver) or one of {', '.join(KNOWN_DRIVERS)}"
        )
    if url.host and url.host.lower().startswith("%2f"):  # libpq's socket form: postgresql://u@%2Ftmp/db
        url = url.set(host=unquote(url.host))
    query = dict(url.query)
    if "host" in query:  # the other socket form: postgresql://u@/db?host=/tmp
        host = query.pop("host")
        if isinstance(host, tuple) or url.host:
            raise UsageError("the DSN names its host twice (in the URL and as ?host=): keep one")
        url = url.set(host=host, query=query)
    if "port" in query:  # libpq's ?port=, with ?host= or without: the URL's port for every driver
        port = query.pop("port")
        if isinstance(port, tuple) or url.port:
            raise UsageError("the DSN names its port twice (in the URL and as ?port=): keep one")
        if not port.isdigit():
            raise UsageError(f"DSN parameter port={port!r} is not a port number")
        url = url.set(port=int(port), query=query)
    for name, value in url.query.items():
        if isinstance(value, tuple):
            raise UsageError(f"DSN parameter {name!r} is given more than once: keep one")
    return url


def mask_dsn(dsn: str | None) -> str | None:
    """The DSN with every secret in it replaced: the one function for every place a DSN leaves the
    process (the document, messages, what Ray is handed). The password in the user part, and
    each secret-bearing query parameter (`?password=`, `?sslpassword=`)."""
    if dsn is None:
        return None
    try:
        url = parse_dsn(dsn)
    except UsageError:
        return "<unparseable DSN>"
    query = "&".join(f"{quote(name)}={MASK if name in SECRET_PARAMS else quote(str(value), safe='/')}" for name, value in url.query.items())
    return url.set(query={}).render_as_string(hide_password=True) + (f"?{query}" if query else "")


def dsn_secrets(dsn: str) -> tuple[str, ...]:
    """What must never appear in anything the runner shows: the DSN's password and every
    secret-bearing query parameter's value."""
    url = parse_dsn(dsn)
    found = [url.password] + [url.query.get(name) for name in SECRET_PARAMS]
    return tuple(str(value) for value in found if value)


def child_env(dsn: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process that connects to `dsn`: the DSN as `DATABASE_URL` (the
    runner and the bench scripts read it) and as libpq's own variables (pgbench, psql). Never on
    argv: a command line is every local user's to read (`ps`), and a DSN may hold a password."""
    url = parse_dsn(dsn)
    libpq = {"PGHOST": url.host, "PGPORT": url.port, "PGUSER": url.username, "PGPASSWORD": url.password, "PGDATABASE": url.database}
    env = {**(os.environ if base is None else base), "DATABASE_URL": dsn}
    env.update({name: str(value) for name, value in libpq.items() if value is not None})
    return env


DSN_IN_WORD = re.compile(r"postgres(?:ql)?(?:\+\w+)?://.*", re.DOTALL)


def mask_command_line(argv: Sequence[str]) -> str:
    """A command line as a shell would take it, every DSN in it masked (`--dsn URL`, `--dsn=URL`):
    for what the runner hands a third party that records its driver's command line (Ray)."""
    return shlex.join(DSN_IN_WORD.sub(lambda match: mask_dsn(match.group(0)) or "", word) for word in argv)


def settings_options(settings: dict[str, str]) -> str:
    """Settings as libpq's `options` startup parameter (`-c name=value ...`): options_settings' inverse."""
    return " ".join(f"-c {name}={value}" for name, value in settings.items())


def options_settings(options: str) -> dict[str, str]:
    """libpq's `options` (`-c name=value -c ...` or `--name=value`) as settings."""
    settings: dict[str, str] = {}
    words = shlex.split(options)
    index = 0
    while index < len(words):
        word = words[index]
        if word == "-c" and index + 1 < len(words):
            word, index = words[index + 1], index + 1
        elif word.startswith("-c"):
            word = word[2:]
        elif word.startswith("--"):
            word = word[2:]
        else:
            raise UsageError(f"DSN parameter options={options!r}: only -c name=value settings are understood")
        name, sep, value = word.partition("=")
        if not sep:
            raise UsageError(f"DSN parameter options={options!r}: expected name=value after -c")
        settings[name.replace("-", "_")] = value
        index += 1
    return settings


def driver_args(dsn: str, driver: str) -> tuple[URL, dict[str, Any], dict[str, str]]:
    """The URL (no query) for `driver`, its connect arguments, and the DSN's session settings.

    Session settings come from the DSN's `options`; the caller merges its own on top and passes
    them the driver's way. A parameter the driver cannot take is refused with its name.
    """
    url = parse_dsn(dsn)
    params = {name: str(value) for name, value in url.query.items()}
    url = url.set(drivername=f"postgresql+{driver}", query={})
    settings = options_settings(params.pop("options")) if "options" in params else {}
    for name in RUNNER_OWNED:
        params.pop(name, None)  # every connection is named by the runner (runner-worker-N, ...)
    if driver in LIBPQ_DRIVERS:
        return url, {k: v for k, v in params.items() if k not in ASYNCPG_ONLY}, settings
    args: dict[str, Any] = {}
    for name, value in params.items():
        renamed, kind = ASYNCPG_RENAMED.get(name, (name, ASYNCPG_SAME.get(name)))  # type: ignore[arg-type]
        if kind is None:
            raise UsageError(
                f"DSN parameter {name!r} is not understood by asyncpg: remove it from the DSN, or use --driver psycopg"
            )
        try:
            args[renamed] = kind(value)
        except ValueError:
            raise UsageError(f"DSN parameter {name}={value!r} is not a {kind.__name__}") from None
    return url, args, settings
