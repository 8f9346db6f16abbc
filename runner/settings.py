"""Every option of a run, once: its flag, help, type, default, parser and the Options fields it
sets, each with its JSON schema in the result document's `.config` (gunicorn's settings table).

The main command's Click parameters, runner capacity's share of them, `.config`'s section of
docs/output.schema.json and docs/options.md are all made from SETTINGS; tests/test_settings.py
checks that the files are what the table makes (`python -m runner.settings` writes them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner.concurrency import MODULES
from runner.config import DEFAULT_MODE, parse_max_errors, parse_pg_settings, parse_think, parse_warmup

if TYPE_CHECKING:
    from runner.concurrency.mode import Mode
    from runner.spec import Options


def _stages(text: str | None) -> tuple[Any, ...]:
    from runner.concurrency.stages import parse_stages

    return parse_stages(text) if text is not None else (None, ())


def _scale(text: str | None) -> tuple[Any, ...]:
    from runner.load.rows import parse_scale

    return parse_scale(text)


def _workload(name: str) -> tuple[str]:
    """A file as typed here, made absolute: a Ray worker would resolve it from its own directory."""
    from workloads.loader import is_path

    return (str(Path(name).resolve()) if is_path(name) else name,)


@dataclass(frozen=True)
class Needs:
    """What a mode must have for an option to mean anything: given for a mode without it, the
    option would do nothing, silently, so it is refused."""

    capability: str  # the Mode's boolean (or "sync": not is_async)
    what: str  # the option, said in words: "the sync mode's concurrency"

    def met_by(self, mode: Mode) -> bool:
        return mode.width == "threads" if self.capability == "sync" else bool(getattr(mode, self.capability))


@dataclass(frozen=True)
class Setting:
    name: str  # the Click parameter's name: the Options field it sets, or its own if it sets several
    flag: str  # "--procs"; "--anatomy/--no-anatomy" for an on/off switch
    help: str  # may name {modes} and {workloads}: the registries' names, filled in when the option is made
    fields: dict[str, dict[str, Any]]  # the Options fields it sets, in parse order, each with its .config schema
    type: Any = None  # Click's type; None: text
    default: Any = None  # what the CLI passes when the option is not given
    show_default: bool = False
    multiple: bool = False
    is_flag: bool = False
    envvar: str | None = None
    capacity: bool = True  # False: runner capacity sets it step by step, or cannot use it
    parse: Callable[[Any], tuple[Any, ...]] | None = None  # the typed value -> one value per field
    needs: Needs | None = None  # a capability of the mode; None: any mode

    def option(self) -> click.Option:
        from runner.concurrency import MODES
        from workloads import BUILTINS

        flags: dict[str, Any] = {"is_flag": True} if self.is_flag else {}
        default = False if self.is_flag and self.default is None else self.default  # an unset flag is off, not None
        return click.Option(
            [self.flag, self.name],
            type=self.type,
            default=default,
            show_default=self.show_default,
            multiple=self.multiple,
            envvar=self.envvar,
            help=self.help.format(modes=", ".join(MODES), workloads=", ".join(BUILTINS)),
            **flags,
        )

    def values(self, typed: Any) -> dict[str, Any]:
        """The Options fields this option sets, from its typed (Click-converted) value."""
        parsed = self.parse(typed) if self.parse is not None else (typed,)
        return dict(zip(self.fields, parsed, strict=True))


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "procs",
        "--procs",
        "Worker processes.",
        fields={"procs": {"type": "integer", "minimum": 1}},
        type=int,
        default=1,
        show_default=True,
    ),
    Setting(
        "chunk",
        "--chunk",
        "Ops in flight per worker: gathered at once (chunked) or kept going (window).",
        fields={"chunk": {"type": "integer", "minimum": 1}},
        type=int,
        default=40,
        show_default=True,
        capacity=False,
        needs=Needs("is_async", "the async modes' concurrency"),
    ),
    Setting(
        "ops",
        "--ops",
        "Total ops across all workers  [default: 35000].",
        fields={"ops": {"type": ["integer", "null"], "minimum": 1}},
        type=int,
        capacity=False,
    ),
    Setting(
        "duration_s",
        "--duration",
        "Run for this many seconds instead of --ops.",
        fields={"duration_s": {"type": ["number", "null"]}},
        type=float,
        capacity=False,
    ),
    Setting(
        "warmup",
        "--warmup",
        "Before measuring: ops across all workers (500) or seconds (5s).",
        fields={"warmup_ops": {"type": "integer", "minimum": 0}, "warmup_s": {"type": "number", "minimum": 0}},
        capacity=False,
        parse=parse_warmup,
    ),
    Setting(
        "mode",
        "--mode",
        "How ops are issued: {modes}.",
        fields={"mode": {"enum": list(MODULES)}},  # every registered mode
        default=DEFAULT_MODE,
        show_default=True,
    ),
    Setting(
        "loop",
        "--loop",
        "Async modes: event loop, uvloop or asyncio.",
        fields={"loop": {"enum": ["uvloop", "asyncio"]}},
        default="uvloop",
        show_default=True,
    ),
    Setting(
        "rate_per_s",
        "--rate",
        "Open loop: ops/s across all workers, on a schedule.",
        fields={"rate_per_s": {"type": ["number", "null"]}},
        type=float,
        capacity=False,
    ),
    Setting(
        "arrival",
        "--arrival",
        "Open loop: gaps between ops, uniform or poisson.",
        fields={"arrival": {"enum": ["uniform", "poisson"]}},
        default="uniform",
        show_default=True,
    ),
    Setting(
        "max_inflight",
        "--max-inflight",
        "Open loop: most ops in flight per worker; more are dropped and counted  [default: 1000].",
        fields={"max_inflight": {"type": ["integer", "null"]}},
        type=int,
    ),
    Setting(
        "threads",
        "--threads",
        "Sync mode: threads (and connections) per worker.",
        fields={"threads": {"type": "integer", "minimum": 1}},
        type=int,
        default=1,
        show_default=True,
        capacity=False,
        needs=Needs("sync", "the sync mode's concurrency"),
    ),
    Setting(
        "read_ratio",
        "--read-ratio",
        "Share of ops that are reads.",
        fields={"read_ratio": {"type": "number", "minimum": 0, "maximum": 1}},
        type=float,
        default=0.5,
        show_default=True,
    ),
    Setting(
        "seed",
        "--seed",
        "RNG seed: the same seed gives the same op sequence.",
        fields={"seed": {"type": "integer"}},
        type=int,
    ),
    Setting(
        "workload",
        "--workload",
        "Workload: {workloads}, path/to/file.py, or package.module[:name].",
        fields={"workload": {"type": "string"}},
        default="seed",
        show_default=True,
        parse=_workload,
    ),
    Setting(
        "scale",
        "--scale",
        "Fill the workload's tables before the run: N rows times each table's proportion (N, table=rows or both: "
        "'1000,posts=50000'), by its populate(conn, scale) or a generic filler from its models (COPY).",
        fields={
            "scale": {
                "type": ["integer", "null"],
                "description": "--scale: the unit (a table's rows are its proportion of it); from the first table given when only tables are",
            },
            "scale_tables": {"type": "array", "items": {"type": "array"}, "description": "--scale table=rows: [table, rows] per table given"},
        },
        parse=_scale,
    ),
    Setting(
        "analyze",
        "--analyze/--no-analyze",
        "VACUUM ANALYZE the loaded tables after --scale's load, as pgbench -i does (the planner's statistics of the data, not of empty tables).",
        fields={"analyze": {"type": "boolean", "description": "--analyze (default) / --no-analyze"}},
        default=True,
        show_default=True,
    ),
    Setting(
        "keep_load",
        "--keep-load",
        "Keep the loaded tables on the --dsn server as a template database: a later run of the same tables and --scale clones it, not loading (a sweep loads once).",
        fields={"keep_load": {"type": "boolean", "description": "--keep-load: the load's template database outlives the run"}},
        is_flag=True,
    ),
    Setting(
        "isolation",
        "--isolation",
        "Every worker session's transaction isolation (default_transaction_isolation)  [default: the server's].",
        fields={"isolation": {"enum": [None, "read-committed", "repeatable-read", "serializable"], "description": "--isolation; null: the server's default"}},
        type=click.Choice(["read-committed", "repeatable-read", "serializable"]),
    ),
    Setting(
        "retries",
        "--retries",
        "Re-run an op that failed with a serialization failure or deadlock (40001, 40P01) up to N times.",
        fields={"retries": {"type": "integer", "description": "--retries"}},
        type=int,
        default=0,
        show_default=True,
    ),
    Setting(
        "think",
        "--think",
        ("Closed modes: pause each lane (an op in flight) this long between one op's end and its next (100ms), or exp:100ms (exponential, that mean); not in latency."),
        fields={
            "think_s": {
                "type": "number",
                "description": "--think in seconds (0: none): the pause per lane (an op in flight) between one op's end and the next op's start; the mean with exp",
            },
            "think_dist": {"enum": ["fixed", "exp"], "description": "--think's kind: fixed pauses, or exponential with mean think_s"},
        },
        capacity=False,
        parse=parse_think,
    ),
    Setting(
        "keys",
        "--keys",
        "How ops pick existing rows (tpcb, point-select, your ctx.keys.pick(n)): uniform, zipf[:THETA], hotspot[:FRACTION:PROB], latest.",
        fields={"keys": {"type": "string", "description": "--keys as parsed: uniform, zipf:THETA, hotspot:FRACTION:PROBABILITY or latest"}},
        default="uniform",
        show_default=True,
    ),
    Setting(
        "only",
        "--only",
        "Run only these ops of the workload, comma-separated (e.g. 'feed,search'), as Locust's --tags; --read-ratio picks among those.",
        fields={"only": {"type": "array", "items": {"type": "string"}, "description": "--only: the ops that run; empty: all of them"}},
        parse=lambda text: (tuple(name.strip() for name in text.split(",") if name.strip()) if text else (),),
    ),
    Setting(
        "layer",
        "--layer",
        "orm, core or raw: the same SQL through the ORM, SQLAlchemy Core, or the driver.",
        fields={"layer": {"enum": ["orm", "core", "raw"]}},
        default="orm",
        show_default=True,
    ),
    Setting(
        "driver",
        "--driver",
        "asyncpg or psycopg (async modes); psycopg2 or psycopg (sync)  [default: asyncpg / psycopg2].",
        fields={"driver": {"enum": ["asyncpg", "psycopg", "psycopg2", None]}},
    ),
    Setting(
        "dsn",
        "--dsn",
        "PostgreSQL DSN (default: $DATABASE_URL; neither: a throwaway embedded server).",
        fields={
            "dsn": {
                "description": (
                    "--dsn (or DATABASE_URL) with every secret masked as ***: the user part's password, ?password= and ?sslpassword=; null on the embedded server"
                ),
                "type": ["string", "null"],
            },
        },
        envvar="DATABASE_URL",
    ),
    Setting(
        "output",
        "--output",
        "Also write the JSON document to this file (atomically).",
        fields={"output": {"type": ["string", "null"]}},
    ),
    Setting(
        "interval_s",
        "--interval",
        "Seconds per interval record.",
        fields={"interval_s": {"type": "number", "exclusiveMinimum": 0}},
        type=float,
        default=1.0,
        show_default=True,
    ),
    Setting(
        "pg_settings",
        "--pg-setting",
        "name=value, repeatable: a server setting for the embedded server, or a session setting on --dsn.",
        fields={"pg_settings": {"type": "array", "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}}},
        multiple=True,
        parse=lambda values: (parse_pg_settings(values),),
    ),
    Setting(
        "pool_size",
        "--pool-size",
        "Pool size per worker  [default: the worker's concurrency].",
        fields={"pool_size": {"type": ["integer", "null"]}},
        type=int,
    ),
    Setting(
        "max_overflow",
        "--max-overflow",
        "Connections a pool may open beyond its size.",
        fields={"max_overflow": {"type": "integer", "minimum": 0}},
        type=int,
        default=0,
        show_default=True,
    ),
    Setting(
        "pool_timeout_s",
        "--pool-timeout",
        "Seconds an op waits for a pooled connection before it fails.",
        fields={"pool_timeout_s": {"type": "number"}},
        type=float,
        default=600.0,
        show_default=True,
    ),
    Setting(
        "grace_s",
        "--grace",
        "Seconds in-flight ops get to finish after a stop.",
        fields={"grace_s": {"type": "number", "minimum": 0}},
        type=float,
        default=10.0,
        show_default=True,
    ),
    Setting(
        "op_timeout_s",
        "--op-timeout",
        "Cancel a statement after this many seconds (statement_timeout).",
        fields={"op_timeout_s": {"type": ["number", "null"]}},
        type=float,
    ),
    Setting(
        "max_errors",
        "--max-errors",
        "End the run early after this many failed ops (100) or this share of them (5%).",
        fields={"max_errors": {"type": ["integer", "null"]}, "max_error_ratio": {"type": ["number", "null"]}},
        parse=parse_max_errors,
    ),
    Setting(
        "repeat",
        "--repeat",
        "Run the same configuration N times; report min/median/max.",
        fields={"repeat": {"type": "integer", "minimum": 1}},
        type=int,
        default=1,
        show_default=True,
        capacity=False,
    ),
    Setting(
        "anatomy",
        "--anatomy/--no-anatomy",
        "Per op type: statements and rows per op, pool wait, database time and Python time (README: what it costs).",
        fields={"anatomy": {"type": "boolean", "description": "--anatomy (default) / --no-anatomy"}},
        default=True,
        show_default=True,
    ),
    Setting(
        "exemplars",
        "--exemplars",
        "Keep the N slowest ops per op type with their statements and parameters (.exemplars; see `runner explain`).",
        fields={"exemplars": {"type": "integer", "minimum": 0, "description": "--exemplars N (0: none kept)"}},
        type=int,
        default=0,
        show_default=True,
    ),
    Setting(
        "stages",
        "--stages",
        "Steps of DURATION:TARGET, e.g. '30s:100/s,ramp:60s:400/s,30s:100/s' (open-loop rate) or '30s:10,30s:40' (window ops in flight).",
        fields={
            "stage_kind": {
                "enum": ["rate", "concurrency", None],
                "description": "what the --stages targets are: rate (ops/s across workers) or concurrency (ops in flight per worker)",
            },
            "stages": {"type": "array", "items": {"type": "array"}, "description": "--stages: [kind (hold|ramp), seconds, target] per step"},
        },
        capacity=False,
        parse=_stages,
    ),
    Setting(
        "checks",
        "--check",
        "Repeatable pass/fail condition over the run's figures, e.g. 'read.p99 < 50ms' or 'ops_per_s >= 800' (exit 7 if one fails).",
        fields={"checks": {"type": "array", "items": {"type": "string"}, "description": "--check expressions"}},
        multiple=True,
        capacity=False,
    ),
    Setting(
        "save_baseline",
        "--save-baseline",
        "Keep this run's document as baseline NAME for this machine (pytest-benchmark's --benchmark-save), in --baseline-dir.",
        fields={"save_baseline": {"type": ["string", "null"], "description": "--save-baseline NAME (null: not saved)"}},
        capacity=False,
    ),
    Setting(
        "baseline",
        "--baseline",
        "Compare this run with baseline NAME (saved by --save-baseline): rows in .baseline, and each --fail-if judged (exit 7).",
        fields={"baseline": {"type": ["string", "null"], "description": "--baseline NAME (null: none compared)"}},
        capacity=False,
    ),
    Setting(
        "fail_if",
        "--fail-if",
        "Repeatable, with --baseline: fail when this run is past this change from it, e.g. '*.statements_per_op > +0' or 'ops_per_s < -5%'.",
        fields={"fail_if": {"type": "array", "items": {"type": "string"}, "description": "--fail-if expressions against --baseline"}},
        multiple=True,
        capacity=False,
    ),
    Setting(
        "baseline_dir",
        "--baseline-dir",
        "Where baselines are kept, one folder per machine  [default: $RUNNER_BASELINE_DIR, else .runner/baselines].",
        fields={"baseline_dir": {"type": ["string", "null"], "description": "--baseline-dir (null: $RUNNER_BASELINE_DIR or .runner/baselines)"}},
        envvar="RUNNER_BASELINE_DIR",
        capacity=False,
    ),
    Setting(
        "prometheus_port",
        "--prometheus-port",
        "Serve the run's live metrics for Prometheus on 127.0.0.1:PORT/metrics (needs the prometheus extra).",
        fields={"prometheus_port": {"type": ["integer", "null"], "description": "--prometheus-port (null: no live metrics)"}},
        type=int,
        capacity=False,
    ),
    Setting(
        "prometheus_linger_s",
        "--prometheus-linger",
        "Keep the --prometheus-port endpoint up this many seconds after the run, so the last scrape sees its end.",
        fields={"prometheus_linger_s": {"type": "number", "minimum": 0, "description": "--prometheus-linger, seconds (0: closed when the run ends)"}},
        type=float,
        default=0.0,
        capacity=False,
    ),
    Setting(
        "prepare",
        "--prepare",
        ("Server-side prepared statements: psycopg 3 prepares after 5 executions (auto), never, or at once (always); asyncpg: never = --statement-cache off."),
        fields={"prepare": {"enum": ["auto", "never", "always"], "description": "--prepare (never when --statement-cache off)"}},
        type=click.Choice(["auto", "never", "always"]),
        default="auto",
        show_default=True,
    ),
    Setting(
        "statement_cache",
        "--statement-cache",
        "Prepared-statement cache of the driver; off for a transaction pooler (PgBouncer pool_mode=transaction).",
        fields={"statement_cache": {"type": "boolean"}},
        type=click.Choice(["on", "off"]),
        default="on",
        show_default=True,
        parse=lambda text: (text == "on",),
    ),
    Setting(
        "max_client_connections",
        "--max-client-connections",
        ("Connections the server side accepts from the workers, for the preflight (a pooler's max_client_conn)  [default: the server's free connections]."),
        fields={"max_client_connections": {"type": ["integer", "null"], "minimum": 1}},
        type=int,
    ),
    Setting(
        "cluster",
        "--cluster",
        "Where workers run: local processes; ray (a private local Ray instance); ray:auto or ray:HOST:PORT (join a Ray cluster). Needs runner[ray].",
        fields={"cluster": {"type": "string"}},
        default="local",
        show_default=True,
    ),
    Setting(
        "wait_for_lock",
        "--wait-for-lock",
        "If another run uses the same database's schema, wait for it instead of refusing.",
        fields={"wait_for_lock": {"type": "boolean"}},
        is_flag=True,
    ),
    Setting(
        "quiet",
        "--quiet",
        "No progress line and no human summary on stderr.",
        fields={"quiet": {"type": "boolean"}},
        is_flag=True,
    ),
    Setting(
        "jsonl",
        "--jsonl",
        "Stream each interval as a JSON line on stdout, then the document as one line.",
        fields={"jsonl": {"type": "boolean"}},
        is_flag=True,
        capacity=False,
    ),
    Setting(
        "debug",
        "--debug",
        "Show tracebacks for unexpected errors, and each step of the run as it happens (start, release, stop, each worker's end).",
        fields={"debug": {"type": "boolean"}},
        is_flag=True,
    ),
)


def click_options(capacity: bool = False, without: frozenset[str] = frozenset()) -> list[click.Option]:
    """The main command's options, in the table's order; `capacity`: runner capacity's share
    (runner advise's too, `without` those it decides itself)."""
    return [setting.option() for setting in SETTINGS if (setting.capacity or not capacity) and setting.name not in without]


def to_options(values: dict[str, Any], **overrides: Any) -> Options:
    """Options from the Click values of these settings (by parameter name), each parsed into its
    fields; `overrides` are fields a command sets itself (runner capacity's rate, length, warm-up).
    A setting the command does not take leaves its fields at Options' defaults."""
    from runner.spec import Options

    fields: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name in values:
            fields.update(setting.values(values[setting.name]))
    return Options(**{**fields, **overrides})


def config_schema() -> dict[str, Any]:
    """`.config`'s JSON schema: every Options field, as the table describes it."""
    properties = {name: schema for setting in SETTINGS for name, schema in setting.fields.items()}
    return {"type": "object", "additionalProperties": False, "required": list(properties), "properties": properties}


def refuse_unneeded(mode_name: str, given: Callable[[str], bool]) -> None:
    """UsageError for an option given (not defaulted) to a mode it means nothing to."""
    from runner.concurrency import MODES
    from runner.errors import UsageError

    mode = MODES[mode_name]
    for setting in SETTINGS:
        if setting.needs is not None and given(setting.name) and not setting.needs.met_by(mode):
            own = f"--{mode.width}" if mode.width else "--rate" if mode.takes_rate else "none of its own"
            raise UsageError(f"{setting.flag} is {setting.needs.what}; --mode {mode_name} has none (its own is {own})")


def reference() -> str:
    """docs/options.md: every option, its default and what it does."""
    rows = ["| option | default | what it does | sets in `.config` | `runner capacity` |", "|---|---|---|---|---|"]
    for setting in SETTINGS:
        option = setting.option()
        default = "" if setting.is_flag or setting.default in (None, ()) else f"`{setting.default}`"
        env = f" (or `${setting.envvar}`)" if setting.envvar else ""
        text = str(option.help).replace("|", "\\|")
        fields = ", ".join(f"`{name}`" for name in setting.fields)
        rows.append(f"| `{setting.flag}`{env} | {default} | {text} | {fields} | {'takes it' if setting.capacity else 'sets it itself'} |")
    return (
        "# Options\n\n"
        "Every option of `python -m runner`, and whether `runner capacity` takes it (it sets the load and the "
        "length itself, step by step). Generated from `runner/settings.py` by `python -m runner.settings`; "
        "the result document's `.config` reports each option as the fields it sets.\n\n" + "\n".join(rows) + "\n"
    )


SCHEMA_FILE = Path(__file__).resolve().parent.parent / "docs" / "output.schema.json"
REFERENCE_FILE = SCHEMA_FILE.parent / "options.md"


def write_files() -> None:
    """`python -m runner.settings`: the schema's `.config` section and docs/options.md, from the table."""
    import json

    schema = json.loads(SCHEMA_FILE.read_text())
    schema["properties"]["config"] = config_schema()
    SCHEMA_FILE.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
    REFERENCE_FILE.write_text(reference())


if __name__ == "__main__":
    write_files()
