"""Paired rounds: the ratio and its interval, and "can't tell"."""

from __future__ import annotations

import pytest

from runner.advise.paired import paired_ratio, t975


def test_a_steady_ten_percent_is_decided_whatever_the_drift() -> None:
    drift = (100.0, 140.0, 80.0, 120.0)  # the machine's speed moved 75 % between rounds
    ratio = paired_ratio([(a, a * 1.1 * (1 + 0.005 * (-1) ** i)) for i, a in enumerate(drift)])
    assert ratio is not None and ratio.decided and ratio.low > 1.05 and ratio.ratio == pytest.approx(1.1, rel=0.01)


def test_noise_around_one_is_not_decided() -> None:
    ratio = paired_ratio([(100.0, 104.0), (100.0, 97.0), (100.0, 102.0), (100.0, 98.0)])
    assert ratio is not None and not ratio.decided and ratio.low < 1 < ratio.high and ratio.half_width > 0.01


def test_one_round_has_no_interval_and_t_is_rounded_towards_wider() -> None:
    assert paired_ratio([(100.0, 110.0)]) is None
    assert t975(1) == 12.706 and t975(12) == t975(10) == 2.228 and t975(100) == 2.042


def test_sync_and_async_are_also_compared_at_equal_connections() -> None:
    """The leader (window at 8 connections) against sync's best (4 connections), then against
    sync at the leader's 8: the question "sync or async" asked at equal connections too."""
    from runner.advise.advise import AdviseSpec, Experiment, _confirm
    from runner.advise.families import FAMILIES

    spec = AdviseSpec((FAMILIES["window"], FAMILIES["sync"]), (1,), 16, 16, (), 600.0, 4, 1.0, 0.1, 1.0, 0.1)

    def step(family: str, width: int, ops_per_s: float) -> dict[str, object]:
        return {"family": family, "procs": 1, "width": width, "connections": width, "ops_per_s": ops_per_s, "complete": True, "meets_slos": True, "errors": 0}

    climbs = {("window", 1): [step("window", 4, 300.0), step("window", 8, 500.0)], ("sync", 1): [step("sync", 4, 400.0), step("sync", 8, 380.0)]}
    rates = {"window procs=1 chunk=8": [500.0, 505.0, 498.0, 502.0], "sync procs=1 threads=4": [400.0, 404.0, 398.0, 401.0],
             "sync procs=1 threads=8": [380.0, 383.0, 379.0, 381.0]}
    seen: dict[str, int] = {}
    order: list[str] = []

    def measure(candidate, phase):  # type: ignore[no-untyped-def]
        n = seen.get(candidate.label, 0)
        seen[candidate.label] = n + 1
        order.append(candidate.label)
        return {"ops_per_s": rates[candidate.label][n % 4]}

    comparisons = _confirm(spec, Experiment(spec), climbs, measure)
    # One round runs the leader once beside both challengers, then the reverse order: three runs a
    # round, not four, and each pair's mean position in a round the same.
    w, s4, s8 = rates
    assert order == [w, s4, s8, s8, s4, w, w, s4, s8]
    assert [(c["a"], c["b"]) for c in comparisons] == [("window procs=1 chunk=8", "sync procs=1 threads=4"), ("window procs=1 chunk=8", "sync procs=1 threads=8")]
    assert [(c["connections_a"], c["connections_b"]) for c in comparisons] == [(8, 4), (8, 8)]
    assert all(c["decided"] and c["faster"] == "window procs=1 chunk=8" for c in comparisons)
    assert comparisons[1]["verdict"].endswith("at 8 connections") and "connections" not in comparisons[0]["verdict"]


def test_a_round_drops_the_challengers_already_decided() -> None:
    """A challenger decided after three rounds is not run again; the close one goes on to --rounds."""
    from runner.advise.advise import AdviseSpec, Experiment, _confirm
    from runner.advise.families import FAMILIES

    spec = AdviseSpec((FAMILIES["window"], FAMILIES["sync"], FAMILIES["gevent"]), (1,), 16, 16, (), 600.0, 5, 1.0, 0.1, 1.0, 0.1)

    def step(family: str, ops_per_s: float) -> dict[str, object]:
        return {"family": family, "procs": 1, "width": 4, "connections": 4, "ops_per_s": ops_per_s, "complete": True, "meets_slos": True, "errors": 0}

    climbs = {("window", 1): [step("window", 500.0)], ("sync", 1): [step("sync", 400.0)], ("gevent", 1): [step("gevent", 495.0)]}
    wobble = (1.0, 1.03, 0.97, 1.02, 0.98)
    runs: list[str] = []

    def measure(candidate, phase):  # type: ignore[no-untyped-def]
        runs.append(candidate.family.name)
        base = {"window": 500.0, "sync": 400.0, "gevent": 500.0}[candidate.family.name]
        return {"ops_per_s": base * (wobble[runs.count(candidate.family.name) - 1] if candidate.family.name == "gevent" else 1.0)}

    by_b = {c["b"].split()[0]: c for c in _confirm(spec, Experiment(spec), climbs, measure)}
    assert by_b["sync"]["decided"] and by_b["sync"]["rounds"] == 3
    assert not by_b["gevent"]["decided"] and by_b["gevent"]["rounds"] == 5
    assert runs.count("sync") == 3 and runs.count("gevent") == 5 and runs.count("window") == 5
