"""The command line: Click options -> Options -> resolve -> RunSpec -> run -> exit code. The only module that knows Click."""

from __future__ import annotations

import json
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from runner import __version__, lost_interrupt
from runner.concurrency import DEFAULT_MODE, MODES
from runner.config import parse_max_errors, parse_pg_settings, parse_think, parse_warmup
from runner.errors import ExitCode, RunnerError, UsageError
from runner.logs import configure
from runner.resolve import resolve
from runner.spec import Options, RunSpec
from workloads import WORKLOADS
from workloads.loader import is_path

EPILOG = """\b
Examples:
  python -m runner --procs 4 --chunk 40           the seed experiment, 4 processes
  python -m runner --mode sync --ops 2000          the psycopg2 baseline
  python -m runner --procs 2 --ops 2000 | jq .totals
  python -m runner --dsn postgresql://user:pw@localhost:5432/bench --output run.json
  python -m runner --repeat 5 --ops 5000 --output a.json
  runner compare a.json b.json                    deltas, and whether they exceed the noise
  runner report sweep.jsonl --out report/         plots and a Markdown summary
  runner capacity --slo 'read.p99 < 50ms'          the highest rate that meets an SLO

\b
Exit codes: 0 ok, 1 internal error, 2 bad input, 3 database unavailable or refused,
4 run incomplete (a worker died, --max-errors), 5 some ops failed, 6 results not written
(stdout closed or full, --output failed), 7 a --check failed, 130 Ctrl-C, 143 SIGTERM.
"""


