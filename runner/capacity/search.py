"""The search over the offered rate: grow geometrically until a step fails, then bisect.

Pure bookkeeping, no I/O: the caller measures each rate it is given and says whether it passed.
The invariant is `passed < failed`: every rate tried lies between the highest rate that passed
and the lowest that failed, so one noisy step can narrow the bracket but never invert it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from runner.errors import UsageError


@dataclass(frozen=True)
class SearchSpec:
    start_per_s: float = 20.0
    growth: float = 2.0  # the next rate while every step passes: this many times the last
    precision: float = 0.05  # done when the first failing rate is within this share above the passing one
    max_per_s: float | None = None  # never offer more than this (a production service's safety cap)
    min_per_s: float = 1.0  # below this a step has too few ops to judge: the search gives up
    max_steps: int = 30

    def __post_init__(self) -> None:
        if self.start_per_s <= 0:
            raise UsageError(f"--start-rate must be positive, got {self.start_per_s:g}")
        if self.growth <= 1:
            raise UsageError(f"--growth must be above 1, got {self.growth:g}")
        if not 0 < self.precision < 1:
            raise UsageError(f"--precision must be between 0% and 100%, got {self.precision:.1%}")
        if self.max_per_s is not None and self.max_per_s < self.start_per_s:
            raise UsageError(f"--max-rate {self.max_per_s:g} is below --start-rate {self.start_per_s:g}")
        if self.max_steps < 2:
            raise UsageError(f"--max-steps must be at least 2, got {self.max_steps}")


@dataclass
class Search:
    spec: SearchSpec
    passed: float | None = None  # the highest rate that met every SLO
    failed: float | None = None  # the lowest rate that did not
    rates: list[float] = field(default_factory=list)
    outcome: str | None = None  # why the search ended, once it has: see `next_rate`

    def next_rate(self) -> float | None:
        """The rate to measure next, or None when the search is over (then `outcome` says why:
        "converged", "max_rate" (every rate up to --max-rate passed), "none_passed" (down to the
        lowest rate worth a step), or "max_steps")."""
        rate = self._next()
        if rate is not None and len(self.rates) >= self.spec.max_steps:
            rate, self.outcome = None, "max_steps"
        return rate

    def _next(self) -> float | None:
        spec = self.spec
        if not self.rates:
            return spec.start_per_s
        if self.failed is None:  # every step so far passed: grow
            assert self.passed is not None
            if spec.max_per_s is not None and self.passed >= spec.max_per_s:
                self.outcome = "max_rate"
                return None
            grown = self.passed * spec.growth
            return grown if spec.max_per_s is None else min(grown, spec.max_per_s)
        if self.passed is None:  # even the first rate failed: shrink
            shrunk = self.failed / spec.growth
            if shrunk < spec.min_per_s:
                self.outcome = "none_passed"
                return None
            return shrunk
        if self.failed <= self.passed * (1 + spec.precision):
            self.outcome = "converged"
            return None
        return math.sqrt(self.passed * self.failed)  # halfway on a log scale: precision is relative

    def record(self, rate: float, passed: bool) -> None:
        self.rates.append(rate)
        if passed:
            self.passed = rate if self.passed is None else max(self.passed, rate)
        else:
            self.failed = rate if self.failed is None else min(self.failed, rate)
