"""--think: a pause per lane between ops, out of the latencies, in the throughput."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli, run_runner

BASE = ("--workload", "sleep", "--duration", "2", "--quiet")  # 20 ms per op on the server


@pytest.mark.system
@pytest.mark.parametrize(("mode", "width"), [("chunked", ("--chunk", "2")), ("window", ("--chunk", "2")), ("sync", ("--threads", "2"))])
def test_think_time_slows_the_lanes_but_not_the_latency(dsn: str, mode: str, width: tuple[str, str]) -> None:
    plain = run_runner(*BASE, "--mode", mode, *width, dsn=dsn).doc
    thinking = run_runner(*BASE, "--mode", mode, *width, "--think", "100ms", dsn=dsn).doc
    assert plain is not None and thinking is not None
    assert thinking["config"]["think_s"] == 0.1 and thinking["config"]["think_dist"] == "fixed"
    # Two lanes, each an op (~21 ms) then 100 ms of thought: about 2 / 0.121 = 16.5 ops/s.
    assert 12 < thinking["totals"]["ops_per_s"] < 18.5
    assert plain["totals"]["ops_per_s"] > 3 * thinking["totals"]["ops_per_s"]
    assert thinking["totals"]["by_op"]["sleep"]["latency_ms"]["p50"] < 50  # the pause is not latency


@pytest.mark.system
def test_exponential_think_time_has_the_mean_it_is_given(dsn: str) -> None:
    doc = run_runner(*BASE, "--chunk", "4", "--mode", "window", "--think", "exp:50ms", dsn=dsn).doc
    assert doc is not None and doc["config"]["think_dist"] == "exp"
    assert 4 / 0.071 * 0.7 < doc["totals"]["ops_per_s"] < 4 / 0.071 * 1.3  # ~56 ops/s


@pytest.mark.parametrize(
    ("args", "needle"),
    [(("--rate", "10"), "--mode open has no lanes"), (("--think", "soon"), "--think takes"), (("--think", "exp:-1s"), "--think takes")],
)
def test_think_is_refused_where_it_means_nothing(args: tuple[str, ...], needle: str) -> None:
    full = args if "--think" in args else (*args, "--think", "1s")
    result = run_cli("--duration", "1", *full)
    assert result.code == 2 and needle in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.system
@pytest.mark.parametrize("mode", ["window", "sync"])
def test_the_pause_after_the_last_op_is_no_part_of_the_run(dsn: str, mode: str) -> None:
    """A 2 s run with 10 s pauses reported wall_s 10.6 and ran 10 s: a pause is cut at
    --duration's end. With a count of ops the measured part ends at the last op, not after its
    pause (here 2 ops per lane: op, 1.5 s, op, then a pause that is not the run's)."""
    import time

    width = ("--threads", "2") if mode == "sync" else ("--chunk", "2")
    began = time.monotonic()
    timed = run_runner("--workload", "sleep", "--duration", "2", "--mode", mode, *width, "--think", "10s", "--quiet", dsn=dsn).doc
    took = time.monotonic() - began
    assert timed is not None and timed["totals"]["ok"] >= 2
    assert 1.9 < timed["totals"]["wall_s"] < 2.5, timed["totals"]["wall_s"]
    assert took < 9  # the run ended at its duration, not after the pause (start-up included)
    counted = run_runner("--workload", "sleep", "--ops", "4", "--mode", mode, *width, "--think", "1.5s", "--quiet", dsn=dsn).doc
    assert counted is not None and counted["totals"]["ok"] == 4
    assert 1.45 < counted["totals"]["wall_s"] < 2.5, counted["totals"]["wall_s"]  # not ~3 s
