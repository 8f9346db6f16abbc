"""--check: a small grammar over the run's own figures, a dedicated exit code when one fails."""

from __future__ import annotations

from typing import Any

import pytest

from runner.analysis.checks import named_percentiles, parse_check
from runner.errors import UsageError
from runner.measure.histogram import LatencyHistogram
from tests.conftest import run_cli, run_runner

OPS = ("read", "write")


def _doc(p99: float = 12.0, ops_per_s: float = 900.0, errors: int = 0) -> dict[str, Any]:
    op = {"ops": 100, "ok": 100 - errors, "errors": errors, "ops_per_s": ops_per_s / 2, "anatomy": None,
          "latency_ms": {"mean": 5.0, "p50": 4.0, "p90": 9.0, "p99": p99, "p99_9": p99, "max": p99}}
    return {"totals": {"ops_per_s": ops_per_s, "ok": 200 - errors, "ops": 200, "errors": errors, "unfinished": 0, "dropped": 0,
                       "wall_s": 1.0, "connections": {"server_peak": 40}, "by_op": {"read": op}}}


@pytest.mark.parametrize(
    ("text", "threshold"),
    [("read.p99 < 50ms", 50.0), ("read.p99<0.05s", 50.0), ("read.p99 < 500us", 0.5), ("read.max <= 50", 50.0),
     ("ops_per_s >= 800", 800.0), ("ops_per_s >= 800/s", 800.0), ("error_rate < 1%", 0.01), ("read.error_rate < 0.02", 0.02),
     ("connections.peak <= 100", 100.0), ("errors == 0", 0.0), ("read.db.p99 < 2ms", 2.0)],
)
def test_expressions_parse_to_the_figures_unit(text: str, threshold: float) -> None:
    assert parse_check(text, OPS).threshold == pytest.approx(threshold)


@pytest.mark.parametrize(
    ("text", "message"),
    [("read.p99 50ms", "write FIGURE OP NUMBER"), ("latency < 5", "unknown figure 'latency'"),
     ("delete.p99 < 5ms", "unknown figure 'delete.p99'"), ("read.p99 < 5%", "is a time"), ("errors < 5ms", "takes no unit"),
     ("error_rate < 5ms", "is a share")],
)
def test_a_bad_expression_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_check(text, OPS)


def test_checks_pass_and_fail_on_the_figures() -> None:
    doc = _doc(p99=60.0, errors=3)
    assert parse_check("read.p99 < 50ms", OPS).evaluate(doc)["pass"] is False
    assert parse_check("read.p99 < 61ms", OPS).evaluate(doc)["pass"] is True
    assert parse_check("error_rate < 1%", OPS).evaluate(doc) == {
        "check": "error_rate < 1%", "figure": "error_rate", "value": 0.015, "threshold": 0.01, "pass": False,
    }
    missing = parse_check("write.p99 < 50ms", OPS).evaluate(doc)  # no write ran: not a pass
    assert missing["value"] is None and missing["pass"] is False


@pytest.mark.system
def test_a_run_passes_its_checks(dsn: str) -> None:
    result = run_runner("--ops", "200", "--check", "ops_per_s > 0", "--check", "read.p99 < 3600s", "--check", "errors == 0", dsn=dsn)
    assert result.code == 0, result.stderr
    assert result.doc is not None
    assert [c["pass"] for c in result.doc["checks"]] == [True, True, True]
    assert result.doc["checks"][1]["threshold"] == 3_600_000.0


@pytest.mark.system
def test_a_failed_check_is_exit_7_with_a_line_each(dsn: str) -> None:
    result = run_runner("--ops", "200", "--check", "read.p99 < 1us", "--check", "ops_per_s > 0", "--quiet", dsn=dsn)
    assert result.code == 7, result.stderr
    assert result.doc is not None and [c["pass"] for c in result.doc["checks"]] == [False, True]
    lines = [line for line in result.stderr.splitlines() if "check failed" in line]
    assert len(lines) == 1 and lines[0].startswith("runner: check failed: read.p99 < 1us: measured ")


@pytest.mark.system
def test_with_repeat_the_checks_judge_the_median_run(dsn: str) -> None:
    result = run_runner("--ops", "100", "--repeat", "2", "--check", "read.p99 < 1us", "--quiet", dsn=dsn)
    assert result.code == 7 and "check failed (the median run)" in result.stderr


def test_a_bad_check_ends_the_run_before_it_starts() -> None:
    result = run_cli("--check", "read.p99 << 5")
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.strip().startswith("runner: error: --check 'read.p99 << 5'") and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "figure"),
    [("read.p95 < 50ms", "read.p95"), ("read.p(97.5) < 50ms", "read.p97_5"), ("read.p(95) < 1s", "read.p95"),
     ("read.p99_99 < 1s", "read.p99_99"), ("read.db.p(97.5) < 5ms", "read.db.p97_5")],
)
def test_any_percentile_is_a_figure_k6_style(text: str, figure: str) -> None:
    assert parse_check(text, OPS).figure == figure


def test_the_percentiles_checks_name_are_the_ones_a_run_computes() -> None:
    texts = ("read.p95 < 5ms", "write.p(97.5) < 1s", "read.p99 < 1s", "read.db.p95 < 1ms", "ops_per_s > 1")
    assert named_percentiles(texts) == ("p95", "p97_5")


def test_a_percentile_no_check_named_is_nothing_measured() -> None:
    check = parse_check("read.p95 < 50ms", OPS)
    assert check.evaluate(_doc())["value"] is None and not check.evaluate(_doc())["pass"]


def test_extra_percentiles_are_read_from_the_histogram() -> None:
    hist = LatencyHistogram()
    hist.record_many([i * 1_000_000 for i in range(1, 1001)])  # 1..1000 ms
    summary = hist.summary_ms(("p95", "p97_5"))
    assert summary["p95"] == pytest.approx(950, rel=0.01) and summary["p97_5"] == pytest.approx(975, rel=0.01)
    assert summary["p90"] < summary["p95"] < summary["p97_5"] < summary["p99"]


@pytest.mark.system
def test_a_run_computes_and_checks_the_percentiles_its_checks_name(dsn: str) -> None:
    result = run_runner("--ops", "300", "--quiet", "--check", "read.p95 < 60s", "--check", "write.p(97.5) < 60s", "--check", "read.db.p95 < 60s", dsn=dsn)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None and [c["pass"] for c in doc["checks"]] == [True, True, True]
    read, write = doc["totals"]["by_op"]["read"], doc["totals"]["by_op"]["write"]
    assert read["latency_ms"]["p90"] <= read["latency_ms"]["p95"] <= read["latency_ms"]["p99"]
    assert "p97_5" in write["latency_ms"] and "p95" in read["anatomy"]["db_ms"]
