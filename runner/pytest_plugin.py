"""A pytest plugin (installed with the package, entry point `pytest11`): run a workload on the
embedded server from a team's own test suite and assert on the result.

    def test_reads_stay_fast(runner_run):
        result = runner_run(workload="myapp.bench:bench", ops=2000, chunk=20, check=["read.p99 < 50ms"])
        result.assert_checks()  # fails listing every check that did not hold
        assert result.errors == 0

`runner_server` (session scope) is one embedded PostgreSQL for the whole test session, removed at
its end; `runner_run` runs `python -m runner` against it in a subprocess (the run's own signal
handlers and worker processes stay out of pytest's) and returns a `RunResult`.

`pytest --runner-save-baseline NAME` keeps every run as baseline NAME/<test>; `pytest
--runner-baseline NAME --runner-fail-if EXPR` judges each against its own (runner.analysis.baselines).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from runner.result import Result

RUN_TIMEOUT_S = 600


@dataclass(frozen=True)
class OpResult:
    """One op type's figures, latencies in milliseconds (`.totals.by_op.<op>`)."""

    ops: int
    ok: int
    errors: int
    ops_per_s: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def from_summary(cls, op: dict[str, Any]) -> OpResult:
        latency = op["latency_ms"]
        return cls(
            op["ops"], op["ok"], op["errors"], op["ops_per_s"],
            latency["mean"], latency["p50"], latency["p90"], latency["p99"], latency["max"],
        )


@dataclass(frozen=True)
class RunResult:
    """A finished run: its exit code, its whole document, and the figures most tests want."""

    exit_code: int
    doc: dict[str, Any]
    stderr: str

    @property
    def complete(self) -> bool:
        return bool(self.doc["complete"])

    @property
    def result(self) -> Result:
        """The document typed (runner.result): figures by the --check names, spreads, options."""
        return Result(self.doc)

    def figure(self, name: str) -> float | None:
        """A figure by its --check name: `run.figure("read.p99") < 50`, `run.figure("write.statements_per_op")`."""
        return self.result.figure(name)

    @property
    def ops_per_s(self) -> float:
        return float(self.result.figure("ops_per_s") or 0.0)

    @property
    def errors(self) -> int:
        return int(self.result.figure("errors") or 0)

    @property
    def failed_checks(self) -> list[dict[str, Any]]:
        """The `check=[...]` results that did not hold (`.checks` entries: check, value, pass)."""
        return [check for check in self.doc.get("checks") or [] if not check["pass"]]

    @property
    def baseline(self) -> dict[str, Any] | None:
        """`.baseline`: the run compared with a stored one (`baseline=NAME` or --runner-baseline)."""
        return self.doc.get("baseline")

    def assert_checks(self) -> None:
        """AssertionError unless the run completed, every check held and every --fail-if against
        a baseline held; its message lists what failed, as the runner's stderr says it."""
        from runner.analysis import baselines
        from runner.analysis.checks import failed_lines

        problems = [] if self.complete else [f"the run is incomplete: {self.doc['stop_reason']}"]
        problems += failed_lines(self.failed_checks, median=self.result.runs > 1)
        problems += baselines.failed_lines(self.doc)
        if problems:
            raise AssertionError("runner: " + "; ".join(problems))

    @property
    def by_op(self) -> dict[str, OpResult]:
        return {name: OpResult.from_summary(op) for name, op in self.doc["totals"]["by_op"].items()}


def _flags(options: dict[str, Any]) -> list[str]:
    """`ops=200, layer="raw", check=["errors == 0"], quiet=True` -> `--ops 200 --layer raw --check ... --quiet`."""
    args: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, list | tuple):
            for item in value:
                args += [flag, str(item)]
        else:
            args += [flag, str(value)]
    return args


def run_workload(dsn: str, **options: Any) -> RunResult:
    """`python -m runner` with these options against `dsn`; a run that printed no document fails the test."""
    from runner.dsn import child_env

    proc = subprocess.run(
        [sys.executable, "-m", "runner", *_flags({"quiet": True, **options})],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=child_env(dsn),  # the DSN holds the server's password
    )
    if not proc.stdout.strip():
        pytest.fail(f"runner printed no result (exit {proc.returncode}): {proc.stderr.strip()}", pytrace=False)
    return RunResult(proc.returncode, json.loads(proc.stdout), proc.stderr)


@pytest.fixture(scope="session")
def runner_server() -> Iterator[Any]:
    """One embedded PostgreSQL for the test session (`.dsn`), removed however the session ends."""
    from runner.server.embedded import start_embedded

    server = start_embedded()
    try:
        yield server
    finally:
        server.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    """pytest-benchmark's store, for every runner_run of the session: each run is saved or compared
    under NAME/<its test>."""
    group = parser.getgroup("runner", "runner: SQLAlchemy workloads against PostgreSQL")
    group.addoption("--runner-save-baseline", metavar="NAME", help="Save every runner_run as baseline NAME/<test> (its --save-baseline).")
    group.addoption("--runner-baseline", metavar="NAME", help="Compare every runner_run with baseline NAME/<test>; assert_checks fails on a --runner-fail-if.")
    group.addoption("--runner-fail-if", metavar="EXPR", action="append", default=[], help="Repeatable, with --runner-baseline: e.g. '*.statements_per_op > +0'.")
    group.addoption("--runner-baseline-dir", metavar="DIR", help="Where baselines are kept  [default: $RUNNER_BASELINE_DIR, else .runner/baselines].")


def baseline_key(nodeid: str, call: int) -> str:
    """A test's part of a baseline's name: `tests/test_db.py::test_feed[x]` -> `tests-test_db.py-test_feed-x`;
    a test's second runner_run gets `-2`."""
    key = re.sub(r"[^\w.\-]+", "-", nodeid).strip("-.") or "test"
    return key + (f"-{call}" if call > 1 else "")


def _store_options(config: pytest.Config, nodeid: str, call: int) -> dict[str, Any]:
    """The run options the session's --runner-* give this test's run."""
    save, compare = config.getoption("runner_save_baseline"), config.getoption("runner_baseline")
    key = baseline_key(nodeid, call)
    options: dict[str, Any] = {"baseline_dir": config.getoption("runner_baseline_dir")}
    if save:
        options["save_baseline"] = f"{save}/{key}"
    if compare:
        options["baseline"] = f"{compare}/{key}"
        options["fail_if"] = list(config.getoption("runner_fail_if"))
    return options


@pytest.fixture
def runner_run(runner_server: Any, request: pytest.FixtureRequest) -> Callable[..., RunResult]:
    """`runner_run(workload=..., ops=..., **any option)` -> RunResult, on the session's server, or
    on another one with `dsn=...` (which, like the server's own, goes in DATABASE_URL). With
    --runner-save-baseline / --runner-baseline, each call is saved or compared under NAME/<test>;
    options given to the call win."""
    calls = 0

    def run(dsn: str | None = None, **options: Any) -> RunResult:
        nonlocal calls
        calls += 1
        stored = _store_options(request.config, request.node.nodeid, calls)
        return run_workload(dsn or runner_server.dsn, **{**stored, **options})

    return run
