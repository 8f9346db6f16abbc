"""Gunther's Universal Scalability Law, fitted to throughput at a few concurrency levels.

    X(N) = λ N / (1 + σ (N - 1) + κ N (N - 1))

λ is the throughput of one op in flight, σ the share lost to contention (queueing for something
shared), κ the cost of coherency (every op in flight making every other one slower). Past
N* = sqrt((1 - σ) / κ) more concurrency lowers throughput. The fit is Gunther's own regression
(Baron Schwartz, *Practical Scalability Analysis with the USL*): with C(N) = X(N) / λ, the
deviation from linear scaling N / C(N) - 1 is the quadratic σ (N - 1) + κ N (N - 1) through the
origin, two coefficients by least squares, no iteration. λ is taken from the lowest level
measured, scaled to one in flight (X(N₀) / N₀): exact when that level is 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Fit:
    lam: float  # ops/s with one op in flight
    sigma: float  # contention, 0..1
    kappa: float  # coherency, >= 0

    def throughput(self, n: float) -> float:
        """The throughput the law predicts at `n` ops in flight."""
        return self.lam * n / (1 + self.sigma * (n - 1) + self.kappa * n * (n - 1))

    @property
    def peak_concurrency(self) -> float | None:
        """N*: where throughput is highest; None when it only grows (no coherency cost)."""
        if self.kappa <= 0 or self.sigma >= 1:
            return None
        return math.sqrt((1 - self.sigma) / self.kappa)


def fit(points: list[tuple[float, float]]) -> Fit | None:
    """The law through (concurrency, ops/s) points; None with fewer than three distinct levels,
    where two coefficients and λ cannot all be told apart."""
    points = sorted((n, x) for n, x in points if n >= 1 and x > 0)
    if len({n for n, _ in points}) < 3:
        return None
    n0, x0 = points[0]
    lam = x0 / n0
    # y = σ a + κ b, with a = N - 1 and b = N (N - 1): least squares through the origin.
    rows = [(n - 1, n * (n - 1), n / (x / lam) - 1) for n, x in points if n > 1]
    saa = sum(a * a for a, _, _ in rows)
    sab = sum(a * b for a, b, _ in rows)
    sbb = sum(b * b for _, b, _ in rows)
    say = sum(a * y for a, _, y in rows)
    sby = sum(b * y for _, b, y in rows)
    det = saa * sbb - sab * sab
    if det <= 0:
        return None
    sigma = (say * sbb - sby * sab) / det
    kappa = (sby * saa - say * sab) / det
    if kappa < 0:  # no sign of coherency cost: the best fit with κ = 0
        kappa, sigma = 0.0, say / saa
    return Fit(lam, min(max(sigma, 0.0), 1.0), kappa)
