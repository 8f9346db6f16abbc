"""One run from RunSpec to report: server, schema lock, setup, workers, collector, report."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from runner import lost_interrupt
from runner.analysis.checks import parse_check
from runner.analysis.repeat import combine
from runner.analysis.report import build
from runner.concurrency.stages import boundaries
from runner.errors import DatabaseError, ExitCode, UsageError
from runner.live import Live
from runner.load.fill import Loaded, TableLoad, fill, vacuum_analyze
from runner.load.reuse import Clones, load_key
from runner.load.rows import table_rows
from runner.measure.collector import Collector
from runner.measure.exporter import Exporter
from runner.output import ResultStream
from runner.result import Result
from runner.server.control import (
    cancel_statements,
    check_session_settings,
    connect,
    connections_in_use,
    control_engine,
    count_rows,
    describe_server,
    prepare_schema,
)
from runner.server.embedded import EmbeddedServer, start_embedded
from runner.server.lock import SchemaLock
from runner.server.sampler import ConnectionSampler
from runner.server.stats import ServerProbe
from runner.spec import RunSpec
from runner.stoppable import stop, stoppable
from runner.transport import Transport
from runner.transport.cluster import Cluster, open_cluster
from runner.transport.plan import make_plans, op_shares, worker_session_settings
from runner.transport.pools import PoolPlan, connection_budget, plan_pools
from runner.transport.supervisor import Supervisor
from runner.worker.engine import POOLER_HINT, PREPARED_STATEMENT_ERRORS
from workloads import SCHEMA, Workload, resolve

INTERRUPT_EXIT = {signal.SIGINT: ExitCode.INTERRUPTED, signal.SIGTERM: ExitCode.TERMINATED}
SETUP_POLL_S = 0.1
SETUP_STOP_S = 1.0  # after a signal, setup gets this long to stop before the run ends without it
T = TypeVar("T")

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """A signal arrived before any worker was measuring: nothing to report."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.exit_code = INTERRUPT_EXIT[signal.Signals(signum)]


@dataclass
class Outcome:
    report: dict[str, Any]
    exit_code: ExitCode


@dataclass
class Signals:
    """SIGINT and SIGTERM, as received: the handler only records them; the run decides."""

    received: list[int] = field(default_factory=list)

    def handle(self, signum: int, frame: object) -> None:
        self.received.append(signum)

    def check(self) -> None:
        """Raise Interrupted if a signal came: between setup steps, and before workers start."""
        if self.received:
            raise Interrupted(self.received[0])


