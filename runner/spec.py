"""What a run is: the options as asked (Options), and as resolved (RunSpec).

Options is a record of what was typed, with the CLI's defaults and no rules applied: building one
has no side effects. runner.resolve joins options into a RunSpec (stages set the length and the
load, a rate means the open loop, prepare and the statement cache agree, the seed is drawn): the
decided values, with what was asked beside them. A RunSpec is what crosses the wire to a worker,
and `.config` in the result document. Change one with RunSpec.replace, which resolves again from
what was asked: a rate can be replaced back to a closed mode, a staged spec stays valid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runner.config import ASYNC_DRIVERS, DEFAULT_MAX_INFLIGHT, DEFAULT_MODE, PSYCOPG_PREPARE_THRESHOLD, SYNC_DRIVERS
from runner.dsn import mask_dsn

if TYPE_CHECKING:
    from workloads import Workload


@dataclass(frozen=True)
class Options:
    """Every option of a run, as asked. Names and numbers only, so it crosses a process boundary untouched."""

    procs: int = 1
    chunk: int = 40
    ops: int | None = None  # None: DEFAULT_OPS, unless --duration bounds the run instead
    mode: str = DEFAULT_MODE
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
    save_baseline: str | None = None  # --save-baseline NAME: the document kept in the store (runner.analysis.baselines)
    baseline: str | None = None  # --baseline NAME: compared with this stored run after the run
    fail_if: tuple[str, ...] = ()  # --fail-if EXPR against --baseline, repeatable (runner.analysis.compare)
    baseline_dir: str | None = None  # --baseline-dir: the store (None: $RUNNER_BASELINE_DIR or .runner/baselines)
    prometheus_port: int | None = None  # --prometheus-port: serve live metrics on 127.0.0.1
    prometheus_linger_s: float = 0.0  # --prometheus-linger: keep serving this long after the run
    prepare: str = "auto"  # --prepare auto|never|always: server-side prepared statements where the driver allows
    max_client_connections: int | None = None  # the preflight's budget instead of the server's (a pooler)
    cluster: str = "local"  # local processes, or ray (private), ray:auto, ray:HOST:PORT
    anatomy: bool = True  # --no-anatomy: no per-op statements, pool wait, db and python times
    exemplars: int = 0  # --exemplars N: keep the N slowest ops per op type with their statements
    think_s: float = 0.0  # --think: pause per lane (an op in flight) between an op's end and its next op's start
    think_dist: str = "fixed"  # "fixed", or "exp": exponentially distributed with mean think_s
    isolation: str | None = None  # --isolation: every worker session's default_transaction_isolation
    retries: int = 0  # --retries: re-runs of an op that failed with 40001 / 40P01
    scale: int | None = None  # --scale N: the unit of rows per table (times each table's proportion), by populate(conn, scale) or the generic filler
    scale_tables: tuple[tuple[str, int], ...] = ()  # --scale table=rows: a table's rows as given
    analyze: bool = True  # --no-analyze: no VACUUM ANALYZE after the load
    keep_load: bool = False  # --keep-load: the loaded template database stays for later runs (runner.load.reuse)
    keys: str = "uniform"  # --keys: how ops pick existing rows (workloads.keys), as written after parsing
    only: tuple[str, ...] = ()  # --only: the workload's ops that run (Locust's --tags); () all of them


@dataclass(frozen=True)
class RunSpec(Options):
    """The options with every rule that joins them applied (runner.resolve.resolve): what runs."""

    asked: Options | None = field(default=None, compare=False, repr=False)  # before the rules

    @property
    def inflight_cap(self) -> int:
        """The open loop's bound on ops in flight per worker (0 for the closed modes)."""
        from runner.concurrency import MODES

        return (self.max_inflight or DEFAULT_MAX_INFLIGHT) if MODES[self.mode].takes_rate else 0

    @property
    def worker_driver(self) -> str:
        """--driver, or the mode's default: asyncpg for the async modes, psycopg2 for sync."""
        return worker_driver(self)

    @property
    def psycopg_prepare_threshold(self) -> int | None:
        return PSYCOPG_PREPARE_THRESHOLD[self.prepare]

    def replace(self, **changes: Any) -> RunSpec:
        """This spec with options changed, resolved again from what was asked (the drawn seed kept
        unless `seed` is among the changes)."""
        from runner.resolve import resolve

        asked = dataclasses.replace(self.asked or self, **{"seed": self.seed, **changes})
        return resolve(asked)

    @property
    def workload_ops(self) -> Workload:
        """--workload with only --only's ops: what the run runs."""
        from workloads import resolve

        return resolve(self.workload).only(self.only)

    def to_report(self) -> dict[str, Any]:
        """Every option as reported in `.config`, with the DSN's password masked."""
        fields = option_values(self)
        fields["dsn"] = mask_dsn(self.dsn)
        return fields


def option_values(options: Options) -> dict[str, Any]:
    """Every option's value by name, of any Options (a RunSpec's decided ones without `asked`)."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(Options)}


def worker_driver(options: Options) -> str:
    """--driver, or the mode's default: asyncpg for the async modes, psycopg2 for sync."""
    from runner.concurrency import MODES

    return options.driver or (ASYNC_DRIVERS if MODES[options.mode].is_async else SYNC_DRIVERS)[0]
