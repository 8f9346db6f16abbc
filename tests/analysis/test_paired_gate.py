"""compare --run's paired verdicts on the golden document, its rounds made by hand: a slowdown
the interval puts past the threshold fails, an A/A passes, a wide interval can't tell; and one
real gate of two checkouts, judged on what cannot flake (a count)."""

from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runner.analysis.paired_gate import Gate, exit_code, judge, judged_line, paired_rows
from runner.errors import ExitCode
from runner.result import Result
from tests.conftest import run_cli, run_runner

GOLDEN = json.loads((Path(__file__).parent.parent / "fixtures" / "run-seed-200.json").read_text())


def _round(rate: float, p50: float) -> Result:
    doc: dict[str, Any] = copy.deepcopy(GOLDEN)
    doc["totals"]["ops_per_s"] = rate
    doc["totals"]["wall_s"] = 200 / rate
    for op in doc["totals"]["by_op"].values():
        op["latency_ms"]["p50"] = p50
    return Result.from_dict(doc)


def _gate(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> Gate:
    return Gate([_round(*x) for x in a], [_round(*x) for x in b])


# Six rounds whose machine drifts by ±20 % from one round to the next, alike for both sides.
DRIFT = [1.0, 0.8, 1.2, 0.9, 1.1, 0.85]


def _drifting(factor: float, jitter: list[float]) -> list[tuple[float, float]]:
    return [(1000 * d * factor * j, 10 / (d * factor * j)) for d, j in zip(DRIFT, jitter, strict=True)]


def _verdicts(gate: Gate, *texts: str) -> tuple[list[dict[str, Any]], ExitCode]:
    rows = paired_rows(gate.a, gate.b)
    judged = judge(texts, rows, gate.a[-1], gate.b[-1])
    return judged, exit_code(gate, judged)


def test_a_slowdown_past_the_threshold_fails_through_the_machines_drift() -> None:
    """A 10 % slowdown under a 20 % drift between rounds: independent repeats overlap, the
    paired ratio does not."""
    gate = _gate(_drifting(1.0, [1.0, 1.01, 0.99, 1.0, 1.005, 0.995]), _drifting(0.9, [0.995, 1.0, 1.01, 0.99, 1.0, 1.005]))
    judged, code = _verdicts(gate, "ops_per_s < -5%", "read.p50 > +5%")
    assert code == ExitCode.CHECKS and all(j["fail"] and j["decided"] for j in judged)
    throughput = judged[0]
    assert throughput["low_pct"] < -10 < throughput["high_pct"] < -5  # -10 % inside, the whole interval past -5 %
    assert judged_line(throughput, 6).startswith("ops_per_s < -5%: ops/s changed -10.0% [")


def test_an_a_a_comparison_passes() -> None:
    gate = _gate(_drifting(1.0, [1.0, 1.01, 0.99, 1.0, 1.005, 0.995]), _drifting(1.0, [0.995, 1.0, 1.01, 0.99, 1.0, 1.005]))
    judged, code = _verdicts(gate, "ops_per_s < -5%", "read.p50 > +5%", "*.statements_per_op > +0")
    assert code == ExitCode.OK and all(j["decided"] and not j["fail"] for j in judged)


def test_an_interval_that_straddles_the_threshold_cannot_tell_and_does_not_pass() -> None:
    gate = _gate(_drifting(1.0, [1.0, 1.1, 0.9, 1.0, 1.08, 0.93]), _drifting(0.96, [0.9, 1.1, 1.05, 0.92, 1.0, 1.06]))
    judged, code = _verdicts(gate, "ops_per_s < -5%")
    assert code == ExitCode.INCOMPLETE and not judged[0]["fail"] and not judged[0]["decided"]
    assert "can't tell: ops/s changed" in judged_line(judged[0], 6) and "straddles the threshold; run more --rounds" in judged_line(judged[0], 6)


def test_a_count_is_judged_without_an_interval() -> None:
    b = [_round(1000, 10) for _ in range(3)]
    for result in b:
        result.doc["totals"]["by_op"]["read"]["anatomy"]["statements_per_op"] *= 2
    gate = Gate([_round(1000, 10) for _ in range(3)], b)
    judged, code = _verdicts(gate, "read.statements_per_op > +0%")
    assert code == ExitCode.CHECKS and judged[0]["fail"] and judged[0]["low_pct"] is None


BENCH = """
from sqlalchemy import MetaData, text
from workloads import SCHEMA, workload

bench = workload("gate", MetaData(schema=SCHEMA))


@bench.read()
async def lookup(ctx):
    async with ctx.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        {extra}
"""


@pytest.mark.system
def test_two_checkouts_in_paired_rounds(dsn: str, tmp_path: Path) -> None:
    """A pull request that adds a statement to the op: the count fails it on any machine load,
    whatever the timings' intervals say."""
    for side, extra in (("base", "pass"), ("pr", 'await conn.execute(text("SELECT 2"))')):
        (tmp_path / side).mkdir()
        (tmp_path / side / "gatebench.py").write_text(textwrap.dedent(BENCH.format(extra=extra)))
    result = run_runner(
        "compare", "--run", str(tmp_path / "base"), str(tmp_path / "pr"), "--rounds", "2", "--fail-if", "*.statements_per_op > +0",
        "--fail-if", "ops_per_s < -50%", "--workload", "gatebench:bench", "--ops", "200", "--seed", "1", dsn=dsn,
    )
    assert result.code == 7, result.stderr
    doc = result.doc
    assert doc is not None and doc["paired"] and doc["rounds"] == 2 and doc["complete"]
    rows = {row["figure"]: row for row in doc["rows"]}
    assert rows["lookup.statements_per_op"]["a"] == 1 and rows["lookup.statements_per_op"]["b"] == 2
    assert rows["ops_per_s"]["low_pct"] <= rows["ops_per_s"]["delta_pct"] <= rows["ops_per_s"]["high_pct"]
    assert "runner: round 2 of 2 (B A)" in result.stderr
    assert "compare failed: *.statements_per_op > +0: lookup statements_per_op changed +100.0%" in result.stderr


def test_run_options_without_run_are_refused() -> None:
    result = run_cli("compare", "a.json", "b.json", "--ops", "10")
    assert result.code == 2 and "'--ops' after A and B: run options need --run" in result.stderr


@pytest.mark.parametrize(("args", "said"), [(["--output", "x.json"], "--output is the gate's own"), (["--rounds", "1"], "--rounds must be at least 2")])
def test_the_gates_own_options_are_refused_in_a_round(tmp_path: Path, args: list[str], said: str) -> None:
    result = run_cli("compare", "--run", str(tmp_path), str(tmp_path), *args)
    assert result.code == 2 and said in result.stderr and result.stderr.count("\n") == 1, result.stderr
