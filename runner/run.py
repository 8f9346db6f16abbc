"""One run from Config to report: server, schema, sampler, workers, collector, report."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from runner.analysis.repeat import combine
from runner.analysis.report import build
from runner.config import Config
from runner.errors import ExitCode
from runner.live import Live
from runner.measure.collector import Collector
from runner.server.control import (
    apply_session_settings,
    connect,
    connections_in_use,
    control_engine,
    count_rows,
    describe_server,
    prepare_schema,
)
from runner.server.embedded import EmbeddedServer, start_embedded
from runner.server.sampler import ConnectionSampler
from runner.server.stats import ServerProbe
from runner.transport.plan import make_plans, op_shares
from runner.transport.pools import connection_budget, plan_pools
from runner.transport.supervisor import Supervisor
from workloads import SCHEMA, resolve

INTERRUPT_EXIT = {signal.SIGINT: ExitCode.INTERRUPTED, signal.SIGTERM: ExitCode.TERMINATED}


class Interrupted(Exception):
    """A signal arrived before any worker was measuring: nothing to report."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.exit_code = INTERRUPT_EXIT[signal.Signals(signum)]


@dataclass
class Outcome:
    report: dict[str, Any]
    exit_code: ExitCode


@contextmanager
def _signals(supervisor_ref: list[Supervisor]) -> Iterator[list[int]]:
    """SIGINT/SIGTERM: before workers run, abort; during the run, a graceful stop; a second SIGINT kills."""
    received: list[int] = []

    def handle(signum: int, frame: object) -> None:
        received.append(signum)
        if not supervisor_ref:
            raise Interrupted(signum)
        supervisor = supervisor_ref[0]
        if len(received) > 1 and signum == signal.SIGINT:
            supervisor.kill_all()
        supervisor.request_stop(f"interrupted by {signal.Signals(signum).name}")

    previous = {s: signal.signal(s, handle) for s in INTERRUPT_EXIT}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


MIN_OPS_FOR_RATIO = 100  # a share of errors means little before this many ops finished


def error_budget_spent(config: Config, collector: Collector) -> str | None:
    """The --max-errors stop reason, once the run has failed that often."""
    errors = sum(t.error_count for t in collector.by_op.values())
    finished = errors + sum(t.ok for t in collector.by_op.values())
    if config.max_errors is not None and errors >= config.max_errors:
        return f"--max-errors reached: {errors} failed ops"
    if config.max_error_ratio is not None and finished >= MIN_OPS_FOR_RATIO and errors / finished >= config.max_error_ratio:
        return f"--max-errors reached: {errors} of {finished} ops failed ({errors / finished:.1%})"
    return None


def _exit_code(doc: dict[str, Any], signal_exit: ExitCode | None) -> ExitCode:
    if signal_exit is not None:
        return signal_exit
    if not doc["complete"]:
        return ExitCode.INCOMPLETE
    if doc["totals"]["errors"]:
        return ExitCode.OP_ERRORS
    return ExitCode.OK


def run(config: Config) -> Outcome:
    """--repeat runs of one configuration on one server, each on freshly created tables."""
    supervisor_ref: list[Supervisor] = []
    embedded = None
    docs: list[dict[str, Any]] = []
    with _signals(supervisor_ref) as received:
        try:
            if config.dsn is None:
                embedded = start_embedded(dict(config.pg_settings))
            for _ in range(config.repeat):
                try:
                    docs.append(_measure(config, embedded, supervisor_ref, received))
                except Interrupted:
                    if not docs:
                        raise
                    break  # between repeats: report the runs that finished
                if received or not docs[-1]["complete"]:
                    break
        finally:
            if embedded is not None:
                embedded.stop()
    doc = docs[0] if config.repeat == 1 else combine(docs)
    if config.repeat > 1 and len(docs) < config.repeat and doc["complete"]:
        doc["complete"], doc["stop_reason"] = False, f"{len(docs)} of {config.repeat} repeats ran"
    signal_exit = INTERRUPT_EXIT[signal.Signals(received[0])] if received else None
    return Outcome(doc, _exit_code(doc, signal_exit))


def _measure(
    config: Config, embedded: EmbeddedServer | None, supervisor_ref: list[Supervisor], received: list[int]
) -> dict[str, Any]:
    """One measured run: schema, workers, collector, the server's side, the report document."""
    workload = resolve(config.workload)
    dsn = config.dsn or embedded.dsn  # type: ignore[union-attr]
    # The embedded server takes --pg-setting at start; a user's server, per session.
    session_settings = {} if embedded is not None else dict(config.pg_settings)
    control = control_engine(dsn)  # setup now, row counts at the end
    with connect(control, dsn) as conn:
        apply_session_settings(conn, session_settings)
        server = describe_server(conn, tuple(name for name, _ in config.pg_settings))
        conn.rollback()  # the settings were for the report: the setup below runs without them
        server["embedded"] = embedded is not None
        pools = plan_pools(config, connection_budget(server, connections_in_use(conn)))
        populated = prepare_schema(conn, workload)
    collector = Collector(op_shares(config), config.interval_s)
    supervisor = Supervisor(make_plans(config, dsn, pools.sizes, session_settings), collector, config.grace_s)
    sampler = ConnectionSampler(control_engine(dsn, "sampler"))
    probe = ServerProbe(control_engine(dsn, "stats"), SCHEMA, embedded.postmaster_pid() if embedded else None)
    live = Live(config, collector, sampler)

    def on_tick() -> None:
        live.tick()
        if (reason := error_budget_spent(config, collector)) is not None:
            supervisor.request_stop(reason)

    supervisor.on_go = probe.begin
    sampler.start()
    supervisor_ref[:] = [supervisor]  # from here on a signal stops this run's workers gracefully
    if received:  # it came while this repeat was being set up
        supervisor.request_stop(f"interrupted by {signal.Signals(received[0]).name}")
    try:
        supervisor.run(on_tick=on_tick)
    finally:
        sampler.stop()
        live.close()
    server["stats"] = probe.end()
    with connect(control, dsn) as conn:
        rows = count_rows(conn, workload)
    expected = workload.expected_rows(collector.ok_by_op(), populated)
    database = {
        "schema": SCHEMA,
        "rows": rows,
        "expected_rows": expected,
        # Non-zero only when a worker died after committing ops it could not report.
        "unreported_rows": {table: rows[table] - expected.get(table, 0) for table in rows},
    }
    doc = build(config, server, collector, sampler, pools, database, supervisor.stop_reason)
    doc["repeat"] = None
    return doc