@contextmanager
def _signals() -> Iterator[Signals]:
    signals = Signals()
    previous = {s: signal.signal(s, signals.handle) for s in INTERRUPT_EXIT}
    if lost_interrupt.take():  # a Ctrl-C before these handlers that Python had to drop
        signals.received.append(signal.SIGINT)
    try:
        yield signals
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interruptible(signals: Signals, step: Callable[[], T]) -> T:
    """Run a setup step on a thread while this (main) thread watches for a signal.

    A statement blocked in the driver (a lock wait, say) would hold the main thread in C code,
    where no Python signal handler runs. So setup runs elsewhere; on a signal its statements
    are cancelled on the server, and a step busy in its stoppable Python (a populate's loop, the
    filler's rows: runner.stoppable) is stopped there, within SETUP_STOP_S whatever it does then
    (the thread is a daemon; the process ends without it). The run ends before any worker starts.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = step()
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="setup", daemon=True)
    thread.start()
    cancelled, stopped_at = False, None
    while thread.is_alive():
        thread.join(SETUP_POLL_S)
        if signals.received and not cancelled:
            cancelled = True
            cancel_statements()
        if cancelled and stopped_at is None and stop(thread):
            stopped_at = time.monotonic()
        if stopped_at is not None and time.monotonic() - stopped_at > SETUP_STOP_S:
            break  # still in C code: the run ends without it
    signals.check()  # a signal outranks the error the cancelled statement raised
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


MIN_OPS_FOR_RATIO = 100  # a share of errors means little before this many ops finished


def error_budget_spent(config: RunSpec, collector: Collector) -> str | None:
    """The --max-errors stop reason, once the run has failed that often."""
    errors = sum(t.error_count for t in collector.by_op.values())
    finished = errors + sum(t.ok for t in collector.by_op.values())
    if config.max_errors is not None and errors >= config.max_errors:
        return f"--max-errors reached: {errors} failed ops"
    if config.max_error_ratio is not None and finished >= MIN_OPS_FOR_RATIO and errors / finished >= config.max_error_ratio:
        return f"--max-errors reached: {errors} of {finished} ops failed ({errors / finished:.1%})"
    return None


def _exporter(config: RunSpec, collector: Collector, sampler: ConnectionSampler) -> Exporter | None:
    """--prometheus-port: live metrics for the length of one measured run."""
    if config.prometheus_port is None:
        return None

    def gauges() -> dict[str, float]:
        latest = collector.timeline[max(collector.timeline)] if collector.timeline else None
        samples = sampler.samples
        return {
            "pool_checked_out": float(latest.pool_checked_out if latest else 0),
            "server_connections": float(samples[-1].total if samples else 0),
            "workers_running": float(sum(not w.finished for w in collector.workers)),
        }

    exporter = Exporter(config.prometheus_port, gauges, {"workload": config.workload, "mode": config.mode, "procs": str(config.procs)})
    collector.observer = exporter.observe
    return exporter


def _exit_code(doc: dict[str, Any], signal_exit: ExitCode | None) -> ExitCode:
    if signal_exit is not None:
        return signal_exit
    if not doc["complete"]:
        return ExitCode.INCOMPLETE
    baseline = doc.get("baseline") or {}
    if baseline.get("error") or any(rule["fail"] for rule in baseline.get("fail_if", [])):
        return ExitCode.CHECKS
    if doc["checks"] is not None:  # with --check, the checks judge the run (errors too: `errors == 0`)
        return ExitCode.CHECKS if any(not c["pass"] for c in doc["checks"]) else ExitCode.OK
    if doc["totals"]["errors"]:
        return ExitCode.OP_ERRORS
    return ExitCode.OK


def judged(config: RunSpec, docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The document of the whole run, made from its runs' (each as report.build wrote it): the
    one run's, or with --repeat the median run's with every run's figures (`.repeat`); incomplete
    when fewer runs ran than were asked; `.checks`, every --check against it."""
    doc = docs[0] if config.repeat == 1 else combine(docs)
    if len(docs) < config.repeat and doc["complete"]:
        doc = {**doc, "complete": False, "stop_reason": f"{len(docs)} of {config.repeat} repeats ran"}
    if config.checks:
        ops = tuple(op.name for op in config.workload_ops.ops)
        doc = {**doc, "checks": [parse_check(text, ops).evaluate(doc) for text in config.checks]}
    if config.baseline is not None:
        doc = {**doc, "baseline": against_baseline(config, doc)}
    return doc


def against_baseline(config: RunSpec, doc: dict[str, Any]) -> dict[str, Any]:
    """`.baseline`: this run compared with the stored one, row by row, and each --fail-if judged
    (a count on its own, a timing beyond both sides' spread, as `runner compare` judges them)."""
    from runner.analysis.baselines import Store
    from runner.analysis.compare import compare, fail_ifs, mismatch

    assert config.baseline is not None
    store = Store.at(config.baseline_dir)
    try:  # read again: it was read at start-up, but the run is measured now and must not be lost
        baseline = store.load(config.baseline)
        this = Result(doc, "this run")
        warnings = mismatch(baseline.result, this)
        rows = compare(baseline.result, this)
        judged = fail_ifs(config.fail_if, rows, baseline.result, this)
    except UsageError as exc:  # e.g. the baseline ran other ops: a gate that cannot judge fails
        return {"name": config.baseline, "file": str(store.path(config.baseline)), "warnings": [], "rows": [], "fail_if": [], "error": str(exc)}
    section = baseline.section(rows, judged)
    return {**section, "warnings": section["warnings"] + warnings}


