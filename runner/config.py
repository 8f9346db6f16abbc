"""The run options' constants and the parsers of their text forms (runner.spec holds the options, runner.resolve their rules)."""

from __future__ import annotations

import re

from runner.errors import UsageError

DEFAULT_OPS = 35_000  # the seed experiment's count
DEFAULT_MODE = "chunked"  # the seed experiment's best; --rate and --stages choose their own (runner.resolve)
MAX_PROCS = 512  # far beyond any useful client on one machine; catches a typo like --procs 40000
LOOPS = ("uvloop", "asyncio")
ASYNC_DRIVERS = ("asyncpg", "psycopg")
SYNC_DRIVERS = ("psycopg2", "psycopg")
ARRIVALS = ("uniform", "poisson")
PREPARE = ("auto", "never", "always")
# psycopg 3's prepare_threshold per --prepare: executions of a statement before it is prepared
# (None: never). asyncpg always prepares; "never" there means no statement cache (each
# statement prepared for one execution, so no plan is reused).
PSYCOPG_PREPARE_THRESHOLD: dict[str, int | None] = {"auto": 5, "never": None, "always": 0}
CLUSTER = re.compile(r"^(local|ray|ray:auto|ray:[A-Za-z0-9_.\-\[\]:]+:\d+)$")
MIN_INTERVAL_S = 0.1  # finer intervals are mostly timer jitter, and the sampler looks every 0.1 s
# The open loop's default --max-inflight per worker: above capacity, ops due beyond this many in
# flight are dropped and counted (as k6 drops iterations) instead of piling up without bound.
DEFAULT_MAX_INFLIGHT = 1000


def parse_warmup(text: str | None) -> tuple[int, float]:
    """`--warmup 500` (ops across all workers) or `--warmup 5s` (seconds) -> (ops, seconds)."""
    if text is None:
        return 0, 0.0
    try:
        if text.endswith("s"):
            return 0, float(text[:-1])
        return int(text), 0.0
    except ValueError:
        raise UsageError(f"--warmup takes ops (500) or seconds (5s), got {text!r}") from None


DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")
DURATION_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


def parse_duration(text: str, option: str, zero_ok: bool = False) -> float:
    """`10s`, `500ms`, `2m` or a plain number of seconds -> seconds (> 0, or >= 0 if zero_ok)."""
    match = DURATION.match(text.strip())
    if match is None or (float(match.group(1)) <= 0 and not zero_ok):
        raise UsageError(f"{option} takes a {'' if zero_ok else 'positive '}time such as 10s, 500ms or 2m, got {text!r}")
    return float(match.group(1)) * DURATION_UNIT_S[match.group(2)]


THINK_DISTRIBUTIONS = ("fixed", "exp")
# --isolation -> the server's name for it (default_transaction_isolation)
ISOLATION = {"read-committed": "read committed", "repeatable-read": "repeatable read", "serializable": "serializable"}


def parse_think(text: str | None) -> tuple[float, str]:
    """`--think 100ms` (fixed) or `--think exp:100ms` (exponential, that mean) -> (seconds, kind)."""
    if text is None:
        return 0.0, "fixed"
    kind, sep, rest = text.partition(":")
    if sep and kind == "exp":
        return parse_duration(rest, "--think"), "exp"
    return parse_duration(text, "--think"), "fixed"


SETTING_NAME = re.compile(r"^[a-z_][a-z0-9_.]*$")


def parse_pg_settings(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """`--pg-setting plan_cache_mode=force_custom_plan`, repeatable."""
    settings = []
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep or not SETTING_NAME.match(name) or not value:
            raise UsageError(f"--pg-setting takes name=value (e.g. synchronous_commit=off), got {item!r}")
        settings.append((name, value))
    return tuple(settings)


def parse_max_errors(text: str | None) -> tuple[int | None, float | None]:
    """`--max-errors 100` (a count) or `--max-errors 5%` (a share of finished ops)."""
    if text is None:
        return None, None
    try:
        if text.endswith("%"):
            return None, float(text[:-1]) / 100
        return int(text), None
    except ValueError:
        raise UsageError(f"--max-errors takes a count (100) or a share (5%), got {text!r}") from None
