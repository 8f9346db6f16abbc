"""Options -> RunSpec: every rule that joins a run's options, in one pure function.

`resolve(options)` validates what was asked and decides what it leaves open: --stages set the
length and the load (the open loop at the highest rate, or window mode as wide as the most ops
in flight), --rate means the open loop, --prepare never and --statement-cache off are one
thing, the op count defaults to the seed experiment's, the key distribution gets one spelling,
and an unset seed is drawn (by `draw_seed`, so that resolving is a function of its arguments).
Resolving a RunSpec again gives the same RunSpec. The rules ask a mode what it can do
(runner.concurrency.Mode), never its name.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runner.config import (
    ARRIVALS,
    ASYNC_DRIVERS,
    CLUSTER,
    DEFAULT_OPS,
    ISOLATION,
    LOOPS,
    MAX_PROCS,
    MIN_INTERVAL_S,
    PREPARE,
    SYNC_DRIVERS,
    THINK_DISTRIBUTIONS,
)
from runner.dsn import driver_args
from runner.errors import UsageError
from runner.spec import Options, RunSpec, option_values, worker_driver

if TYPE_CHECKING:
    from workloads import Workload


def draw_seed() -> int:
    """A run is always reproducible: an unset seed is drawn once and reported."""
    return secrets.randbelow(2**31)


def resolve(options: Options, workload: Workload | None = None, draw: Callable[[], int] = draw_seed) -> RunSpec:
    """The RunSpec of these options, or UsageError naming the first rule they break. The workload
    is the one --workload names (loaded here, once per process, when not given)."""
    if isinstance(options, RunSpec):  # already resolved: the same decisions, the same seed
        seed = options.seed
        return _resolve(_options(options.asked or options), workload, draw if seed is None else lambda: seed)
    return _resolve(options, workload, draw)


def spec(**options: Any) -> RunSpec:
    """resolve(Options(**options)): a spec from keyword options, as tests and benches build one."""
    return resolve(Options(**options))


def _options(options: Options) -> Options:
    """A plain Options of any Options (a RunSpec's decided values included)."""
    return Options(**option_values(options))


def _resolve(options: Options, workload: Workload | None, draw: Callable[[], int]) -> RunSpec:
    from runner.concurrency import MODES

    decided = _load(_stages(options))
    _counts(decided)
    if decided.mode not in MODES:
        raise UsageError(f"unknown --mode {decided.mode!r}: choose one of {', '.join(MODES)}")
    workload = workload or _workload(decided.workload)
    try:
        workload = workload.only(decided.only)
    except LookupError as exc:
        raise UsageError(f"--only: {exc.args[0]}") from None
    _workload_fits(decided, workload)
    decided = _scale(decided, workload)
    decided = _prepare(decided)
    decided = _think_and_keys(decided)
    _services(decided, workload)
    if decided.seed is None:
        decided = dataclasses.replace(decided, seed=draw())
    return RunSpec(**option_values(decided), asked=_options(options))


def _stages(options: Options) -> Options:
    """--stages sets the length (their sum) and the load: the mode that follows the targets' kind,
    at the highest rate, or as wide as the most ops in flight."""
    if not options.stages:
        return options
    from runner.concurrency import DEFAULT_MODE, MODES
    from runner.concurrency.stages import total_s

    if options.stage_kind not in ("rate", "concurrency"):
        raise UsageError("--stages: say what the targets are (stage_kind rate or concurrency)")
    if options.duration_s is not None or options.ops is not None or options.rate_per_s is not None:
        raise UsageError("--stages sets the run's length and load itself: leave out --duration, --ops and --rate")
    asked = MODES.get(options.mode)
    # A sync mode's rates are the sync open loop's; otherwise the async modes' follower.
    is_async = asked is None or asked.is_async or options.stage_kind != "rate"
    follower = next(name for name, mode in MODES.items() if mode.stages == options.stage_kind and mode.is_async == is_async)
    if options.mode not in (DEFAULT_MODE, follower) and not (not is_async and asked is not None and asked.width == "threads"):
        example = "100/s" if options.stage_kind == "rate" else "30s:10"
        raise UsageError(f"--stages with {'rates' if options.stage_kind == 'rate' else 'ops in flight'} ({example}) runs {follower} mode: leave --mode out")
    top = max(target for _, _, target in options.stages)
    staged = dataclasses.replace(options, duration_s=round(total_s(options.stages), 6), mode=follower)
    if MODES[follower].takes_rate:
        return dataclasses.replace(staged, rate_per_s=top)
    return dataclasses.replace(staged, chunk=int(top))


def _load(options: Options) -> Options:
    """How long and how hard: --ops or --duration, --rate (the open loop) or a closed mode."""
    from runner.concurrency import DEFAULT_MODE, MODES, modes_where

    mode = MODES.get(options.mode)
    if options.duration_s is not None:
        if options.ops is not None:
            raise UsageError("--ops and --duration are exclusive: a run is bounded by one or the other")
        if options.duration_s <= 0:
            raise UsageError(f"--duration must be positive, got {options.duration_s}")
        if mode is not None and not mode.runs_for_duration:
            raise UsageError(f"--duration needs a mode that issues ops as it goes: {', '.join(modes_where(lambda m: m.runs_for_duration))}")
    elif options.ops is None:
        options = dataclasses.replace(options, ops=DEFAULT_OPS)
    # The open loop of the mode's kind: --mode sync --rate is the sync one (pgbench's -R, threads).
    sync_asked = mode is not None and not mode.is_async
    rate_mode = next(name for name, m in MODES.items() if m.takes_rate and m.is_async != sync_asked)
    if options.rate_per_s is not None:
        if options.rate_per_s <= 0:
            raise UsageError(f"--rate must be positive, got {options.rate_per_s}")
        if options.mode not in (DEFAULT_MODE, rate_mode) and not (mode is not None and mode.width == "threads"):
            raise UsageError(f"--rate runs its own open-loop schedule: leave --mode out (or --mode {rate_mode}), or --mode sync for the sync open loop")
        options = dataclasses.replace(options, mode=rate_mode)
    elif mode is not None and mode.takes_rate:
        raise UsageError(f"--mode {options.mode} needs --rate (ops/s across all workers)")
    elif options.max_inflight is not None:
        raise UsageError("--max-inflight caps the open loop: use it with --rate")
    return options


def _counts(o: Options) -> None:
    """Every number within its range, every name among its choices."""
    if o.procs < 1 or o.procs > MAX_PROCS:
        raise UsageError(f"--procs must be between 1 and {MAX_PROCS}, got {o.procs}")
    if o.chunk < 1:
        raise UsageError(f"--chunk must be at least 1, got {o.chunk}")
    if o.warmup_ops < 0 or o.warmup_s < 0:
        raise UsageError("--warmup must not be negative")
    if o.ops is not None and o.ops < 1:
        raise UsageError(f"--ops must be at least 1, got {o.ops}")
    if o.ops is not None and o.ops < o.procs:
        raise UsageError(f"--ops {o.ops} is fewer than --procs {o.procs}: every worker needs an op")
    if o.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {o.threads}")
    if not 0.0 <= o.read_ratio <= 1.0:
        raise UsageError(f"--read-ratio must be between 0 and 1, got {o.read_ratio}")
    if o.interval_s < MIN_INTERVAL_S:
        raise UsageError(f"--interval must be at least {MIN_INTERVAL_S} s (the connection sampler's period), got {o.interval_s}")
    if o.loop not in LOOPS:
        raise UsageError(f"unknown --loop {o.loop!r}: choose one of {', '.join(LOOPS)}")
    if o.pool_size is not None and o.pool_size < 1:
        raise UsageError(f"--pool-size must be at least 1, got {o.pool_size}")
    if o.max_overflow < 0:
        raise UsageError(f"--max-overflow must not be negative, got {o.max_overflow}")
    if o.pool_timeout_s <= 0:
        raise UsageError(f"--pool-timeout must be positive, got {o.pool_timeout_s}")
    if o.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {o.repeat}")
    if o.grace_s < 0:
        raise UsageError(f"--grace must not be negative, got {o.grace_s}")
    if o.op_timeout_s is not None and o.op_timeout_s <= 0:
        raise UsageError(f"--op-timeout must be positive, got {o.op_timeout_s}")
    if o.max_errors is not None and o.max_errors < 1:
        raise UsageError(f"--max-errors must be at least 1, got {o.max_errors}")
    if o.max_error_ratio is not None and not 0 < o.max_error_ratio <= 1:
        raise UsageError(f"--max-errors as a share must be between 0% and 100%, got {o.max_error_ratio:.0%}")
    if o.arrival not in ARRIVALS:
        raise UsageError(f"unknown --arrival {o.arrival!r}: choose one of {', '.join(ARRIVALS)}")
    if o.max_inflight is not None and o.max_inflight < 1:
        raise UsageError(f"--max-inflight must be at least 1, got {o.max_inflight}")
    if not CLUSTER.match(o.cluster):
        raise UsageError(f"unknown --cluster {o.cluster!r}: local, ray, ray:auto or ray:HOST:PORT")
    if o.max_client_connections is not None and o.max_client_connections < 1:
        raise UsageError(f"--max-client-connections must be at least 1, got {o.max_client_connections}")
    if o.exemplars < 0:
        raise UsageError(f"--exemplars must not be negative, got {o.exemplars}")
    if o.exemplars and (not o.anatomy or o.layer == "raw"):
        why = "--no-anatomy" if not o.anatomy else "--layer raw"
        raise UsageError(f"--exemplars needs the statements SQLAlchemy sends, which {why} does not see")
    if o.isolation is not None and o.isolation not in ISOLATION:
        raise UsageError(f"unknown --isolation {o.isolation!r}: choose one of {', '.join(ISOLATION)}")
    if o.scale is not None and o.scale < 1:
        raise UsageError(f"--scale must be at least 1, got {o.scale}")
    if o.prometheus_linger_s < 0 or (o.prometheus_linger_s and o.prometheus_port is None):
        raise UsageError(f"--prometheus-linger {o.prometheus_linger_s:g}: needs --prometheus-port, and a number of seconds of at least 0")
    if o.retries < 0:
        raise UsageError(f"--retries must not be negative, got {o.retries}")


def _workload(name: str) -> Workload:
    from workloads import WorkloadFileError
    from workloads import resolve as load

    try:
        return load(name)
    except WorkloadFileError as exc:
        raise UsageError(str(exc)) from None


def _scale(o: Options, workload: Workload) -> Options:
    """--scale given only as tables' rows: the unit they imply (the first one's rows over its proportion)."""
    from runner.load.rows import table_rows

    if not o.scale_tables:
        return o
    unit, _ = table_rows(workload, o.scale, o.scale_tables)
    return dataclasses.replace(o, scale=unit)


def _workload_fits(o: Options, workload: Workload) -> None:
    """The layer exists, every op runs in the mode's kind (sync or async), the driver too."""
    from runner.concurrency import MODES, modes_where
    from workloads import LAYERS

    if o.layer not in LAYERS:
        raise UsageError(f"unknown --layer {o.layer!r}: choose one of {', '.join(LAYERS)}")
    if o.layer not in workload.layers():
        raise UsageError(f"workload {workload.name!r} has no {o.layer} layer (it has {', '.join(workload.layers())})")
    is_async = MODES[o.mode].is_async
    lacking = workload.lacking(o.layer, is_async)
    if lacking is not None:
        kind, other = ("async", "sync") if is_async else ("sync", "async")
        instead = modes_where(lambda m: m.is_async != is_async)
        raise UsageError(
            f"op {lacking.name!r} of workload {workload.name!r} has no {kind} {o.layer} implementation: "
            f"--mode {o.mode} needs one (it has {other} only; "
            + (f"run --mode {instead[0]})" if len(instead) == 1 else f"run an {other} mode: {', '.join(instead)})")
        )
    drivers = ASYNC_DRIVERS if is_async else SYNC_DRIVERS
    if o.driver is not None and o.driver not in drivers:
        kind = "async" if is_async else "sync"
        raise UsageError(f"--driver {o.driver} does not run the {kind} modes: choose one of {', '.join(drivers)}")
    if MODES[o.mode].patched:
        _gevent(o)


def _gevent(o: Options) -> None:
    """--mode gevent: its libraries, psycopg2 (which psycogreen makes cooperative), this machine."""
    if importlib.util.find_spec("gevent") is None or importlib.util.find_spec("psycogreen") is None:
        raise UsageError("--mode gevent needs gevent and psycogreen: pip install 'runner[gevent]'")
    if o.driver not in (None, "psycopg2"):
        raise UsageError(f"--mode gevent runs psycopg2, made cooperative by psycogreen; --driver {o.driver} would block every greenlet on each query")
    if o.cluster != "local":
        raise UsageError("--mode gevent runs on local worker processes (--cluster local): a Ray actor cannot be gevent-patched before it starts")


def _prepare(o: Options) -> Options:
    """--prepare and --statement-cache say one thing: "never" is the cache off, and back."""
    if o.prepare not in PREPARE:
        raise UsageError(f"unknown --prepare {o.prepare!r}: choose one of {', '.join(PREPARE)}")
    if not o.statement_cache:
        if o.prepare == "always":
            raise UsageError("--prepare always and --statement-cache off contradict each other")
        o = dataclasses.replace(o, prepare="never")
    elif o.prepare == "never":
        o = dataclasses.replace(o, statement_cache=False)
    if o.prepare == "always" and worker_driver(o) == "psycopg2":
        raise UsageError("--prepare always: psycopg2 sends every statement as text and cannot prepare one; use --driver psycopg")
    return o


def _think_and_keys(o: Options) -> Options:
    from runner.concurrency import MODES, modes_where
    from workloads.keys import KeySpec

    if o.think_s:
        if o.think_s < 0 or o.think_dist not in THINK_DISTRIBUTIONS:
            raise UsageError("--think takes a time (100ms) or exp:TIME")
        if MODES[o.mode].width is None:
            laned = ", ".join(modes_where(lambda m: m.width is not None))
            raise UsageError(f"--think pauses a lane between its ops ({laned}); --mode {o.mode} has no lanes to pause")
    return dataclasses.replace(o, keys=str(KeySpec.parse(o.keys)))  # one spelling in .config: zipf -> zipf:0.99


def _baselines(o: Options, ops: tuple[str, ...]) -> None:
    """--save-baseline, --baseline and --fail-if, before the run: a name the store cannot hold, a
    baseline that is not there, or a timing rule neither side can judge is one line now, not after
    the run was measured."""
    from runner.analysis.baselines import Store, check_name
    from runner.analysis.compare import parse_fail_if
    from runner.result import is_count

    if o.save_baseline is not None:
        check_name(o.save_baseline, "--save-baseline")
    rules = [parse_fail_if(text) for text in o.fail_if]
    for rule in rules:
        op, _, rest = rule.figure.partition(".")
        if rest and op != "*" and op not in ops:
            raise UsageError(f"--fail-if {rule.text!r}: the workload has no op {op!r} (its ops: {', '.join(ops)})")
        if is_count(rule.figure) and not o.anatomy:
            raise UsageError(f"--fail-if {rule.text!r}: a count per op is measured by the anatomy, which --no-anatomy turns off")
    if o.baseline is None:
        if rules:
            raise UsageError("--fail-if judges this run against a stored one: give --baseline NAME (saved by an earlier --save-baseline)")
        return
    baseline = Store.at(o.baseline_dir).load(check_name(o.baseline, "--baseline"))
    timing = [rule.text for rule in rules if not is_count(rule.figure)]
    if timing and (o.repeat < 2 or baseline.result.runs < 2):
        runs = f"this run has --repeat {o.repeat}, baseline {o.baseline!r} {baseline.result.runs} run(s)"
        raise UsageError(
            f"--fail-if {timing[0]!r}: a timing is judged beyond the runs' spread, so both sides need --repeat 2 or more ({runs}); "
            "counts such as '*.statements_per_op > +0' need none"
        )


def _services(o: Options, workload: Workload) -> None:
    """What the run needs beyond itself: the metrics endpoint, the checks' ops, the DSN's form."""
    if o.prometheus_port is not None:
        if not 1 <= o.prometheus_port <= 65535:
            raise UsageError(f"--prometheus-port must be between 1 and 65535, got {o.prometheus_port}")
        if importlib.util.find_spec("prometheus_client") is None:
            raise UsageError("--prometheus-port needs prometheus_client: pip install 'runner[prometheus]'")
    from runner.analysis.checks import parse_check

    for text in o.checks:  # parsed now: a bad expression ends the run before it starts
        parse_check(text, tuple(op.name for op in workload.ops))
    _baselines(o, tuple(op.name for op in workload.ops))
    if o.keep_load and o.dsn is None:
        raise UsageError("--keep-load keeps the load on a server that outlives the run: give --dsn (the embedded server ends with the run)")
    if o.keep_load and (o.scale or workload.default_scale) is None:
        raise UsageError("--keep-load keeps a load: give --scale (the workload has no default scale)")
    if o.dsn is not None:
        driver_args(o.dsn, "psycopg2")  # the parent's own connections
        driver_args(o.dsn, worker_driver(o))