@dataclass
class Bench:
    """One server, one schema lock, one set of signal handlers: several measured runs on them
    (--repeat's runs, or the capacity search's steps)."""

    dsn: str
    embedded: EmbeddedServer | None
    signals: Signals
    cluster: Cluster
    stream: ResultStream | None
    lock: SchemaLock
    clones: Clones | None = None  # one load, a clone of it per run (runner.load.reuse)
    reload_reason: str | None = None  # why each run loads again although several share one load

    def measure(self, config: RunSpec) -> dict[str, Any]:
        """One measured run of `config` (same server and workload as the bench was opened for)."""
        dsn, data = self.dsn, None
        if self.clones is not None and loads(config):
            dsn, data = _interruptible(self.signals, lambda: _cloned(config, self.clones))  # type: ignore[arg-type]
        doc = _measure(config, dsn, self.embedded, self.signals, self.stream, self.cluster.transport(), self.lock, data)
        if self.reload_reason is not None and doc.get("load") is not None:
            doc["load"]["reload_reason"] = self.reload_reason
        return doc

    def signal_exit(self) -> ExitCode | None:
        return INTERRUPT_EXIT[signal.Signals(self.signals.received[0])] if self.signals.received else None


@contextmanager
def bench(config: RunSpec, stream: ResultStream | None = None, reuse: bool = False) -> Iterator[Bench]:
    """The server (embedded unless --dsn), the schema lock and the cluster, for as long as the
    block runs; everything is released and removed however it ends. `reuse`: the block measures
    several runs (or --keep-load keeps the load for later ones), so a load is made once in a
    template database and cloned for each run (runner.load.reuse)."""
    # Before the run's own signal handlers: ray.init replaces the driver's SIGTERM handler.
    cluster = open_cluster(config)
    try:
        with _signals() as signals:
            embedded: EmbeddedServer | None = None
            lock: SchemaLock | None = None
            clones: Clones | None = None
            try:

                def open_server() -> str:
                    nonlocal embedded, lock
                    if config.dsn is None:
                        embedded = start_embedded(dict(config.pg_settings))
                    dsn = config.dsn or embedded.dsn  # type: ignore[union-attr]
                    lock = SchemaLock(dsn, SCHEMA, config.wait_for_lock)
                    return dsn

                dsn = _interruptible(signals, open_server)
                assert lock is not None
                opened = Bench(dsn, embedded, signals, cluster, stream, lock)
                clones = _interruptible(signals, lambda: _clones(config, dsn, reuse))
                if clones is not None and not clones.template and not (reuse or config.keep_load):
                    clones = None
                opened.clones, opened.reload_reason = (None, clones.refused) if clones is not None and clones.refused else (clones, None)
                yield opened
            finally:
                if clones is not None:
                    _close_clones(clones, config.keep_load)
                if lock is not None:
                    lock.release()
                if embedded is not None:
                    embedded.stop()
    finally:
        cluster.close()


def _clones(config: RunSpec, dsn: str, reuse: bool) -> Clones | None:
    """The template database's handle when the runs can share a load: several runs (`reuse`),
    --keep-load, or a run alone on a --dsn server that an earlier --keep-load left a load of these
    tables on (it clones that, and drops it unless it keeps it too); None otherwise."""
    if not loads(config) or not (reuse or config.keep_load or config.dsn is not None):
        return None
    clones = Clones(dsn)
    if reuse or config.keep_load:
        clones.refused = clones.allowed()
    else:
        clones.kept_template(_load_key(config))
    return clones


def _load_key(config: RunSpec) -> str:
    workload = resolve(config.workload)
    scale = config.scale or workload.default_scale
    assert scale is not None
    return load_key(workload, scale, config.scale_tables, config.analyze, str(_source(config, workload)))


def _close_clones(clones: Clones, keep_template: bool) -> None:
    """The template dropped (unless kept); a server gone by now leaves nothing to drop, and must
    not hide why the block ended."""
    try:
        clones.close(keep_template)
    except (DBAPIError, DatabaseError) as exc:
        log.debug("the load's template was not dropped: %s", exc)


