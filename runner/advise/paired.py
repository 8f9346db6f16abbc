"""Paired, interleaved rounds: is B faster than A, and by how much, with a 95 % interval.

Each round measures A and B back to back, in alternating order (A B, then B A, ...), so a drift
of the machine (another job, a cache, the server's autovacuum) falls on both alike and cancels in
the round's ratio B/A. The ratios' logs are averaged and the interval is Student's t over the
rounds: a few percent is resolved where independent repeats, spread 15-70 % on a shared box,
cannot tell anything (bench/parity.py measures the harness the same way).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

# Student's t at 97.5 % (a two-sided 95 % interval) by degrees of freedom; between two entries
# the smaller one's, which is the wider interval.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def t975(df: int) -> float:
    """t for `df` (>= 1) degrees of freedom, rounded towards the wider interval."""
    return T975[max(k for k in T975 if k <= df)]


@dataclass(frozen=True)
class Ratio:
    """B over A: the geometric mean of the rounds' ratios and its 95 % interval."""

    rounds: int
    ratio: float
    low: float
    high: float

    @property
    def decided(self) -> bool:
        """The interval excludes 1: one of the two is faster."""
        return self.low > 1 or self.high < 1

    @property
    def half_width(self) -> float:
        """The interval's half-width, as a share (0.04: ±4 %)."""
        return (self.high - self.low) / 2 / self.ratio


def paired_ratio(pairs: list[tuple[float, float]]) -> Ratio | None:
    """(A, B) throughput per round -> B/A; None before two rounds (no interval from one)."""
    logs = [math.log(b / a) for a, b in pairs if a > 0 and b > 0]
    if len(logs) < 2:
        return None
    mean = statistics.fmean(logs)
    half = t975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return Ratio(len(logs), math.exp(mean), math.exp(mean - half), math.exp(mean + half))
