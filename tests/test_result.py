"""A run's document, typed where the analysis reads it (runner/result.py), on golden documents
written by real runs (tests/fixtures): no database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.analysis.compare import compare
from runner.errors import UsageError
from runner.resolve import resolve
from runner.result import ANATOMY_COUNTS, ANATOMY_PARTS, OP_COUNTS, QUANTILES, RUN_FIGURES, Result, Spread, is_figure, load
from runner.spec import Options

FIXTURES = Path(__file__).parent / "fixtures"
ONE, REPEATED = FIXTURES / "run-seed-200.json", FIXTURES / "run-seed-200-repeat3.json"


def _doc(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _every_figure(ops: tuple[str, ...]) -> list[str]:
    per_op = [*OP_COUNTS, *QUANTILES, *ANATOMY_COUNTS, *(f"{part}.{q}" for part in ANATOMY_PARTS for q in QUANTILES)]
    return [*RUN_FIGURES, *(f"{op}.{figure}" for op in ops for figure in per_op)]


def test_every_figure_the_grammar_names_is_read_from_a_real_document() -> None:
    result = Result.from_dict(_doc(ONE), "one")
    assert result.ops == ("read", "write")
    for name in _every_figure(result.ops):
        assert is_figure(name, result.ops), name
        assert isinstance(result.figure(name), float), name
    totals = result.doc["totals"]
    assert result.figure("ops_per_s") == totals["ops_per_s"] and result.figure("connections.peak") == totals["connections"]["server_peak"]
    assert result.figure("read.p99") == totals["by_op"]["read"]["latency_ms"]["p99"]
    assert result.figure("write.db.p50") == totals["by_op"]["write"]["anatomy"]["db_ms"]["p50"]
    assert result.figure("nosuch.p99") is None and not is_figure("nosuch.p99", result.ops) and not is_figure("read.p98", result.ops)


def test_the_spread_over_repeated_runs_and_none_for_one_run() -> None:
    one, repeated = Result.from_dict(_doc(ONE)), Result.from_dict(_doc(REPEATED))
    assert one.runs == 1 and one.spread("ops_per_s") is None
    assert repeated.runs == 3
    ops_per_s = repeated.doc["repeat"]["ops_per_s"]
    assert repeated.spread("ops_per_s") == Spread(ops_per_s["min"], ops_per_s["median"], ops_per_s["max"])
    p99 = repeated.doc["repeat"]["by_op"]["write"]["p99"]
    assert repeated.spread("write.p99") == Spread(p99["min"], p99["median"], p99["max"])
    errors = sorted(run["errors"] for run in repeated.doc["repeat"]["per_run"])
    assert repeated.spread("errors") == Spread(errors[0], errors[1], errors[2])
    assert repeated.spread("read.p90") is None  # --repeat keeps p50 and p99 per run


def test_the_options_that_made_a_run_resolve_to_its_config_again() -> None:
    """.config read back is the Options that, resolved, make the same .config: a result says what
    to run again (a gate re-running a baseline, an advisor varying one option)."""
    for path in (ONE, REPEATED):
        doc = _doc(path)
        options = Result.from_dict(doc).options
        assert isinstance(options, Options) and options.ops == 200 and options.seed == 7
        again = json.loads(json.dumps(resolve(options).to_report()))
        assert again == doc["config"]


def test_what_is_not_a_run_document_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="junk is not a run's result document"):
        Result.from_dict({"hello": 1}, "junk")
    with pytest.raises(UsageError, match="schema-version-99 document; this runner reads 1"):
        Result.from_dict({**_doc(ONE), "schema_version": 99}, "future")
    both = tmp_path / "both.json"
    both.write_text(ONE.read_text() + REPEATED.read_text())  # appended with >>
    assert [r.name for r in load([str(both)])] == [f"{both}:1", f"{both}:{ONE.read_text().count(chr(10)) + 1}"]
    assert Result.from_dict(_doc(ONE)).dump() == _doc(ONE)


def test_a_result_compared_with_itself_changes_nothing() -> None:
    repeated = Result.from_dict(_doc(REPEATED))
    rows = compare(repeated, repeated)
    assert rows and all(row["delta_pct"] in (0.0, None) for row in rows)
    assert all(row["significant"] is False for row in rows)