def run(config: RunSpec, stream: ResultStream | None = None) -> Outcome:
    """--repeat runs of one configuration on one server, each on freshly created tables (a clone
    of one load, when there is a load)."""
    docs: list[dict[str, Any]] = []
    with bench(config, stream, reuse=config.repeat > 1) as opened:
        for _ in range(config.repeat):
            try:
                docs.append(opened.measure(config))
            except Interrupted:
                if not docs:
                    raise
                break  # between repeats: report the runs that finished
            if opened.signals.received or not docs[-1]["complete"]:
                break
    doc = judged(config, docs)
    return Outcome(doc, _exit_code(doc, opened.signal_exit()))


@dataclass
class _Setup:
    server: dict[str, Any]
    pools: PoolPlan
    populated: dict[str, int]
    session_settings: dict[str, str]  # what every worker session is given
    expected_settings: dict[str, str]  # the same, as the server spells them (1 -> 1ms)
    load: dict[str, Any] | None  # `.load`: what --scale (or a default scale) put in the tables


@dataclass(frozen=True)
class _Data:
    """The workload's tables as a run starts on them: rows per table, and `.load`."""

    populated: dict[str, int]
    load: dict[str, Any] | None


def _setup(config: RunSpec, dsn: str, embedded: EmbeddedServer | None, data: _Data | None = None) -> _Setup:
    """Describe the server, plan the pools; create and fill the workload's tables, unless `data`
    says they are there already (a clone of the loaded template)."""
    session_settings = worker_session_settings(config, dsn, embedded is not None)
    with connect(control_engine(dsn), dsn) as conn:
        expected = check_session_settings(conn, session_settings)
        server = describe_server(conn, tuple(name for name, _ in config.pg_settings))
        server["embedded"] = embedded is not None
        budget = config.max_client_connections or connection_budget(server, connections_in_use(conn))
        pools = plan_pools(config, budget)
    data = data or _load(config, dsn)
    return _Setup(server, pools, data.populated, session_settings, expected, data.load)


def _source(config: RunSpec, workload: Workload) -> str | None:
    """Who loads the run's data: the generic filler, the workload's `populate(conn, scale)`, or
    nobody (no --scale and no default scale, or a populate without a scale: a fixed small set)."""
    scale = config.scale or workload.default_scale
    if scale is None:
        return None
    if workload.populate_takes_scale:
        return "workload"
    # The generic filler, unless the workload fills its own tables (without --scale).
    return "generic" if workload.populate is None or config.scale is not None else None


def loads(config: RunSpec) -> bool:
    """Whether the run loads data at a scale: what a clone of one load can serve."""
    return _source(config, resolve(config.workload)) is not None


def _load(config: RunSpec, dsn: str) -> _Data:
    """The runner's schema made again with the workload's tables, filled by its populate or the
    generic filler (--scale), then analyzed."""
    workload = resolve(config.workload)
    scale = config.scale or workload.default_scale
    generic = _source(config, workload) == "generic"
    started = time.monotonic()
    with connect(control_engine(dsn), dsn) as conn:
        populated = prepare_schema(conn, workload, scale, populate=not generic)
    if generic:
        assert scale is not None
        _, rows = table_rows(workload, scale, config.scale_tables)
        with stoppable():  # the filler's rows: Python a statement cancel does not stop
            loaded = fill(control_engine(dsn, "load", "psycopg"), workload, rows, None if config.quiet else _load_progress, config.analyze)
        populated = {name: t.rows for name, t in loaded.tables.items()}
        _check_loaded(dsn, workload, populated)
        return _Data(populated, load_section(scale, "generic", loaded))
    if scale is not None and workload.populate_takes_scale:
        seconds = time.monotonic() - started
        analyze_s = vacuum_analyze(control_engine(dsn, "load", "psycopg"), workload) if config.analyze else None
        loaded = Loaded({name: TableLoad(rows, 0.0) for name, rows in populated.items()}, {}, seconds, None, analyze_s)
        return _Data(populated, load_section(scale, "workload", loaded))
    return _Data(populated, None)


