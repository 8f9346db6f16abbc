"""The command line: Click options -> Options -> resolve -> RunSpec -> run -> exit code. The only module that knows Click."""

from __future__ import annotations

import json
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from runner import __version__, lost_interrupt
from runner.errors import ExitCode, RunnerError, UsageError
from runner.logs import configure
from runner.resolve import resolve
from runner.settings import click_options, refuse_unneeded, to_options
from runner.spec import RunSpec

if TYPE_CHECKING:
    from runner.run import Outcome

EPILOG = """\b
Examples:
  python -m runner --procs 4 --chunk 40           the seed experiment, 4 processes
  python -m runner --mode sync --ops 2000          the psycopg2 baseline
  python -m runner --procs 2 --ops 2000 | jq .totals
  python -m runner --dsn postgresql://user:pw@localhost:5432/bench --output run.json
  python -m runner --repeat 5 --ops 5000 --output a.json
  runner compare a.json b.json                    deltas, and whether they exceed the noise
  python -m runner --save-baseline main            keep this run as baseline "main" (.runner/baselines)
  python -m runner --baseline main --fail-if '*.statements_per_op > +0'   judged against it
  runner compare --run ../base . --ops 2000 --fail-if 'ops_per_s < -5%'   paired rounds of two checkouts
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
@click.version_option(__version__, prog_name="runner")
def cli(**values: Any) -> int:
    """Run a SQLAlchemy workload against PostgreSQL and report what it did, as JSON on stdout."""
    from runner.analysis.baselines import save, verdict_lines
    from runner.analysis.checks import failed_lines
    from runner.analysis.report import print_summary
    from runner.output import ResultStream, check_writable
    from runner.run import Interrupted, run

    # Before the workload is imported (resolving the options loads it): whatever it prints goes to stderr.
    stream = ResultStream.claim_stdout()
    config = resolve(to_options(values))
    context = click.get_current_context()
    refuse_unneeded(config.mode, lambda name: context.get_parameter_source(name) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP))
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
    for line in verdict_lines(outcome.report):
        click.echo(f"runner: {line}", err=True)
    if config.save_baseline is not None:
        line, saved = save(outcome.report, config.save_baseline, config.baseline_dir)
        click.echo(f"runner: {line}", err=True)
        if not saved and code not in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
            code = ExitCode.OUTPUT
    return int(code)


cli.params[:0] = click_options()  # the table's options, before --version (runner.settings)


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


FAIL_IF_HELP = (
    "Repeatable: exit 7 when B is past this change from A (a timing: and beyond the spread), "
    "e.g. 'ops_per_s < -5%', 'feed.statements_per_op > +0%', '*.statements_per_op > +0'."
)


@click.command("compare", context_settings={"help_option_names": ["-h", "--help"], "ignore_unknown_options": True})
@click.argument("a")
@click.argument("b", required=False)
@click.option("--fail-if", "fail_if", multiple=True, help=FAIL_IF_HELP)
@click.option("--baseline", default=None, help="A is this stored baseline (saved by a run's --save-baseline NAME); give B alone.")
@click.option("--baseline-dir", envvar="RUNNER_BASELINE_DIR", default=None, help="Where baselines are kept  [default: .runner/baselines].")
@click.option("--run", "paired", is_flag=True, help="A and B are two checkouts: run the options after them in each, in paired interleaved rounds on one server.")
@click.option("--rounds", type=int, default=6, show_default=True, help="With --run: paired rounds (each runs A and B once).")
@click.option("--dsn", envvar="DATABASE_URL", default=None, help="With --run: the server (default: $DATABASE_URL, else an embedded one).")
@click.argument("run_options", nargs=-1, type=click.UNPROCESSED)
def compare_cmd(
    a: str, b: str | None, fail_if: tuple[str, ...], baseline: str | None, baseline_dir: str | None,
    paired: bool, rounds: int, dsn: str | None, run_options: tuple[str, ...],
) -> int:
    """Two results side by side: deltas in %, and whether each is beyond the runs' spread. With
    --baseline NAME, A is that stored run and the one file is B. With --run, two checkouts
    measured in paired, interleaved rounds: each timing's ratio B/A with its 95 % interval, and a
    --fail-if that fails, passes or says it can't tell."""
    from runner.analysis.baselines import Store, check_name
    from runner.analysis.compare import compare, fail_ifs, fail_line, mismatch, parse_fail_if, render
    from runner.result import read_one

    for text in fail_if:  # a bad expression is one line before anything is read
        parse_fail_if(text)
    if (b is None) != (baseline is not None):
        raise UsageError("compare takes two results A B, or --baseline NAME and one result B")
    if paired:
        if b is None:
            raise UsageError("compare --run takes two checkouts A B, not --baseline")
        return _paired_compare(a, b, fail_if, rounds, dsn, run_options)
    if run_options:
        raise UsageError(f"compare: {run_options[0]!r} after A and B: run options need --run (A and B then name two checkouts)")
    warnings: list[str] = []
    if baseline is not None:
        stored = Store.at(baseline_dir).load(check_name(baseline, "--baseline"))
        warnings += [stored.warning] if stored.warning else []
        result_a, result_b = stored.result, read_one(a, "compare")
    else:
        assert b is not None
        result_a, result_b = read_one(a, "compare"), read_one(b, "compare")  # versions compared by mismatch, not refused alone
    name_a, name_b = result_a.name, result_b.name
    warnings += mismatch(result_a, result_b)
    rows = compare(result_a, result_b)
    judged = fail_ifs(fail_if, rows, result_a, result_b)
    click.echo(json.dumps({"a": name_a, "b": name_b, "warnings": warnings, "rows": rows, "fail_if": judged}))
    click.echo(render(rows, name_a, name_b), err=True)
    for warning in warnings:
        click.echo(f"runner: warning: {warning}", err=True)
    for result in judged:
        if result["fail"]:
            click.echo(f"runner: compare failed: {fail_line(result)}", err=True)
    return int(ExitCode.CHECKS if any(r["fail"] for r in judged) else ExitCode.OK)


