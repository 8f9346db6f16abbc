"""--keys: each picker's shape against its definition, within sampling error (seeded, so a
failure is the code's, not the dice's)."""

from __future__ import annotations

import collections
import math
import random

import pytest

from runner.errors import UsageError
from workloads.keys import Keys, KeySpec, Zipfian

SAMPLES = 200_000


def _zeta(n: int, theta: float) -> float:
    return math.fsum((i + 1) ** -theta for i in range(n))


def _within(observed: int, p: float, samples: int = SAMPLES, sigmas: float = 4.0) -> bool:
    """A count is within `sigmas` binomial standard deviations of samples * p."""
    return abs(observed - samples * p) <= sigmas * math.sqrt(samples * p * (1 - p))


def _counts(spec: str, n: int, seed: int = 7) -> collections.Counter[int]:
    keys = Keys(KeySpec.parse(spec), random.Random(seed))
    return collections.Counter(keys.pick(n) for _ in range(SAMPLES))


def test_uniform_gives_every_key_the_same_chance() -> None:
    n = 20
    counts = _counts("uniform", n)
    assert set(counts) == set(range(1, n + 1))
    chi2 = sum((counts[k] - SAMPLES / n) ** 2 / (SAMPLES / n) for k in counts)
    assert chi2 < 43.8  # the 0.999 quantile of chi-square with 19 degrees of freedom


@pytest.mark.parametrize("theta", [0.5, 0.99])
def test_zipfian_ranks_follow_one_over_rank_to_the_theta(theta: float) -> None:
    n = 1000
    zipf, rng = Zipfian(theta), random.Random(3)
    counts = collections.Counter(zipf.rank(rng, n) for _ in range(SAMPLES))
    zeta = _zeta(n, theta)
    for rank in (0, 1):  # the method is exact for the first two ranks
        assert _within(counts[rank], (rank + 1) ** -theta / zeta)
    for rank in (10, 100):  # and close beyond them (Gray et al.'s approximation)
        assert counts[rank] / SAMPLES == pytest.approx((rank + 1) ** -theta / zeta, rel=0.2)
    top_tenth = sum(counts[r] for r in range(n // 10)) / SAMPLES
    assert top_tenth == pytest.approx(_zeta(n // 10, theta) / zeta, abs=0.02)
    assert max(counts) < n


def test_scrambled_zipf_keeps_the_skew_but_spreads_the_hot_keys() -> None:
    n = 1000
    counts = _counts("zipf", n)
    hottest = [key for key, _ in counts.most_common(3)]
    assert _within(counts[hottest[0]], 1 / _zeta(n, 0.99))  # the hottest key is rank 0's
    assert hottest != [1, 2, 3] and max(hottest) > n // 10  # not bunched at the table's start
    assert min(counts) >= 1 and max(counts) <= n


def test_zipf_theta_changes_the_skew() -> None:
    mild, steep = _counts("zipf:0.5", 1000), _counts("zipf:0.99", 1000)
    assert mild.most_common(1)[0][1] * 3 < steep.most_common(1)[0][1]


def test_hotspot_sends_its_share_to_the_hot_keys() -> None:
    n = 1000
    counts = _counts("hotspot:0.1:0.9", n)
    hot = sum(c for key, c in counts.items() if key <= 100)
    assert _within(hot, 0.9)
    hot_keys = [counts[k] for k in range(1, 101)]
    assert max(hot_keys) < 2 * min(hot_keys)  # uniform within the hot set
    default = _counts("hotspot", n)
    assert _within(sum(c for key, c in default.items() if key <= 200), 0.8)


def test_latest_makes_the_newest_keys_the_hottest() -> None:
    n = 1000
    counts = _counts("latest", n)
    assert _within(counts[n], 1 / _zeta(n, 0.99))
    assert counts[n] > counts[n - 1] > counts[n - 10] > counts[n // 2]


def test_a_growing_table_keeps_the_zipfian_exact() -> None:
    """`latest` on a table that grows: zeta grown term by term equals zeta computed afresh."""
    grown = Zipfian(0.99)
    for n in (10, 500, 501, 2000):
        grown.rank(random.Random(1), n)
    assert grown.zetan == pytest.approx(_zeta(2000, 0.99), rel=1e-12)


def test_two_key_ranges_in_turn_sum_zeta_once_each() -> None:
    """A workload picking in two tables of 100 and 100,000 rows in turn: each range's zeta summed
    once (100,000 terms in all), not again at every switch (it fell from 40,649 to 29 ops/s), and
    each exact."""
    zipf = Zipfian(0.99)
    rng = random.Random(3)
    exact = {n: _zeta(n, 0.99) for n in (100, 100_000)}
    for _ in range(1000):
        for n in (100, 100_000):
            zipf.rank(rng, n)
            assert zipf.zetan == pytest.approx(exact[n], rel=1e-12)
    assert zipf.terms == 100_000
    zipf.rank(rng, 100_050)  # the bigger table grew: only the new terms
    assert zipf.terms == 100_050 and zipf.zetan == pytest.approx(_zeta(100_050, 0.99), rel=1e-12)


@pytest.mark.parametrize("text", ["gauss", "zipf:1", "zipf:0", "zipf:x", "hotspot:0.2", "hotspot:1.5:0.5", "hotspot:0.2:2"])
def test_bad_specs_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="--keys"):
        KeySpec.parse(text)


def test_specs_read_back_as_written() -> None:
    assert [str(KeySpec.parse(t)) for t in ("uniform", "zipf", "zipf:0.8", "hotspot", "latest")] == [
        "uniform", "zipf:0.99", "zipf:0.8", "hotspot:0.2:0.8", "latest",
    ]


@pytest.mark.parametrize("spec", ["uniform", "zipf", "hotspot", "latest"])
def test_picking_among_no_keys_says_so(spec: str) -> None:
    # a user's `pick(ctx.scale)` run without --scale: the op's error must name the cause
    keys = Keys(KeySpec.parse(spec), random.Random(1))
    with pytest.raises(ValueError, match="no key to pick among 0"):
        keys.pick(0)


def test_uniform_draws_what_randint_draws() -> None:
    # tpcb's aid draws: the same sequence for a seed as randint(1, n) itself
    keys, rng = Keys(KeySpec.parse("uniform"), random.Random(5)), random.Random(5)
    assert [keys.pick(100_000) for _ in range(50)] == [rng.randint(1, 100_000) for _ in range(50)]


def test_a_table_named_picks_among_the_rows_loaded_there() -> None:
    keys = Keys(KeySpec.parse("uniform"), random.Random(1), {"posts": 30, "users": 3})
    assert {keys.pick("users") for _ in range(200)} == {1, 2, 3}
    assert max(keys.pick("posts") for _ in range(2000)) == 30
    with pytest.raises(LookupError, match=r"no rows were loaded in a table of that name \(loaded: posts \(30\), users \(3\)\)"):
        keys.pick("comments")