def _cloned(config: RunSpec, clones: Clones) -> tuple[str, _Data]:
    """The run's own copy of the loaded tables: the template loaded first if this is the first
    run of this load (or its key changed), else found kept by an earlier process; its DSN and data."""
    key = _load_key(config)
    template = clones.template if clones.template is not None and clones.template.key == key else clones.kept_template(key)
    reused = template is not None
    if template is None:
        template = clones.new_template(key)
        made = _load(config, template.dsn)
        clones.keep_result(made.populated, made.load)
    populated, load = clones.loaded()
    dsn, seconds = clones.clone()
    clone = {"database": clones.run_name, "seconds": round(seconds, 3), "reused": reused, "kept": template.kept}
    if reused and not config.quiet:
        sys.stderr.write(f"runner: the load reused: {clones.run_name} cloned from {clones.template_name} in {seconds:.2f} s\n")
    return dsn, _Data(populated, {**load, "clone": clone, "reload_reason": None})


def _count(dsn: str, workload: Workload) -> dict[str, int]:
    with connect(control_engine(dsn), dsn) as conn:
        return count_rows(conn, workload)


def _check_loaded(dsn: str, workload: Workload, loaded: dict[str, int]) -> None:
    """The tables hold what the load says it put there, before any worker starts: a load that was
    never committed would otherwise be measured as an empty table, and blamed on another client."""
    counted = _count(dsn, workload)
    short = {table: (counted.get(table, 0), rows) for table, rows in loaded.items() if counted.get(table, 0) != rows}
    if short:
        raise DatabaseError("--scale: the load did not arrive: " + ", ".join(f"{t} holds {have:,} rows of {want:,}" for t, (have, want) in short.items()))


def _load_progress(table: str, done: int, wanted: int) -> None:
    sys.stderr.write(f"runner: loading {table}: {done:,} of {wanted:,} rows\n")
    sys.stderr.flush()


def load_section(scale: int, source: str, loaded: Loaded) -> dict[str, Any]:
    """`.load`: rows and seconds per table (the filler times each; a workload's populate only as a
    whole, with its tables' seconds 0), the whole load's time and rate, the children per parent
    each foreign key got, and the VACUUM ANALYZE after it."""
    rows = sum(t.rows for t in loaded.tables.values())
    return {
        "scale": scale,
        "source": source,
        "tables": {name: {"rows": t.rows, "seconds": round(t.seconds, 3)} for name, t in loaded.tables.items()},
        "rows": rows,
        "seconds": round(loaded.seconds, 3),
        "rows_per_s": round(rows / loaded.seconds, 1) if loaded.seconds > 0 else None,
        "keys_s": None if loaded.keys_s is None else round(loaded.keys_s, 3),
        "fanout": {name: f.as_json() for name, f in loaded.fanout.items()},
        "analyze_s": None if loaded.analyze_s is None else round(loaded.analyze_s, 3),
        "clone": None,  # set by runner.load.reuse's clone of a loaded template
        "reload_reason": None,
    }


def settings_not_applied(expected: dict[str, str], collector: Collector) -> str | None:
    """Why the run must not start: a session setting the workers' own connections do not have
    (a pooler that drops startup parameters, say); None when every worker has every one."""
    for worker in collector.workers:
        for name, value in expected.items():
            seen = worker.settings.get(name)
            if seen != value:
                return (
                    f"setting {name}={value} did not reach worker {worker.worker_id}'s session (it has {seen!r}): "
                    "a pooler that drops startup parameters? Refusing to report numbers measured without it"
                )
    return None


def prepared_statements_failing(config: RunSpec, collector: Collector) -> str | None:
    """Stop at once when ops fail the way they do behind a transaction pooler, and say the fix."""
    failing = [name for t in collector.by_op.values() for name in t.errors if name in PREPARED_STATEMENT_ERRORS]
    if not failing or not config.statement_cache:
        return None
    return f"prepared statements fail ({failing[0]}): {POOLER_HINT}"