def _paired_compare(a: str, b: str, fail_if: tuple[str, ...], rounds: int, dsn: str | None, run_options: tuple[str, ...]) -> int:
    """compare --run: the rounds on one server (embedded unless --dsn), then the paired verdicts."""
    from runner.analysis import paired_gate as gate
    from runner.server.embedded import start_embedded

    if rounds < 2:
        raise UsageError(f"--rounds must be at least 2 (an interval needs two paired rounds), got {rounds}")
    gate.check_run_options(run_options)
    sides = gate.sides(a, b)
    embedded = start_embedded({}) if dsn is None else None
    try:
        measured = gate.measure_rounds(sides, run_options, rounds, dsn or embedded.dsn, sys.stderr)  # type: ignore[union-attr]
    finally:
        if embedded is not None:
            embedded.stop()
    rows = gate.paired_rows(measured.a, measured.b) if measured.a else []
    judged = gate.judge(fail_if, rows, measured.a[-1], measured.b[-1]) if rows else []
    click.echo(json.dumps(gate.document(sides, measured, rows, judged)))
    if rows:
        click.echo(gate.render(rows, len(measured.a)), err=True)
    if measured.stopped is not None:
        click.echo(f"runner: warning: the rounds stopped early ({measured.stopped}): {len(measured.a)} of {rounds} measured", err=True)
    for result in judged:
        if result["fail"]:
            click.echo(f"runner: compare failed: {gate.judged_line(result, len(measured.a))}", err=True)
        elif not result["decided"]:
            click.echo(f"runner: compare {gate.judged_line(result, len(measured.a))}", err=True)
    return int(gate.exit_code(measured, judged))


