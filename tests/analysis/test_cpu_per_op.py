"""CPU per op, each side: `.totals.client_cpu_ms_per_op` and `.server_cpu_ms_per_op` as figures."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from runner.analysis.compare import compare
from runner.result import Result
from tests.conftest import run_cli, run_runner


@pytest.mark.system
def test_cpu_per_op_is_measured_checked_spread_and_compared(tmp_path: Path) -> None:
    """On the embedded server (its processes' CPU is visible); two runs for a spread."""
    output = tmp_path / "run.json"
    result = run_runner(
        "--workload", "seed", "--ops", "300", "--repeat", "2", "--output", str(output),
        "--check", "client_cpu_ms_per_op < 10s", "--check", "server_cpu_ms_per_op > 0",
    )
    assert result.code == 0 and result.doc is not None, result.stderr
    totals = result.doc["totals"]
    assert 0 < totals["client_cpu_ms_per_op"] < 10_000 and 0 < totals["server_cpu_ms_per_op"] < 10_000
    spread = result.doc["repeat"]["client_cpu_ms_per_op"]
    assert spread["min"] <= spread["median"] <= spread["max"] and result.doc["repeat"]["server_cpu_ms_per_op"] is not None
    assert all(check["pass"] for check in result.doc["checks"])
    assert "ms/op), server CPU" in result.stderr
    rows = {row["figure"]: row for row in json.loads(run_cli("compare", str(output), str(output)).stdout)["rows"]}
    assert rows["client_cpu_ms_per_op"]["verdict"].startswith("within the spread") and "server_cpu_ms_per_op" in rows


def test_a_figure_one_side_does_not_know_is_no_row() -> None:
    base = {
        "schema_version": 1, "complete": True, "config": {}, "repeat": None,
        "totals": {"ops_per_s": 10.0, "wall_s": 1.0, "errors": 0, "ops": 10, "ok": 10, "connections": {"server_peak": 2},
                   "client_cpu_ms_per_op": 1.5, "server_cpu_ms_per_op": 0.5, "by_op": {}},
    }
    other = copy.deepcopy(base)
    other["totals"]["server_cpu_ms_per_op"] = None  # run against a --dsn server
    figures = {row["figure"] for row in compare(Result(base), Result(other))}
    assert "client_cpu_ms_per_op" in figures and "server_cpu_ms_per_op" not in figures
