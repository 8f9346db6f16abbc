from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from runner.transport.plan import split_ops, worker_seed


@given(st.integers(1, 10**7), st.integers(1, 512))
def test_shares_sum_exactly_and_differ_by_at_most_one(total: int, procs: int) -> None:
    shares = split_ops(total, procs)
    assert len(shares) == procs
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1


def test_worker_seeds_are_stable_and_distinct() -> None:
    assert worker_seed(7, 0) == worker_seed(7, 0)
    assert len({worker_seed(7, i) for i in range(64)}) == 64
    assert worker_seed(7, 0) != worker_seed(8, 0)
