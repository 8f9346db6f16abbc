"""The Universal Scalability Law's fit, on curves of known shape."""

from __future__ import annotations

import pytest

from runner.advise.usl import Fit, fit

LEVELS = (1, 2, 4, 8, 16, 32, 64)


def test_the_fit_recovers_a_known_curve_and_its_peak() -> None:
    truth = Fit(lam=1000.0, sigma=0.05, kappa=0.002)
    found = fit([(n, truth.throughput(n)) for n in LEVELS])
    assert found is not None
    assert found.lam == pytest.approx(1000.0) and found.sigma == pytest.approx(0.05, rel=1e-6) and found.kappa == pytest.approx(0.002, rel=1e-6)
    assert found.peak_concurrency == pytest.approx(((1 - 0.05) / 0.002) ** 0.5)  # ~21.8
    assert found.throughput(found.peak_concurrency) > max(found.throughput(n) for n in (16, 32))  # type: ignore[arg-type]


def test_noise_of_a_few_percent_still_predicts_a_held_out_level_within_ten_percent() -> None:
    truth = Fit(lam=500.0, sigma=0.1, kappa=0.001)
    wobble = (1.03, 0.97, 1.02, 0.98, 1.03)
    found = fit([(n, truth.throughput(n) * w) for n, w in zip((1, 2, 4, 16, 64), wobble, strict=True)])
    assert found is not None
    for held_out in (8, 32):
        assert found.throughput(held_out) == pytest.approx(truth.throughput(held_out), rel=0.1)


def test_linear_scaling_has_no_peak_and_too_few_levels_no_fit() -> None:
    linear = fit([(n, 50.0 * n) for n in (1, 2, 4, 8)])
    assert linear is not None and linear.sigma == pytest.approx(0.0, abs=1e-9) and linear.kappa == 0.0 and linear.peak_concurrency is None
    assert fit([(1, 50.0), (2, 99.0)]) is None
    assert fit([(1, 50.0), (1, 51.0), (2, 99.0)]) is None  # two distinct levels


def test_the_pareto_front_keeps_what_nothing_beats_on_both_and_the_band_is_the_residual() -> None:
    from runner.advise.usl import Fit
    from runner.analysis.advice_plots import pareto, residual

    steps = [
        {"ops_per_s": 100.0, "p99_ms": 10.0}, {"ops_per_s": 200.0, "p99_ms": 20.0},
        {"ops_per_s": 150.0, "p99_ms": 25.0},  # beaten by 200 at 20 ms
        {"ops_per_s": 90.0, "p99_ms": 12.0},  # beaten by 100 at 10 ms
        {"ops_per_s": 0.0, "p99_ms": None},
    ]
    assert [s["ops_per_s"] for s in pareto(steps)] == [100.0, 200.0]
    law = Fit(10.0, 0.0, 0.0)  # linear: 10 ops/s per op in flight
    assert residual(law, [(1, 10.0), (2, 20.0)]) == 0.0
    assert residual(law, [(1, 11.0), (2, 18.0)]) == pytest.approx(0.1)
