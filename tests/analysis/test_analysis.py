"""--repeat, `runner compare` and `runner report` on real results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.analysis.compare import compare, mismatch
from runner.analysis.repeat import spread
from runner.errors import UsageError
from runner.result import Result, is_count
from tests.conftest import run_cli, run_runner


def test_spread_of_known_values() -> None:
    assert spread([1.0, 2.0, 3.0]) == {"min": 1.0, "median": 2.0, "max": 3.0, "mean": 2.0, "stdev": 1.0, "spread_pct": 100.0}


@pytest.mark.system
def test_repeat_reports_every_run_and_its_spread(dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run_runner("--repeat", "3", "--ops", "150", "--output", str(out), "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None and doc["repeat"]["runs"] == 3 and len(doc["repeat"]["per_run"]) == 3
    rates = sorted(run["ops_per_s"] for run in doc["repeat"]["per_run"])
    assert doc["repeat"]["ops_per_s"]["min"] == rates[0] and doc["repeat"]["ops_per_s"]["max"] == rates[-1]
    assert doc["totals"]["ops_per_s"] == rates[1]  # the median run's document
    assert all(run["ok"] == 150 for run in doc["repeat"]["per_run"])


@pytest.mark.system
def test_compare_flags_a_real_difference_and_not_a_repeat(dsn: str, tmp_path: Path) -> None:
    # The ORM against the raw driver: one process is bound by its own CPU, and raw needs far less.
    slow, fast, again = tmp_path / "slow.json", tmp_path / "fast.json", tmp_path / "again.json"
    for path, args in ((slow, ["--layer", "orm"]), (fast, ["--layer", "raw"]), (again, ["--layer", "raw"])):
        result = run_runner(*args, "--repeat", "3", "--ops", "400", "--output", str(path), "--quiet", dsn=dsn)
        assert result.code == 0, result.stderr
    real = run_cli("compare", str(slow), str(fast))
    assert real.code == 0 and real.doc is not None, real.stderr
    rows = {row["metric"]: row for row in real.doc["rows"]}
    assert rows["ops/s"]["significant"] is True and rows["ops/s"]["delta_pct"] > 0
    assert "B better" in rows["ops/s"]["verdict"] and "ops/s" in real.stderr
    same = {r["metric"]: r for r in compare(Result(json.loads(fast.read_text())), Result(json.loads(again.read_text())))}
    # The same configuration twice: peak connections cannot differ beyond the noise.
    assert same["peak server connections"]["significant"] is False
    # --fail-if: the raw layer's runs turned into ORM runs is a regression past -5 %, beyond the spread.
    regression = run_cli("compare", str(fast), str(slow), "--fail-if", "ops_per_s < -5%", "--fail-if", "read.p99 > +1000000%")
    assert regression.code == 7, regression.stderr
    assert regression.doc is not None and [r["fail"] for r in regression.doc["fail_if"]] == [True, False]
    assert "runner: compare failed: ops_per_s < -5%: ops/s changed -" in regression.stderr
    # A change within the spread never fails, whatever the threshold says.
    noise = run_cli("compare", str(fast), str(again), "--fail-if", "connections.peak > +0%", "--fail-if", "connections.peak < -0%")
    assert noise.code == 0, noise.stderr
    assert noise.doc is not None and not any(r["fail"] for r in noise.doc["fail_if"])


@pytest.mark.system
def test_compare_without_repeats_says_it_cannot_tell(dsn: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path in (a, b):
        run_runner("--ops", "60", "--output", str(path), "--quiet", dsn=dsn)
    compared = run_cli("compare", str(a), str(b)).doc
    assert compared is not None
    timings = [row for row in compared["rows"] if not is_count(row["figure"])]  # a count needs no spread
    assert timings and all(row["significant"] is None and "with --repeat" in row["verdict"] for row in timings)
    blind = run_cli("compare", str(a), str(b), "--fail-if", "ops_per_s < -5%")
    assert blind.code == 2 and "needs --repeat runs on both sides" in blind.stderr and len(blind.stderr.strip().splitlines()) == 1
    bad = run_cli("compare", str(a), str(b), "--fail-if", "ops_per_s < 5")
    assert bad.code == 2 and "write FIGURE < -N%" in bad.stderr


def _repeated(workload: str, rates: list[float], p99s: list[float], errors: list[int], duration_s: float | None = None) -> dict:  # type: ignore[type-arg]
    """A --repeat document as the runner writes one, cut to what compare reads: .totals is the
    median run's (by ops/s), .repeat each figure's spread over the runs."""
    median_run = sorted(range(len(rates)), key=rates.__getitem__)[len(rates) // 2]
    walls = [1000 / rate for rate in rates] if duration_s is None else [duration_s + 0.001 * i for i in range(len(rates))]
    return {
        "schema_version": 1,
        "config": {"workload": workload, "duration_s": duration_s},
        "totals": {"ops_per_s": rates[median_run], "wall_s": walls[median_run], "errors": errors[median_run],
                   "connections": {"server_peak": 4}, "by_op": {"read": {"latency_ms": {"p50": 1.0, "p99": p99s[median_run]}}}},
        "repeat": {"runs": len(rates), "ops_per_s": spread(rates), "wall_s": spread(walls), "server_peak": spread([4.0] * len(rates)),
                   "by_op": {"read": {"p50": spread([1.0] * len(rates)), "p99": spread(p99s)}},
                   "per_run": [{"ops_per_s": r, "errors": e} for r, e in zip(rates, errors, strict=True)]},
    }


def test_compare_reads_the_median_of_each_figure_and_every_spread() -> None:
    """The median run (by ops/s) is not the run with the median p99: compare shows the median of
    the runs' p99s, as the README says. Errors have a spread too when both sides repeated, and a
    --duration run's wall time is the user's setting, never "beyond the spread"."""
    a = _repeated("seed", [100, 110, 120], [9.0, 5.0, 7.0], [0, 1, 0], duration_s=2.0)
    b = _repeated("seed", [200, 210, 220], [3.0, 1.0, 2.0], [5, 6, 7], duration_s=2.0)
    rows = {row["metric"]: row for row in compare(Result(a), Result(b))}
    assert rows["read p99 ms"]["a"] == 7.0 and rows["read p99 ms"]["b"] == 2.0  # the median run's were 5.0 and 1.0
    assert rows["errors"]["significant"] is True and "B worse" in rows["errors"]["verdict"]
    assert rows["wall s"]["significant"] is False and "--duration" in rows["wall s"]["verdict"]
    assert rows["ops/s"]["significant"] is True and "B better" in rows["ops/s"]["verdict"]
    assert mismatch(Result(a), Result(b)) == []


def test_compare_says_when_two_documents_do_not_compare() -> None:
    a, b = _repeated("seed", [100.0] * 3, [1.0] * 3, [0] * 3), _repeated("tpcb", [100.0] * 3, [1.0] * 3, [0] * 3)
    assert mismatch(Result(a), Result(b)) == ["A ran workload 'seed' and B 'tpcb': only the ops they share are compared"]
    with pytest.raises(UsageError, match="schema-version-1 document and B a version-2"):
        mismatch(Result(a), Result({**b, "schema_version": 2}))
    with pytest.raises(UsageError, match="lacks a figure"):
        compare(Result(a), Result({**b, "repeat": None, "totals": {"by_op": {}}}))


@pytest.mark.system
def test_report_writes_plots_and_a_summary(dsn: str, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.jsonl"
    with sweep.open("w") as handle:
        for procs, chunk in ((1, 5), (1, 20), (2, 5), (2, 20)):
            result = run_runner("--procs", str(procs), "--chunk", str(chunk), "--ops", "200", "--quiet", dsn=dsn)
            assert result.doc is not None
            handle.write(json.dumps(result.doc) + "\n")
    out = tmp_path / "report"
    proc = run_cli("report", str(sweep), "--out", str(out))
    assert proc.code == 0, proc.stderr
    names = {p.name for p in out.iterdir()}
    assert names == {"summary.md", "ops_per_s_vs_chunk.png", "p99_vs_chunk.png", "connections_over_time.png", "ops_per_s_over_time.png"}
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    summary = (out / "summary.md").read_text()
    assert summary.count("| chunked K=") == 4 and "Best ops/s" in summary


def test_report_and_compare_refuse_what_is_not_a_result(tmp_path: Path) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    for args in (["report", str(junk)], ["compare", str(junk), str(junk)]):
        proc = run_cli(*args)
        assert proc.code == 2 and proc.stderr.count("\n") == 1 and "not" in proc.stderr


@pytest.mark.system
def test_report_reads_pretty_documents_appended_one_after_another(dsn: str, tmp_path: Path) -> None:
    appended = tmp_path / "results.json"  # what `python -m runner ... >> results.json` makes
    for chunk in (5, 20):
        result = run_runner("--chunk", str(chunk), "--ops", "100", "--quiet", dsn=dsn)
        with appended.open("a") as handle:
            handle.write(result.stdout)  # the pretty, multi-line document as printed
    assert appended.read_text().count('"schema_version"') == 2
    out = tmp_path / "report"
    proc = run_cli("report", str(appended), "-o", str(out))
    assert proc.code == 0, proc.stderr
    summary = (out / "summary.md").read_text()
    assert summary.count("| chunked K=") == 2
    broken = tmp_path / "broken.json"
    broken.write_text(appended.read_text() + "{oops\n")
    proc = run_cli("report", str(broken))
    assert proc.code == 2 and f"{broken}:" in proc.stderr and "is not JSON" in proc.stderr


def test_the_summary_says_a_node_was_lost_only_when_it_was() -> None:
    """"node ... lost" was said whenever a worker was lost, when only its actor had died."""
    from runner.analysis.report import _placement

    def doc(alive: bool) -> dict:  # type: ignore[type-arg]
        return {
            "cluster": {"version": "2.60.0", "private": False, "address": "10.0.0.1:6379",
                        "nodes": [{"node": "n1", "address": "10.0.0.2", "workers": [0, 1], "alive": alive}]},
            "workers": [{"status": "lost"}, {"status": "stopped"}], "totals": {"start_spread_ms": 1.0},
        }

    assert _placement(doc(True))[-1] == "workers 0 lost on node 10.0.0.2, which is still up (their actors ended, not the host)"
    assert _placement(doc(False))[-1] == "node 10.0.0.2 lost, and its workers 0"


@pytest.mark.system
def test_a_pull_request_that_multiplies_an_ops_statements_fails_the_gate(dsn: str, tmp_path: Path) -> None:
    """The newcomer's case: the PR drops an eager load (selectin -> lazy), the read op's statements
    go from 2 to 11 per op; one run on each side, no --repeat, on any machine load."""
    from tests.worker.test_anatomy import LAZY

    outputs = {}
    for side, lazy in (("base", "selectin"), ("pr", "select")):
        workload = tmp_path / f"{side}_family.py"
        workload.write_text(LAZY.format(lazy=lazy))
        outputs[side] = tmp_path / f"{side}.json"
        ran = run_runner("--workload", str(workload), "--mode", "sync", "--ops", "20", "--seed", "1", "--output", str(outputs[side]), "--quiet", dsn=dsn)
        assert ran.code == 0, ran.stderr
    gate = run_cli("compare", str(outputs["base"]), str(outputs["pr"]), "--fail-if", "read.statements_per_op > +0%")
    assert gate.code == 7, gate.stderr
    line = next(text for text in gate.stderr.splitlines() if "compare failed" in text)
    assert "read statements_per_op changed +450.0%" in line and "10 per op" in line and "child" in line
    assert run_cli("compare", str(outputs["base"]), str(outputs["base"]), "--fail-if", "*.statements_per_op > +0").code == 0
