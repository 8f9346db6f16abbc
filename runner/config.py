"""The run's configuration: one frozen dataclass, validated once, safe to pickle into a worker."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import secrets
from dataclasses import dataclass
from typing import Any

from runner.dsn import driver_args, mask_dsn
from runner.errors import UsageError

DEFAULT_OPS = 35_000  # the seed experiment's count
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


@dataclass(frozen=True)
class Config:
    """Every option of a run. Names and numbers only, so it crosses a process boundary untouched."""

    procs: int = 1
    chunk: int = 40
    ops: int | None = None  # None: DEFAULT_OPS, unless --duration bounds the run instead
    mode: str = "chunked"
    loop: str = "uvloop"
    threads: int = 1
    read_ratio: float = 0.5
    seed: int | None = None
    workload: str = "seed"
    layer: str = "orm"
    driver: str | None = None  # None: asyncpg for async modes, psycopg2 for sync
    dsn: str | None = None
    output: str | None = None
    repeat: int = 1
    quiet: bool = False
    jsonl: bool = False
    interval_s: float = 1.0
    warmup_ops: int = 0
    warmup_s: float = 0.0
    duration_s: float | None = None
    rate_per_s: float | None = None  # --rate: open loop, total ops/s across workers
    arrival: str = "uniform"
    max_inflight: int | None = None
    pg_settings: tuple[tuple[str, str], ...] = ()  # --pg-setting name=value, in order
    pool_size: int | None = None  # None: each worker's concurrency
    max_overflow: int = 0
    pool_timeout_s: float = 600.0  # a queue on the pool is latency, not an error, unless this passes
    grace_s: float = 10.0
    op_timeout_s: float | None = None
    max_errors: int | None = None
    max_error_ratio: float | None = None
    debug: bool = False
    wait_for_lock: bool = False  # queue behind another run on the same schema instead of refusing
    statement_cache: bool = True  # --statement-cache off: no prepared-statement cache (transaction poolers)
    stages: tuple[tuple[str, float, float], ...] = ()  # --stages: (hold|ramp, seconds, target)
    stage_kind: str | None = None  # "rate" (ops/s across workers) or "concurrency" (in flight per worker)
    checks: tuple[str, ...] = ()  # --check EXPR, repeatable (runner.analysis.checks)
    prometheus_port: int | None = None  # --prometheus-port: serve live metrics on 127.0.0.1
    prepare: str = "auto"  # --prepare auto|never|always: server-side prepared statements where the driver allows
    max_client_connections: int | None = None  # the preflight's budget instead of the server's (a pooler)
    cluster: str = "local"  # local processes, or ray (private), ray:auto, ray:HOST:PORT
    anatomy: bool = True  # --no-anatomy: no per-op statements, pool wait, db and python times
    exemplars: int = 0  # --exemplars N: keep the N slowest ops per op type with their statements
    think_s: float = 0.0  # --think: pause per in-flight slot between an op's end and its next op's start
    think_dist: str = "fixed"  # "fixed", or "exp": exponentially distributed with mean think_s
    isolation: str | None = None  # --isolation: every worker session's default_transaction_isolation
    retries: int = 0  # --retries: re-runs of an op that failed with 40001 / 40P01
    scale: int | None = None  # --scale N: rows per table, by the workload's populate(conn, scale) or the generic filler
    keys: str = "uniform"  # --keys: how ops pick existing rows (workloads.keys), as written after parsing

    def __post_init__(self) -> None:
        # Local imports: the registries import SQLAlchemy's ORM, which Config's users load anyway.
        from runner.concurrency import MODES
        from workloads import LAYERS, WorkloadFileError, resolve

        self._apply_stages()
        if self.procs < 1 or self.procs > MAX_PROCS:
            raise UsageError(f"--procs must be between 1 and {MAX_PROCS}, got {self.procs}")
        if self.chunk < 1:
            raise UsageError(f"--chunk must be at least 1, got {self.chunk}")
        if self.duration_s is not None:
            if self.ops is not None:
                raise UsageError("--ops and --duration are exclusive: a run is bounded by one or the other")
            if self.duration_s <= 0:
                raise UsageError(f"--duration must be positive, got {self.duration_s}")
            if self.mode == "async":
                raise UsageError("--duration needs a mode that issues ops as it goes: chunked or sync")
        elif self.ops is None:
            object.__setattr__(self, "ops", DEFAULT_OPS)
        if self.warmup_ops < 0 or self.warmup_s < 0:
            raise UsageError("--warmup must not be negative")
        if self.ops is not None and self.ops < 1:
            raise UsageError(f"--ops must be at least 1, got {self.ops}")
        if self.ops is not None and self.ops < self.procs:
            raise UsageError(
                f"--ops {self.ops} is fewer than --procs {self.procs}: every worker needs an op"
            )
        if self.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {self.threads}")
        if not 0.0 <= self.read_ratio <= 1.0:
            raise UsageError(f"--read-ratio must be between 0 and 1, got {self.read_ratio}")
        if self.interval_s < MIN_INTERVAL_S:
            raise UsageError(f"--interval must be at least {MIN_INTERVAL_S} s (the connection sampler's period), got {self.interval_s}")
        if self.loop not in LOOPS:
            raise UsageError(f"unknown --loop {self.loop!r}: choose one of {', '.join(LOOPS)}")
        if self.pool_size is not None and self.pool_size < 1:
            raise UsageError(f"--pool-size must be at least 1, got {self.pool_size}")
        if self.max_overflow < 0:
            raise UsageError(f"--max-overflow must not be negative, got {self.max_overflow}")
        if self.pool_timeout_s <= 0:
            raise UsageError(f"--pool-timeout must be positive, got {self.pool_timeout_s}")
        if self.repeat < 1:
            raise UsageError(f"--repeat must be at least 1, got {self.repeat}")
        if self.grace_s < 0:
            raise UsageError(f"--grace must not be negative, got {self.grace_s}")
        if self.op_timeout_s is not None and self.op_timeout_s <= 0:
            raise UsageError(f"--op-timeout must be positive, got {self.op_timeout_s}")
        if self.max_errors is not None and self.max_errors < 1:
            raise UsageError(f"--max-errors must be at least 1, got {self.max_errors}")
        if self.max_error_ratio is not None and not 0 < self.max_error_ratio <= 1:
            raise UsageError(f"--max-errors as a share must be between 0% and 100%, got {self.max_error_ratio:.0%}")
        if self.rate_per_s is not None:
            if self.rate_per_s <= 0:
                raise UsageError(f"--rate must be positive, got {self.rate_per_s}")
            if self.mode not in ("chunked", "open"):  # chunked is the default: --rate replaces it
                raise UsageError("--rate runs its own open-loop schedule: leave --mode out (or --mode open)")
            object.__setattr__(self, "mode", "open")
        elif self.mode == "open":
            raise UsageError("--mode open needs --rate (ops/s across all workers)")
        elif self.max_inflight is not None:
            raise UsageError("--max-inflight caps the open loop: use it with --rate")
        if self.arrival not in ARRIVALS:
            raise UsageError(f"unknown --arrival {self.arrival!r}: choose one of {', '.join(ARRIVALS)}")
        if self.max_inflight is not None and self.max_inflight < 1:
            raise UsageError(f"--max-inflight must be at least 1, got {self.max_inflight}")
        if not CLUSTER.match(self.cluster):
            raise UsageError(f"unknown --cluster {self.cluster!r}: local, ray, ray:auto or ray:HOST:PORT")
        if self.max_client_connections is not None and self.max_client_connections < 1:
            raise UsageError(f"--max-client-connections must be at least 1, got {self.max_client_connections}")
        if self.exemplars < 0:
            raise UsageError(f"--exemplars must not be negative, got {self.exemplars}")
        if self.exemplars and (not self.anatomy or self.layer == "raw"):
            why = "--no-anatomy" if not self.anatomy else "--layer raw"
            raise UsageError(f"--exemplars needs the statements SQLAlchemy sends, which {why} does not see")
        if self.mode not in MODES:
            raise UsageError(f"unknown --mode {self.mode!r}: choose one of {', '.join(MODES)}")
        try:
            workload = resolve(self.workload)
        except WorkloadFileError as exc:
            raise UsageError(str(exc)) from None
        if self.layer not in LAYERS:
            raise UsageError(f"unknown --layer {self.layer!r}: choose one of {', '.join(LAYERS)}")
        if self.layer not in workload.layers():
            raise UsageError(f"workload {workload.name!r} has no {self.layer} layer (it has {', '.join(workload.layers())})")
        is_async = MODES[self.mode].is_async
        lacking = workload.lacking(self.layer, is_async)
        if lacking is not None:
            kind, other = ("async", "sync") if is_async else ("sync", "async")
            raise UsageError(
                f"op {lacking.name!r} of workload {workload.name!r} has no {kind} {self.layer} implementation: "
                f"--mode {self.mode} needs one (it has {other} only; "
                + ("run --mode sync)" if is_async else "run an async mode: chunked, window, open or async)")
            )
        drivers = ASYNC_DRIVERS if is_async else SYNC_DRIVERS
        if self.driver is not None and self.driver not in drivers:
            kind = "async" if is_async else "sync"
            raise UsageError(f"--driver {self.driver} does not run the {kind} modes: choose one of {', '.join(drivers)}")
        self._check_prepare()
        if self.isolation is not None and self.isolation not in ISOLATION:
            raise UsageError(f"unknown --isolation {self.isolation!r}: choose one of {', '.join(ISOLATION)}")
        if self.scale is not None and self.scale < 1:
            raise UsageError(f"--scale must be at least 1, got {self.scale}")
        if self.retries < 0:
            raise UsageError(f"--retries must not be negative, got {self.retries}")
        if self.think_s:
            if self.think_s < 0 or self.think_dist not in THINK_DISTRIBUTIONS:
                raise UsageError("--think takes a time (100ms) or exp:TIME")
            if self.mode not in ("chunked", "window", "sync"):
                raise UsageError(f"--think pauses a slot between its ops (chunked, window, sync); --mode {self.mode} has no slots to pause")
        from workloads.keys import KeySpec

        object.__setattr__(self, "keys", str(KeySpec.parse(self.keys)))  # one spelling in .config: zipf -> zipf:0.99
        if self.prometheus_port is not None:
            if not 1 <= self.prometheus_port <= 65535:
                raise UsageError(f"--prometheus-port must be between 1 and 65535, got {self.prometheus_port}")
            if importlib.util.find_spec("prometheus_client") is None:
                raise UsageError("--prometheus-port needs prometheus_client: pip install 'runner[prometheus]'")
        from runner.analysis.checks import parse_check

        for text in self.checks:  # parsed now: a bad expression ends the run before it starts
            parse_check(text, tuple(op.name for op in workload.ops))
        if self.dsn is not None:
            driver_args(self.dsn, "psycopg2")  # the parent's own connections
            driver_args(self.dsn, self.worker_driver)
        if self.seed is None:
            # A run is always reproducible: an unset seed is drawn once and reported.
            object.__setattr__(self, "seed", secrets.randbelow(2**31))

    @property
    def inflight_cap(self) -> int:
        """The open loop's bound on ops in flight per worker (0 for the closed modes)."""
        return (self.max_inflight or DEFAULT_MAX_INFLIGHT) if self.mode == "open" else 0

    @property
    def worker_driver(self) -> str:
        """--driver, or the mode's default: asyncpg for the async modes, psycopg2 for sync."""
        from runner.concurrency import MODES

        return self.driver or (ASYNC_DRIVERS if MODES[self.mode].is_async else SYNC_DRIVERS)[0]

    def _apply_stages(self) -> None:
        """--stages sets the length (their sum) and the load: the open loop at the highest rate
        (the workers follow the steps), or window mode as wide as the most ops in flight."""
        if not self.stages:
            return
        if self.stage_kind not in ("rate", "concurrency"):
            raise UsageError("--stages: say what the targets are (stage_kind rate or concurrency)")
        if self.duration_s is not None or self.ops is not None or self.rate_per_s is not None:
            raise UsageError("--stages sets the run's length and load itself: leave out --duration, --ops and --rate")
        from runner.concurrency.stages import total_s

        object.__setattr__(self, "duration_s", round(total_s(self.stages), 6))
        top = max(target for _, _, target in self.stages)
        if self.stage_kind == "rate":
            if self.mode not in ("chunked", "open"):
                raise UsageError("--stages with rates (100/s) runs the open loop: leave --mode out")
            object.__setattr__(self, "rate_per_s", top)
        else:
            if self.mode not in ("chunked", "window"):
                raise UsageError("--stages with ops in flight (30s:10) runs window mode: leave --mode out")
            object.__setattr__(self, "mode", "window")
            object.__setattr__(self, "chunk", int(top))

    def _check_prepare(self) -> None:
        """--prepare and --statement-cache say one thing: "never" is the cache off, and back."""
        if self.prepare not in PREPARE:
            raise UsageError(f"unknown --prepare {self.prepare!r}: choose one of {', '.join(PREPARE)}")
        if not self.statement_cache:
            if self.prepare == "always":
                raise UsageError("--prepare always and --statement-cache off contradict each other")
            object.__setattr__(self, "prepare", "never")
        elif self.prepare == "never":
            object.__setattr__(self, "statement_cache", False)
        if self.prepare == "always" and self.worker_driver == "psycopg2":
            raise UsageError("--prepare always: psycopg2 sends every statement as text and cannot prepare one; use --driver psycopg")

    @property
    def psycopg_prepare_threshold(self) -> int | None:
        return PSYCOPG_PREPARE_THRESHOLD[self.prepare]

    def to_report(self) -> dict[str, Any]:
        """Every option as reported in `.config`, with the DSN's password masked."""
        fields = dataclasses.asdict(self)
        fields["dsn"] = mask_dsn(self.dsn)
        return fields
