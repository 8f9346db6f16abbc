"""The baseline store: --save-baseline, --baseline with --fail-if, `runner compare --baseline`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.analysis.baselines import Store, machine_id
from runner.errors import UsageError
from tests.conftest import run_cli, run_runner

DOC = {"schema_version": 1, "complete": True, "stop_reason": None, "totals": {"by_op": {}}}


def test_a_name_saved_here_is_read_before_another_machines(tmp_path: Path) -> None:
    store = Store(tmp_path)
    other = {**DOC, "stop_reason": "other"}
    (tmp_path / "Other-machine").mkdir()
    (tmp_path / "Other-machine" / "main.json").write_text(json.dumps(other))
    saved = store.save("main", DOC)
    assert saved == tmp_path / machine_id() / "main.json" and not list(saved.parent.glob(".*tmp"))
    found = store.load("main")
    assert found.machine == machine_id() and found.warning is None and found.result.doc == DOC


def test_a_name_saved_only_elsewhere_is_read_with_a_warning_and_several_are_refused(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for machine in ("Box-a", "Box-b"):
        (tmp_path / machine).mkdir()
        (tmp_path / machine / "pr.json").write_text(json.dumps({**DOC, "complete": False, "stop_reason": "Ctrl-C"}))
    (tmp_path / "Box-a" / "one.json").write_text(json.dumps(DOC))
    found = store.load("one")
    assert found.machine == "Box-a" and found.warning is not None and "saved on Box-a" in found.warning and "counts do not depend" in found.warning
    with pytest.raises(UsageError, match="not saved on this machine .* but on Box-a, Box-b"):
        store.load("pr")
    store.save("kept", DOC)
    with pytest.raises(UsageError, match="no such baseline; saved here: kept"):
        store.load("nosuch")


def test_bad_names_and_a_gate_without_a_baseline_are_one_line_before_any_server(tmp_path: Path) -> None:
    """Refused at start-up (the unit tier fails the test if a server or worker starts)."""
    cases = {
        ("--save-baseline", "../up"): "--save-baseline '../up': a baseline's name is letters",
        ("--fail-if", "*.statements_per_op > +0"): "--fail-if judges this run against a stored one: give --baseline NAME",
        ("--baseline", "nosuch", "--baseline-dir", str(tmp_path / "empty")): f"--baseline 'nosuch': no such baseline; nothing is saved in {tmp_path / 'empty'}",
        ("--baseline", "x", "--fail-if", "nosuch.statements_per_op > +0"): "the workload has no op 'nosuch'",
    }
    Store(tmp_path).save("x", {**DOC, "config": {}})
    for args, message in cases.items():
        result = run_cli("--workload", "seed", "--baseline-dir", str(tmp_path), *args)
        assert result.code == 2 and message in result.stderr and result.stderr.count("\n") == 1, (args, result.stderr)
    timing = run_cli("--workload", "seed", "--baseline-dir", str(tmp_path), "--baseline", "x", "--fail-if", "read.p99 > +10%")
    assert timing.code == 2 and "both sides need --repeat 2 or more" in timing.stderr
    both = run_cli("compare", "a.json", "b.json", "--baseline", "x")
    assert both.code == 2 and "or --baseline NAME and one result B" in both.stderr


@pytest.mark.system
def test_a_pull_request_that_multiplies_statements_fails_against_the_saved_baseline(dsn: str, tmp_path: Path) -> None:
    """The newcomer's case through the store: main saved once, the PR judged against it by name,
    by a run (exit 7, the repeated statement named) and by `runner compare --baseline`."""
    from tests.worker.test_anatomy import LAZY

    store = ("--baseline-dir", str(tmp_path / "store"))
    paths = {}
    for side, lazy in (("main", "selectin"), ("pr", "select")):
        paths[side] = tmp_path / f"{side}_family.py"
        paths[side].write_text(LAZY.format(lazy=lazy))
    common = ("--mode", "sync", "--ops", "20", "--seed", "1", "--quiet", *store)
    saved = run_runner("--workload", str(paths["main"]), *common, "--save-baseline", "main", dsn=dsn)
    assert saved.code == 0 and f"baseline 'main' saved: {tmp_path}/store/{machine_id()}/main.json" in saved.stderr, saved.stderr
    same = run_runner("--workload", str(paths["main"]), *common, "--baseline", "main", "--fail-if", "*.statements_per_op > +0", dsn=dsn)
    assert same.code == 0 and "every --fail-if held (1 judged)" in same.stderr, same.stderr
    assert same.doc is not None and same.doc["baseline"]["fail_if"][0]["fail"] is False and same.doc["baseline"]["machine"] == machine_id()
    output = tmp_path / "pr.json"
    pr = run_runner("--workload", str(paths["pr"]), *common, "--baseline", "main", "--fail-if", "read.statements_per_op > +0%", "--output", str(output), dsn=dsn)
    assert pr.code == 7 and pr.doc is not None, pr.stderr
    line = next(text for text in pr.stderr.splitlines() if "failed" in text)
    assert line.startswith("runner: --baseline 'main' failed (A: the baseline, B: this run): read.statements_per_op > +0%: read statements_per_op changed +450.0%")
    assert "10 per op" in line and "child" in line
    rows = {row["figure"]: row for row in pr.doc["baseline"]["rows"]}
    assert rows["read.statements_per_op"]["a"] == 2 and rows["read.statements_per_op"]["b"] == 11
    gate = run_cli("compare", "--baseline", "main", *store, str(output), "--fail-if", "read.statements_per_op > +0%")
    assert gate.code == 7 and "read statements_per_op changed +450.0%" in gate.stderr, gate.stderr
    assert json.loads(gate.stdout)["a"] == str(tmp_path / "store" / machine_id() / "main.json")
