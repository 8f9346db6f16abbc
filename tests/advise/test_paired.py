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
