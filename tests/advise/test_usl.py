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
