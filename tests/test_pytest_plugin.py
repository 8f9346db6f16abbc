"""The pytest plugin, as a team would use it in its own suite (pytest's own pytester runs it)."""

from __future__ import annotations

import pytest

from runner.pytest_plugin import _flags, baseline_key

pytest_plugins = ("pytester",)

SUITE = '''
def test_reads_stay_fast(runner_run):
    result = runner_run(workload="seed", ops=200, chunk=10, check=["errors == 0"])
    assert result.exit_code == 0 and result.complete and result.errors == 0
    assert set(result.by_op) == {"read", "write"}
    assert 0 < result.by_op["read"].p50_ms <= result.by_op["read"].p99_ms < 60_000
    assert result.doc["checks"][0]["pass"] is True
    assert result.figure("read.p99") == result.by_op["read"].p99_ms and result.figure("write.statements_per_op") == 2.0
    assert result.figure("nosuch.p99") is None


def test_a_threshold_that_cannot_hold_fails(runner_run):
    result = runner_run(workload="noop", ops=100)
    assert result.by_op["noop"].p99_ms < 0  # fails: shows the assertion works on real figures


def test_a_check_that_cannot_hold_is_listed_by_assert_checks(runner_run):
    result = runner_run(workload="noop", ops=50, check=["noop.p99 < 0ms", "errors == 0"])
    assert [c["check"] for c in result.failed_checks] == ["noop.p99 < 0ms"]
    result.assert_checks()  # fails: the message names the check and what was measured


def test_the_server_is_shared(runner_server, runner_run):
    assert runner_run(workload="noop", ops=10).doc["server"]["embedded"] is False  # given as --dsn
    assert runner_server.dsn.startswith("postgresql://")


def test_another_server_by_its_dsn(runner_server, runner_run):
    """runner_run(dsn=...) was a bare TypeError (the dsn twice)."""
    other = runner_server.dsn.replace("postgresql://", "postgres://")  # the same server, spelled otherwise
    assert runner_run(workload="noop", ops=10, dsn=other).doc["config"]["dsn"].startswith("postgresql://postgres:***@")
'''


@pytest.mark.system
def test_the_plugin_runs_a_workload_in_a_users_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bench=SUITE)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=2)  # the plugin came from its entry point: no conftest here
    result.stdout.fnmatch_lines(["*assert *.p99_ms < 0*"])
    result.stdout.fnmatch_lines(["*AssertionError: runner: check failed: noop.p99 < 0ms: measured *"])


def test_options_become_flags() -> None:
    assert _flags({"ops": 200, "layer": "raw", "check": ["a", "b"], "quiet": True, "debug": False, "rate": None}) == [
        "--ops", "200", "--layer", "raw", "--check", "a", "--check", "b", "--quiet",
    ]


STORED = '''
def test_feed(runner_run):
    result = runner_run(workload="{workload}", mode="sync", ops=20, seed=1)
    result.assert_checks()
'''


@pytest.mark.system
def test_a_session_saves_its_runs_and_the_next_is_judged_against_them(pytester: pytest.Pytester) -> None:
    """pytest-benchmark's --benchmark-save then --benchmark-compare-fail: each runner_run kept as
    NAME/<test>; the next session's PR, which drops an eager load, fails assert_checks."""
    from runner.analysis.baselines import machine_id
    from tests.worker.test_anatomy import LAZY

    workload = pytester.path / "family.py"
    pytester.makepyfile(test_store=STORED.format(workload=workload))
    store = ["-p", "no:cacheprovider", "--runner-baseline-dir", str(pytester.path / "kept")]
    workload.write_text(LAZY.format(lazy="selectin"))
    pytester.runpytest_subprocess(*store, "--runner-save-baseline", "main").assert_outcomes(passed=1)
    assert (pytester.path / "kept" / machine_id() / "main" / "test_store.py-test_feed.json").is_file()
    workload.write_text(LAZY.format(lazy="select"))
    judged = pytester.runpytest_subprocess(*store, "--runner-baseline", "main", "--runner-fail-if", "*.statements_per_op > +0")
    judged.assert_outcomes(failed=1)
    failed = "*AssertionError: runner: --baseline 'main/test_store.py-test_feed' failed (A: the baseline, B: this run): *read statements_per_op changed +450.0%*"
    judged.stdout.fnmatch_lines([failed])


def test_a_tests_baseline_key_is_a_name_the_store_holds() -> None:
    from runner.analysis.baselines import check_name

    assert baseline_key("tests/test_db.py::test_feed[a b/c]", 1) == "tests-test_db.py-test_feed-a-b-c"
    assert baseline_key("t.py::test_x", 2) == "t.py-test_x-2" and check_name("main/" + baseline_key("::[]", 1), "--baseline") == "main/test"