def _fail(message: str, code: ExitCode) -> int:
    click.echo(f"runner: error: {message}", err=True)
    return int(code)


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.option("--procs", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--chunk", type=int, default=40, show_default=True, help="Ops in flight per worker: gathered at once (chunked) or kept going (window).")
@click.option("--ops", type=int, default=None, help="Total ops across all workers  [default: 35000].")
@click.option("--duration", "duration_s", type=float, default=None, help="Run for this many seconds instead of --ops.")
@click.option("--warmup", default=None, help="Before measuring: ops across all workers (500) or seconds (5s).")
@click.option("--mode", default=DEFAULT_MODE, show_default=True, help=f"How ops are issued: {', '.join(MODES)}.")
@click.option("--loop", default="uvloop", show_default=True, help="Async modes: event loop, uvloop or asyncio.")
@click.option("--rate", "rate_per_s", type=float, default=None, help="Open loop: ops/s across all workers, on a schedule.")
@click.option("--arrival", default="uniform", show_default=True, help="Open loop: gaps between ops, uniform or poisson.")
@click.option("--max-inflight", type=int, default=None, help="Open loop: most ops in flight per worker; more are dropped and counted  [default: 1000].")
@click.option("--threads", type=int, default=1, show_default=True, help="Sync mode: threads (and connections) per worker.")
@click.option("--read-ratio", type=float, default=0.5, show_default=True, help="Share of ops that are reads.")
@click.option("--seed", type=int, default=None, help="RNG seed: the same seed gives the same op sequence.")
@click.option("--workload", default="seed", show_default=True, help=f"Workload: {', '.join(WORKLOADS)}, path/to/file.py, or package.module[:name].")
@click.option(
    "--scale",
    type=int,
    default=None,
    help="Fill the workload's tables with N rows each before the run: its populate(conn, scale), or a generic filler from its models (COPY).",
)
@click.option(
    "--isolation",
    type=click.Choice(["read-committed", "repeatable-read", "serializable"]),
    default=None,
    help="Every worker session's transaction isolation (default_transaction_isolation)  [default: the server's].",
)
@click.option("--retries", type=int, default=0, show_default=True, help="Re-run an op that failed with a serialization failure or deadlock (40001, 40P01) up to N times.")
@click.option(
    "--think",
    default=None,
    help="Closed modes: pause each lane (an op in flight) this long between one op's end and its next (100ms), or exp:100ms (exponential, that mean); not in latency.",
)
@click.option(
    "--keys",
    default="uniform",
    show_default=True,
    help="How ops pick existing rows (tpcb, point-select, your ctx.keys.pick(n)): uniform, zipf[:THETA], hotspot[:FRACTION:PROB], latest.",
)
@click.option("--layer", default="orm", show_default=True, help="orm, core or raw: the same SQL through the ORM, SQLAlchemy Core, or the driver.")
@click.option("--driver", default=None, help="asyncpg or psycopg (async modes); psycopg2 or psycopg (sync)  [default: asyncpg / psycopg2].")
@click.option(
    "--dsn",
    envvar="DATABASE_URL",
    default=None,
    help="PostgreSQL DSN (default: $DATABASE_URL; neither: a throwaway embedded server).",
)
@click.option("--output", default=None, help="Also write the JSON document to this file (atomically).")
@click.option("--interval", "interval_s", type=float, default=1.0, show_default=True, help="Seconds per interval record.")
@click.option(
    "--pg-setting",
    "pg_settings",
    multiple=True,
    help="name=value, repeatable: a server setting for the embedded server, or a session setting on --dsn.",
)
@click.option("--pool-size", type=int, default=None, help="Pool size per worker  [default: the worker's concurrency].")
@click.option("--max-overflow", type=int, default=0, show_default=True, help="Connections a pool may open beyond its size.")
@click.option("--pool-timeout", "pool_timeout_s", type=float, default=600.0, show_default=True, help="Seconds an op waits for a pooled connection before it fails.")
@click.option("--grace", "grace_s", type=float, default=10.0, show_default=True, help="Seconds in-flight ops get to finish after a stop.")
@click.option("--op-timeout", "op_timeout_s", type=float, default=None, help="Cancel a statement after this many seconds (statement_timeout).")
@click.option("--max-errors", default=None, help="End the run early after this many failed ops (100) or this share of them (5%).")
@click.option("--repeat", type=int, default=1, show_default=True, help="Run the same configuration N times; report min/median/max.")
@click.option(
    "--anatomy/--no-anatomy",
    default=True,
    show_default=True,
    help="Per op type: statements and rows per op, pool wait, database time and Python time (README: what it costs).",
)
@click.option(
    "--exemplars",
    type=int,
    default=0,
    show_default=True,
    help="Keep the N slowest ops per op type with their statements and parameters (.exemplars; see `runner explain`).",
)
@click.option(
    "--stages",
    default=None,
    help="Steps of DURATION:TARGET, e.g. '30s:100/s,ramp:60s:400/s,30s:100/s' (open-loop rate) or '30s:10,30s:40' (window ops in flight).",
)
@click.option(
    "--check",
    "checks",
    multiple=True,
    help="Repeatable pass/fail condition over the run's figures, e.g. 'read.p99 < 50ms' or 'ops_per_s >= 800' (exit 7 if one fails).",
)
@click.option(
    "--prometheus-port",
    type=int,
    default=None,
    help="Serve the run's live metrics for Prometheus on 127.0.0.1:PORT/metrics (needs the prometheus extra).",
)
@click.option(
    "--prepare",
    type=click.Choice(["auto", "never", "always"]),
    default="auto",
    show_default=True,
    help="Server-side prepared statements: psycopg 3 prepares after 5 executions (auto), never, or at once (always); asyncpg: never = --statement-cache off.",
)
@click.option(
    "--statement-cache",
    type=click.Choice(["on", "off"]),
    default="on",
    show_default=True,
    help="Prepared-statement cache of the driver; off for a transaction pooler (PgBouncer pool_mode=transaction).",
)
@click.option(
    "--max-client-connections",
    type=int,
    default=None,
    help="Connections the server side accepts from the workers, for the preflight (a pooler's max_client_conn)  [default: the server's free connections].",
)
@click.option(
    "--cluster",
    default="local",
    show_default=True,
    help="Where workers run: local processes; ray (a private local Ray instance); ray:auto or ray:HOST:PORT (join a Ray cluster). Needs runner[ray].",
)
@click.option("--wait-for-lock", is_flag=True, help="If another run uses the same database's schema, wait for it instead of refusing.")
@click.option("--quiet", is_flag=True, help="No progress line and no human summary on stderr.")
@click.option("--jsonl", is_flag=True, help="Stream each interval as a JSON line on stdout, then the document as one line.")
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors, and each step of the run as it happens (start, release, stop, each worker's end).")
@click.version_option(__version__, prog_name="runner")
def cli(**options: object) -> int:
    """Run a SQLAlchemy workload against PostgreSQL and report what it did, as JSON on stdout."""
    from runner.analysis.checks import failed_lines
    from runner.analysis.report import print_summary
    from runner.concurrency.stages import parse_stages
    from runner.output import ResultStream, check_writable
    from runner.run import Interrupted, run

    # Before the workload is imported (resolving the options loads it): whatever it prints goes to stderr.
    stream = ResultStream.claim_stdout()
    stages_text = options.pop("stages")
    stage_kind, stages = parse_stages(stages_text) if isinstance(stages_text, str) else (None, ())
    config = _config(options, stages=stages, stage_kind=stage_kind)
    _refuse_unused_widths(config)
    if config.output is not None:
        check_writable(config.output)
    try:
        outcome = run(config, stream)
    except Interrupted as exc:
        return _fail(f"interrupted by {exc} before any op was measured", exc.exit_code)
    code = _deliver(outcome.report, outcome.exit_code, config, stream)
    if not config.quiet:
        print_summary(outcome.report)
    else:  # even --quiet says when the numbers are partial or the pool shaped them
        for warning in outcome.report["warnings"]:
            click.echo(f"runner: warning: {warning}", err=True)
        if not outcome.report["complete"]:
            click.echo(f"runner: INCOMPLETE: {outcome.report['stop_reason']}", err=True)
    for line in failed_lines(outcome.report["checks"] or [], median=config.repeat > 1):
        click.echo(f"runner: {line}", err=True)
    return int(code)


def _config(options: dict[str, object], **fields: Any) -> RunSpec:
    """The resolved spec of the run options (the main command's, or runner capacity's share of them)."""
    warmup_ops, warmup_s = parse_warmup(options.pop("warmup", None))  # type: ignore[arg-type]
    max_errors, max_error_ratio = parse_max_errors(options.pop("max_errors"))  # type: ignore[arg-type]
    pg_settings = parse_pg_settings(options.pop("pg_settings"))  # type: ignore[arg-type]
    statement_cache = options.pop("statement_cache") == "on"
    think_s, think_dist = parse_think(options.pop("think", None))  # type: ignore[arg-type]
    parsed = {"warmup_ops": warmup_ops, "warmup_s": warmup_s, "think_s": think_s, "think_dist": think_dist, **fields}  # `fields` overrides: capacity's own warm-up
    workload = options.get("workload")
    if isinstance(workload, str) and is_path(workload):  # as typed here: a Ray worker would resolve it from its own directory
        options["workload"] = str(Path(workload).resolve())
    return resolve(Options(
        **options,  # type: ignore[arg-type]
        **parsed,
        statement_cache=statement_cache,
        max_errors=max_errors,
        max_error_ratio=max_error_ratio,
        pg_settings=pg_settings,
    ))


def _refuse_unused_widths(config: RunSpec) -> None:
    """--threads is the sync mode's concurrency and --chunk the async modes': one given for a mode
    that has none of it did nothing, silently."""
    context = click.get_current_context()

    def given(name: str) -> bool:
        return context.get_parameter_source(name) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)

    width = MODES[config.mode].width
    if given("threads") and width != "threads":
        raise UsageError(f"--threads is the sync mode's concurrency; --mode {config.mode} has none (its own is --chunk, or --rate)")
    if given("chunk") and width == "threads":
        raise UsageError(f"--chunk is the async modes' concurrency; --mode {config.mode} has none (its own is --threads)")


def _deliver(doc: dict[str, Any], code: ExitCode, config: RunSpec, stream: Any) -> ExitCode:
    """The document on stdout (as --jsonl's last line or pretty), then to --output; the exit code,
    turned into OUTPUT when either place could not take it."""
    from runner.output import dumps, result_line, write_output

    # The run is over: a late Ctrl-C must not cut the results in half.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    output_error = None
    try:
        # stdout first: a full disk under --output must not cost the results on stdout too.
        stream.write(result_line(doc) if config.jsonl else dumps(doc))
        if config.output is not None:
            try:
                write_output(config.output, dumps(doc))
            except OSError as exc:
                output_error = f"--output {config.output}: {exc.strerror or exc}"
    finally:
        signal.signal(signal.SIGINT, previous)
    for line in _delivery_errors(stream.error, output_error, config.output):
        click.echo(f"runner: error: {line}", err=True)
        if code not in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
            code = ExitCode.OUTPUT
    return code


def _delivery_errors(stdout_error: str | None, output_error: str | None, output: str | None) -> list[str]:
    """One line per place the document could not be written, saying where it went instead."""
    lines = []
    if stdout_error is not None:
        where = f"written to --output {output}" if output is not None and output_error is None else "lost; the summary on stderr remains"
        lines.append(f"{stdout_error}: the document was {where}")
    if output_error is not None:
        lines.append(f"{output_error}: the document was {'lost; the summary on stderr remains' if stdout_error else 'written to stdout only'}")
    return lines


@click.command("report", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--out", default="runner-report", show_default=True, help="Folder for the plots and summary.md.")
def report_cmd(files: tuple[str, ...], out: str) -> int:
    """Plots and a Markdown summary for result files (run documents or sweep JSON lines)."""
    from runner.analysis.plots import write_report
    from runner.analysis.results import load

    results = load(list(files))
    try:
        written = write_report(results, Path(out))
    except (KeyError, TypeError, IndexError, AttributeError) as exc:  # a document of another shape (hand-made, another version)
        raise UsageError(f"a result lacks a figure the report draws ({type(exc).__name__}: {exc}): not a run's document of this version") from None
    click.echo(json.dumps({"report": out, "files": [str(p) for p in written]}))
    click.echo(f"runner: report written to {out}/ ({len(written)} files)", err=True)
    return int(ExitCode.OK)


@click.command("compare", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("a")
@click.argument("b")
@click.option("--fail-if", "fail_if", multiple=True, help="Repeatable: exit 7 when B is past this change from A and beyond the spread, e.g. 'ops_per_s < -5%'.")
def compare_cmd(a: str, b: str, fail_if: tuple[str, ...]) -> int:
    """Two results side by side: deltas in %, and whether each is beyond the runs' spread."""
    from runner.analysis.compare import compare, fail_ifs, mismatch, parse_fail_if, render
    from runner.analysis.results import load

    for text in fail_if:  # a bad expression is one line before anything is read
        parse_fail_if(text)
    (name_a, doc_a), (name_b, doc_b) = _single(load([a])), _single(load([b]))
    warnings = mismatch(doc_a, doc_b)
    rows = compare(doc_a, doc_b)
    judged = fail_ifs(fail_if, rows)
    click.echo(json.dumps({"a": name_a, "b": name_b, "warnings": warnings, "rows": rows, "fail_if": judged}))
    click.echo(render(rows, name_a, name_b), err=True)
    for warning in warnings:
        click.echo(f"runner: warning: {warning}", err=True)
    for result in judged:
        if result["fail"]:
            click.echo(f"runner: compare failed: {result['fail_if']}: {result['metric']} changed {result['delta_pct']:+.1f}%, beyond the spread", err=True)
    return int(ExitCode.CHECKS if any(r["fail"] for r in judged) else ExitCode.OK)


def _single(results: list[tuple[str, dict[str, Any]]], command: str = "compare") -> tuple[str, dict[str, Any]]:
    from runner.analysis.results import is_capacity

    if len(results) != 1:
        raise UsageError(f"{results[0][0].split(':')[0]} holds {len(results)} results: {command} takes one per file")
    if is_capacity(results[0][1]):
        raise UsageError(f"{results[0][0]} is a capacity search: {command} takes a run's document (runner report draws a search)")
    return results[0]


@click.command("explain", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file")
@click.option("--dsn", envvar="DATABASE_URL", default=None, help="The server the run used (default: $DATABASE_URL).")
@click.option("--analyze", is_flag=True, help="EXPLAIN (ANALYZE, BUFFERS), in a transaction that is rolled back.")
def explain_cmd(file: str, dsn: str | None, analyze: bool) -> int:
    """The plans of the statements the slowest ops sent (a run with --exemplars N)."""
    from runner.analysis.explain import distinct_statements, explain, render
    from runner.analysis.results import load
    from runner.dsn import driver_args

    if dsn is None:
        raise UsageError("runner explain needs --dsn (or DATABASE_URL): the server the run used, its tables still there")
    driver_args(dsn, "psycopg2")  # a malformed DSN is one line, exit 2
    name, doc = _single(load([file]), "explain")
    try:
        statements = distinct_statements(doc.get("exemplars") or {})
    except (KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{name}'s exemplars are not shaped as a run writes them ({type(exc).__name__}: {exc})") from None
    entries = explain(doc, dsn, analyze, statements)
    click.echo(json.dumps({"file": name, "analyze": analyze, "plans": entries}))
    click.echo(render(entries), err=True)
    return int(ExitCode.OK)


# The main command's options that a capacity search sets itself, step by step, or cannot use.
NOT_FOR_CAPACITY = (
    "ops", "duration_s", "warmup", "mode", "rate_per_s", "stages", "checks", "repeat", "jsonl", "prometheus_port", "chunk", "threads", "think",
)


def _capacity(**options: Any) -> int:
    """The highest open-loop rate that meets every --slo: grow the rate until a step fails, then
    bisect. One short run per step, all on one server; the document has every step."""
    from runner.capacity.find import CapacitySpec, find_capacity, summary_lines
    from runner.capacity.search import SearchSpec
    from runner.config import parse_duration
    from runner.output import ResultStream, check_writable
    from runner.run import Interrupted

    stream = ResultStream.claim_stdout()
    precision_text = options.pop("precision")
    spec = CapacitySpec(
        slos=options.pop("slos"),
        search=SearchSpec(
            start_per_s=options.pop("start_rate"),
            growth=options.pop("growth"),
            precision=_share(precision_text, "--precision"),
            max_per_s=options.pop("max_rate"),
            max_steps=options.pop("max_steps"),
        ),
        step_s=parse_duration(options.pop("step"), "--step"),
        step_warmup_s=parse_duration(options.pop("step_warmup"), "--step-warmup", zero_ok=True),
    )
    config = _config(options, rate_per_s=spec.search.start_per_s, duration_s=spec.step_s, warmup_s=spec.step_warmup_s)
    spec.checks(config)  # a bad --slo is one line before any server starts
    if config.output is not None:
        check_writable(config.output)
    try:
        outcome = find_capacity(config, spec, stream)
    except Interrupted as exc:
        return _fail(f"interrupted by {exc} before any step was measured", exc.exit_code)
    code = _deliver(outcome.report, outcome.exit_code, config, stream)
    for line in summary_lines(outcome.report):
        click.echo(line, err=True)
    return int(code)


def _share(text: str, option: str) -> float:
    """5% or 0.05 -> 0.05."""
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UsageError(f"{option} takes a share such as 5% or 0.05, got {text!r}") from None


capacity_cmd = click.Command(
    "capacity",
    context_settings={"help_option_names": ["-h", "--help"]},
    callback=_capacity,
    help=_capacity.__doc__,
    params=[
        click.Option(["--slo", "slos"], multiple=True, required=True, help="Repeatable, the --check grammar: 'read.p99 < 50ms', 'error_rate < 1%'."),
        click.Option(["--start-rate"], type=float, default=20.0, show_default=True, help="The first step's rate, ops/s across all workers."),
        click.Option(["--growth"], type=float, default=2.0, show_default=True, help="While steps pass, the next rate is this many times the last."),
        click.Option(["--precision"], default="5%", show_default=True, help="Stop when the first failing rate is within this share of the passing one."),
        click.Option(["--max-rate"], type=float, default=None, help="Never offer more than this many ops/s (a production service's cap)."),
        click.Option(["--max-steps"], type=int, default=30, show_default=True, help="Most steps the search may take."),
        click.Option(["--step"], default="10s", show_default=True, help="Measured time per step."),
        click.Option(["--step-warmup"], default="3s", show_default=True, help="Warm-up before each step's measurement, at the step's rate."),
        *[param for param in cli.params if param.name not in NOT_FOR_CAPACITY and param.name != "version"],
    ],
)

SUBCOMMANDS = {"report": report_cmd, "compare": compare_cmd, "explain": explain_cmd, "capacity": capacity_cmd}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    configure(debug)
    command = SUBCOMMANDS.get(args[0]) if args else None
    try:
        if command is not None:
            code = command.main(args=args[1:], prog_name=f"runner {args[0]}", standalone_mode=False)
        else:
            code = cli.main(args=args, prog_name="runner", standalone_mode=False)
    except click.ClickException as exc:  # bad option: one line, not Click's usage block
        code = _fail(exc.format_message(), ExitCode.USAGE)
    except (click.Abort, KeyboardInterrupt):  # Ctrl-C before the run's own handlers were set
        code = _fail("interrupted", ExitCode.INTERRUPTED)
    except RunnerError as exc:
        code = _fail(str(exc), exc.exit_code)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        code = _fail(
            f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            ExitCode.INTERNAL,
        )
    if lost_interrupt.take() and code in (0, None):  # a Ctrl-C Python dropped, that no run took up
        code = _fail("interrupted", ExitCode.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
