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
from runner.result import ANATOMY_COUNTS, ANATOMY_PARTS, CPU_PER_OP, OP_COUNTS, QUANTILES, RUN_FIGURES, Result, Spread, is_figure, load
from runner.spec import Options, option_values
from tests.conftest import run_cli

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
    assert result.figure("nosuch.p99") is None and not is_figure("nosuch.p99", result.ops) and not is_figure("read.q98", result.ops)
    assert is_figure("read.p98", result.ops) and result.figure("read.p98") is None  # any percentile; this run computed none


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
        added = {name: again.pop(name) for name in set(again) - set(doc["config"])}  # options newer than the golden file
        defaults = json.loads(json.dumps(option_values(Options())))
        assert again == doc["config"] and added == {name: defaults[name] for name in added}  # each at its default


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
    # The fixture predates `.repeat`'s CPU spreads (null: not known per run): those rows cannot tell.
    unknown = {row["figure"] for row in rows if row["significant"] is None}
    assert unknown == set(CPU_PER_OP) and all(row["significant"] is False for row in rows if row["figure"] not in unknown)


def _with_read_statements(doc: dict[str, Any], per_op: float, repeated: float) -> dict[str, Any]:
    """The document as if its read op sent `per_op` statements, one of them `repeated` times per op
    (what a lost joinedload does to a feed)."""
    changed = json.loads(json.dumps(doc))
    anatomy = changed["totals"]["by_op"]["read"]["anatomy"]
    anatomy["statements_per_op"] = per_op
    anatomy["most_repeated"] = {"statement": "SELECT runner.b.id FROM runner.b WHERE runner.b.a_id = $1", "per_op": repeated, "per_try": repeated}
    return changed


def test_a_doubled_statement_count_fails_the_gate_without_any_repeat(tmp_path: Path) -> None:
    base, pr = tmp_path / "base.json", tmp_path / "pr.json"
    base.write_text(json.dumps(_doc(ONE)))
    pr.write_text(json.dumps(_with_read_statements(_doc(ONE), 3.7, 2.0)))
    failed = run_cli("compare", str(base), str(pr), "--fail-if", "read.statements_per_op > +0%")
    assert failed.code == 7, failed.stderr
    line = next(text for text in failed.stderr.splitlines() if "compare failed" in text)
    assert "read statements_per_op changed +100.1%" in line and "2 per op" in line and "WHERE runner.b.a_id" in line
    assert run_cli("compare", str(base), str(pr), "--fail-if", "*.statements_per_op > +1").code == 7  # +1.85 statements
    assert run_cli("compare", str(base), str(pr), "--fail-if", "*.statements_per_op > +2").code == 0
    same = run_cli("compare", str(base), str(base), "--fail-if", "*.statements_per_op > +0", "--fail-if", "*.rows_per_op > +0%")
    assert same.code == 0 and same.doc is not None and len(same.doc["fail_if"]) == 2 * len(Result(_doc(ONE)).ops)


def test_a_count_gate_is_refused_where_it_means_nothing(tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    base.write_text(json.dumps(_doc(ONE)))
    for text, needle in (("ops_per_s < -5", "write FIGURE"), ("*.p99 > +5%", "unknown figure"), ("read.rows > +0", "unknown figure")):
        result = run_cli("compare", str(base), str(base), "--fail-if", text)
        assert result.code == 2 and needle in result.stderr and result.stderr.count("\n") == 1, result.stderr


def _as(doc: dict[str, Any], name: str, **config: Any) -> Result:
    return Result({**doc, "config": {**doc["config"], **config}}, name)


def test_a_sync_sweep_is_drawn_against_its_threads_not_the_unused_chunk() -> None:
    from runner.analysis.plots import axis, varied

    one = _doc(ONE)
    sweep = [_as(one, f"run{n}", mode="sync", threads=n, chunk=40, driver="psycopg2") for n in (1, 2, 4)]
    assert varied(sweep) == ["width"]
    name, label, x = axis(sweep)
    assert name == "width" and "--threads" in label and [x(r) for r in sweep] == [1.0, 2.0, 4.0]
    # A -g axis of its own (the pool), with the driver beside it: the pool is the x axis, the driver a line each.
    grid = [_as(one, f"{d}-{p}", pool_size=p, driver=d) for d in ("asyncpg", "psycopg") for p in (5, 10)]
    assert varied(grid) == ["driver", "pool_size"]
    assert axis(grid)[0] == "pool_size" and "--pool-size" in axis(grid)[1]
    assert axis([_as(one, "a"), _as(one, "b")])[0] == "run"  # nothing varied
