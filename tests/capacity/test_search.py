"""The rate search on its own: a step's verdict comes from a known capacity, no server needed."""

from __future__ import annotations

import pytest

from runner.capacity.search import Search, SearchSpec
from runner.errors import UsageError


def _search(capacity: float, spec: SearchSpec) -> Search:
    """Run the search against a service that meets the SLO exactly up to `capacity` ops/s."""
    search = Search(spec)
    while (rate := search.next_rate()) is not None:
        search.record(rate, rate <= capacity)
    return search


@pytest.mark.parametrize("capacity", [7.5, 20.0, 333.0, 5000.0, 123456.0])
def test_it_brackets_the_capacity_within_the_precision(capacity: float) -> None:
    search = _search(capacity, SearchSpec(start_per_s=20, precision=0.05))
    assert search.outcome == "converged"
    assert search.passed is not None and search.failed is not None
    assert search.passed <= capacity < search.failed
    assert search.failed <= search.passed * 1.05


def test_it_grows_geometrically_then_bisects_between_the_bounds() -> None:
    search = _search(500.0, SearchSpec(start_per_s=50, growth=2, precision=0.05))
    assert search.rates[:5] == [50, 100, 200, 400, 800]
    for rate in search.rates[5:]:  # every bisection step lies strictly inside the bracket
        assert 400 < rate < 800


def test_every_rate_up_to_the_cap_passing_ends_at_the_cap() -> None:
    search = _search(10_000.0, SearchSpec(start_per_s=100, max_per_s=300))
    assert search.outcome == "max_rate"
    assert search.rates == [100, 200, 300]
    assert search.failed is None and search.passed == 300


def test_a_service_that_meets_no_rate_is_said_so() -> None:
    search = _search(0.5, SearchSpec(start_per_s=16, growth=2, min_per_s=2))
    assert search.outcome == "none_passed"
    assert search.passed is None
    assert search.rates == [16, 8, 4, 2]


def test_the_step_budget_ends_the_search() -> None:
    search = _search(333.0, SearchSpec(start_per_s=1, precision=0.001, max_steps=6))
    assert search.outcome == "max_steps"
    assert len(search.rates) == 6


@pytest.mark.parametrize(
    "kwargs",
    [{"start_per_s": 0}, {"growth": 1.0}, {"precision": 0.0}, {"precision": 1.5}, {"max_per_s": 5, "start_per_s": 10}, {"max_steps": 1}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        SearchSpec(**kwargs)  # type: ignore[arg-type]