@click.command("explain", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file")
@click.option("--dsn", envvar="DATABASE_URL", default=None, help="The server the run used (default: $DATABASE_URL).")
@click.option("--analyze", is_flag=True, help="EXPLAIN (ANALYZE, BUFFERS), in a transaction that is rolled back.")
def explain_cmd(file: str, dsn: str | None, analyze: bool) -> int:
    """The plans of the statements the slowest ops sent (a run with --exemplars N)."""
    from runner.analysis.explain import distinct_statements, explain, render
    from runner.dsn import driver_args
    from runner.result import read_one

    if dsn is None:
        raise UsageError("runner explain needs --dsn (or DATABASE_URL): the server the run used, its tables still there")
    driver_args(dsn, "psycopg2")  # a malformed DSN is one line, exit 2
    result = read_one(file, "explain")
    name, doc = result.name, result.doc
    try:
        statements = distinct_statements(doc.get("exemplars") or {})
    except (KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{name}'s exemplars are not shaped as a run writes them ({type(exc).__name__}: {exc})") from None
    entries = explain(doc, dsn, analyze, statements)
    click.echo(json.dumps({"file": name, "analyze": analyze, "plans": entries}))
    click.echo(render(entries), err=True)
    return int(ExitCode.OK)


def _capacity(**options: Any) -> int:
    """The highest open-loop rate that meets every --slo: grow the rate until a step fails, then
    bisect. One short run per step, all on one server; the document has every step."""
    from runner.capacity.find import CapacitySpec, find_capacity, summary_lines
    from runner.capacity.search import SearchSpec
    from runner.config import parse_duration
    from runner.output import ResultStream

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
    config = resolve(to_options(options, rate_per_s=spec.search.start_per_s, duration_s=spec.step_s, warmup_s=spec.step_warmup_s))
    spec.checks(config)  # a bad --slo is one line before any server starts
    return _steps_command(config, stream, lambda: find_capacity(config, spec, stream), summary_lines)


def _steps_command(config: RunSpec, stream: Any, measure: Callable[[], Outcome], summary: Callable[[dict[str, Any]], list[str]]) -> int:
    """A command of many measured steps on one server (capacity, advise): its document delivered
    as a run's is, then its summary on stderr."""
    from runner.output import check_writable
    from runner.run import Interrupted

    if config.output is not None:
        check_writable(config.output)
    try:
        outcome = measure()
    except Interrupted as exc:
        return _fail(f"interrupted by {exc} before any step was measured", exc.exit_code)
    code = _deliver(outcome.report, outcome.exit_code, config, stream)
    for line in summary(outcome.report):
        click.echo(line, err=True)
    return int(code)


def _share(text: str, option: str) -> float:
    """5% or 0.05 -> 0.05."""
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UsageError(f"{option} takes a share such as 5% or 0.05, got {text!r}") from None


def _command(name: str, callback: Callable[..., int], params: list[click.Parameter]) -> click.Command:
    """A subcommand of many steps, its help its callback's docstring."""
    return click.Command(name, context_settings={"help_option_names": ["-h", "--help"]}, callback=callback, help=callback.__doc__, params=params)


capacity_cmd = _command(
    "capacity",
    _capacity,
    [
        click.Option(["--slo", "slos"], multiple=True, required=True, help="Repeatable, the --check grammar: 'read.p99 < 50ms', 'error_rate < 1%'."),
        click.Option(["--start-rate"], type=float, default=20.0, show_default=True, help="The first step's rate, ops/s across all workers."),
        click.Option(["--growth"], type=float, default=2.0, show_default=True, help="While steps pass, the next rate is this many times the last."),
        click.Option(["--precision"], default="5%", show_default=True, help="Stop when the first failing rate is within this share of the passing one."),
        click.Option(["--max-rate"], type=float, default=None, help="Never offer more than this many ops/s (a production service's cap)."),
        click.Option(["--max-steps"], type=int, default=30, show_default=True, help="Most steps the search may take."),
        click.Option(["--step"], default="10s", show_default=True, help="Measured time per step."),
        click.Option(["--step-warmup"], default="3s", show_default=True, help="Warm-up before each step's measurement, at the step's rate."),
        *click_options(capacity=True),
    ],
)


def _advise(**options: Any) -> int:
    """Which configuration serves this workload best here: sync or async, driver, processes, ops
    in flight. Each family climbs a concurrency ladder (fitted with the Universal Scalability
    Law), then the best of each meet in paired, interleaved rounds; the answer says "can't tell"
    when the rounds cannot."""
    import os

    from runner.advise.advise import AdviseSpec, advise, summary_lines
    from runner.advise.families import DEFAULT_FAMILIES, parse_families
    from runner.config import parse_duration
    from runner.output import ResultStream

    stream = ResultStream.claim_stdout()
    max_procs = options.pop("max_procs") or os.cpu_count() or 1
    if max_procs < 1 or options["max_connections"] < 1 or options["max_width"] < 1 or options["rounds"] < 2:
        raise UsageError("--max-procs, --max-connections and --max-width must be at least 1, --rounds at least 2")
    spec = AdviseSpec(
        families=parse_families(options.pop("candidates") or ",".join(DEFAULT_FAMILIES)),
        procs=tuple(range(1, max_procs + 1)),
        max_connections=options.pop("max_connections"),
        max_width=options.pop("max_width"),
        slos=options.pop("slos"),
        budget_s=parse_duration(options.pop("budget"), "--budget"),
        rounds=options.pop("rounds"),
        step_s=parse_duration(options.pop("step"), "--step"),
        step_warmup_s=parse_duration(options.pop("step_warmup"), "--step-warmup", zero_ok=True),
        screen_s=parse_duration(options.pop("screen_step"), "--screen-step"),
        screen_warmup_s=parse_duration(options.pop("screen_warmup"), "--screen-warmup", zero_ok=True),
    )
    config = resolve(to_options(options, duration_s=spec.step_s, warmup_s=spec.step_warmup_s))
    spec.checks(config)  # a bad --slo is one line before any server starts
    return _steps_command(config, stream, lambda: advise(config, spec, stream), summary_lines)


ADVISE_DECIDES = frozenset({"procs", "driver", "pool_size", "max_overflow", "mode"})  # set per candidate
advise_cmd = _command(
    "advise",
    _advise,
    [
        click.Option(["--candidates"], default=None, help="Families: sync, sync-psycopg, window, window-psycopg, chunked, gevent  [default: sync,window]."),
        click.Option(["--max-procs"], type=int, default=None, help="Try 1 to this many processes  [default: the host's cores]."),
        click.Option(["--max-connections"], type=int, default=64, show_default=True, help="The connections the answer may hold (the server's or the pooler's budget)."),
        click.Option(["--max-width"], type=int, default=64, show_default=True, help="Most ops in flight per process to try."),
        click.Option(["--slo", "slos"], multiple=True, help="Repeatable, the --check grammar: a candidate that breaks one is not advised."),
        click.Option(["--budget"], default="5m", show_default=True, help="Wall time the whole experiment may take."),
        click.Option(["--rounds"], type=int, default=5, show_default=True, help="Most paired rounds per comparison."),
        click.Option(["--step"], default="3s", show_default=True, help="Measured time per confirmation run (each side of a paired round)."),
        click.Option(["--step-warmup"], default="1s", show_default=True, help="Warm-up before each confirmation run."),
        click.Option(["--screen-step"], default="1s", show_default=True, help="Measured time per screening step (one level of a climb)."),
        click.Option(["--screen-warmup"], default="0.5s", show_default=True, help="Warm-up before each screening step."),
        *click_options(capacity=True, without=ADVISE_DECIDES),
    ],
)
SUBCOMMANDS = {"report": report_cmd, "compare": compare_cmd, "explain": explain_cmd, "capacity": capacity_cmd, "advise": advise_cmd}


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