def _rows_after(dsn: str, workload: Workload) -> tuple[dict[str, int] | None, str | None]:
    """The workload's tables' rows after the run; None and the reason when they cannot be counted
    (a table or the schema dropped, or the server gone, during the run): what was measured is
    still reported, marked incomplete."""
    try:
        return _count(dsn, workload), None
    except (DBAPIError, DatabaseError) as exc:
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()
        return None, f"the rows could not be counted after the run ({detail[0] if detail else type(exc).__name__}): was the schema changed during it?"


def _measure(
    config: RunSpec,
    dsn: str,
    embedded: EmbeddedServer | None,
    signals: Signals,
    stream: ResultStream | None,
    transport: Transport,
    lock: SchemaLock,
    data: _Data | None = None,
) -> dict[str, Any]:
    """One measured run: setup, workers, collector, the server's side, the report document."""
    workload = resolve(config.workload)
    setup = _interruptible(signals, lambda: _setup(config, dsn, embedded, data))
    signals.check()  # no worker starts once a stop was asked for
    collector = Collector(op_shares(config), config.interval_s, boundaries(config.stages) if config.stages else None)
    supervisor = Supervisor(transport, make_plans(config, dsn, setup.pools.sizes, setup.session_settings, setup.populated), collector, config.grace_s)
    sampler = ConnectionSampler(control_engine(dsn, "sampler"))
    probe = ServerProbe(control_engine(dsn, "stats"), SCHEMA, embedded.postmaster_pid() if embedded else None)
    live = Live(config, collector, sampler, stream)
    seen_signals = 0

    def on_tick() -> None:
        nonlocal seen_signals
        for signum in signals.received[seen_signals:]:
            if seen_signals and signum == signal.SIGINT:
                supervisor.kill_all()  # a second Ctrl-C: no more grace
            supervisor.request_stop(f"interrupted by {signal.Signals(signum).name}")
            seen_signals += 1
        live.tick()
        if stream is not None and stream.error is not None:
            supervisor.request_stop(f"{stream.error}: stopped early so the results reach --output and stderr")
        for check in (error_budget_spent, prepared_statements_failing):
            if (reason := check(config, collector)) is not None:
                supervisor.request_stop(reason)
        if (lost := lock.check()) is not None:
            supervisor.request_stop(lost)

    def on_go() -> str | None:
        if (veto := settings_not_applied(setup.expected_settings, collector)) is not None:
            return veto
        probe.begin()
        return None

    supervisor.on_go = on_go
    exporter = _exporter(config, collector, sampler)
    sampler.start()
    try:
        supervisor.run(on_tick=on_tick)
    finally:
        sampler.stop()
        live.close()
        if exporter is not None:
            exporter.linger(config.prometheus_linger_s, lambda: bool(signals.received))
            exporter.close()
    if supervisor.refused is not None:
        raise DatabaseError(supervisor.refused)
    server = setup.server
    # A user's server: the session settings as the first worker's own connection reports them.
    server["settings"].update({k: v for k, v in collector.workers[0].settings.items() if k in setup.session_settings})
    server["stats"] = probe.end()
    expected = workload.expected_rows(collector.ok_by_op(), setup.populated)
    rows, mismatch = _rows_after(dsn, workload)
    unreported = None if rows is None else {table: rows[table] - expected.get(table, 0) for table in rows}
    database = {
        "schema": SCHEMA,
        "rows": rows,
        "expected_rows": expected,
        # Non-zero after a worker died with commits it could not report; otherwise a warning sign.
        "unreported_rows": unreported,
    }
    if unreported and any(unreported.values()) and not any(w.status.vanished for w in collector.workers):
        mismatch = (
            "the database does not hold what the reported ops committed (unreported rows: "
            + ", ".join(f"{t} {n:+d}" for t, n in unreported.items() if n)
            + "): another client wrote to the schema, or a pooler lost transactions"
        )
    return build(config, server, collector, sampler, setup.pools, database, supervisor.stop_reason, mismatch, transport.describe(), setup.load)
