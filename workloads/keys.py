"""Key pickers (`--keys`): which existing row an op touches, as YCSB and pgbench define them.

    uniform                      every key 1..n equally likely
    zipf[:theta]                 scrambled zipfian (YCSB): rank r has probability 1/r^theta / zeta(n, theta),
                                 theta 0.99 by default; ranks are hashed onto keys so hot keys are spread
                                 over the table instead of all at its start
    hotspot[:fraction:prob]      (YCSB) `prob` of picks go to the first `fraction` of keys, uniformly;
                                 the rest uniformly to the others; 0.2:0.8 by default
    latest                       (YCSB) the most recently inserted keys are the hottest: n - zipf rank + 1

The zipfian generator is Gray et al.'s "Quickly generating billion-record synthetic databases"
(SIGMOD 1994), the one YCSB's ZipfianGenerator implements; zeta(n) is kept per key range and grown
incrementally when n grows (the `latest` table grows as writes insert).
"""

from __future__ import annotations

import math
import random
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from runner.errors import UsageError

DISTRIBUTIONS = ("uniform", "zipf", "hotspot", "latest")
DEFAULT_THETA = 0.99  # YCSB's zipfian constant
DEFAULT_HOTSPOT = (0.2, 0.8)  # YCSB's hotspot defaults: 80 % of picks to 20 % of keys
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1
NUMBER = r"(\d+(?:\.\d+)?)"
ZETAS_KEPT = 32  # key ranges whose zeta a zipfian picker keeps (see Zipfian._zeta)
SPEC = re.compile(rf"^(uniform|latest|zipf(?::{NUMBER})?|hotspot(?::{NUMBER}:{NUMBER})?)$")


@dataclass(frozen=True)
class KeySpec:
    """A parsed --keys: the distribution and its parameters."""

    name: str = "uniform"
    theta: float = DEFAULT_THETA
    hot_fraction: float = DEFAULT_HOTSPOT[0]
    hot_probability: float = DEFAULT_HOTSPOT[1]

    @classmethod
    def parse(cls, text: str) -> KeySpec:
        match = SPEC.match(text.strip())
        if match is None:
            raise UsageError(f"--keys {text!r}: one of uniform, zipf[:THETA], hotspot[:FRACTION:PROBABILITY], latest")
        name = match.group(1).split(":")[0]
        theta, fraction, probability = match.group(2), match.group(3), match.group(4)
        spec = cls(
            name,
            float(theta) if theta else DEFAULT_THETA,
            float(fraction) if fraction else DEFAULT_HOTSPOT[0],
            float(probability) if probability else DEFAULT_HOTSPOT[1],
        )
        if not 0 < spec.theta < 1:  # Gray et al.'s method needs 0 < theta < 1
            raise UsageError(f"--keys {text!r}: zipf's theta must be between 0 and 1 (YCSB uses 0.99)")
        if not (0 < spec.hot_fraction < 1 and 0 <= spec.hot_probability <= 1):
            raise UsageError(f"--keys {text!r}: hotspot takes a fraction of keys in (0, 1) and a probability in [0, 1]")
        return spec

    def __str__(self) -> str:
        if self.name == "zipf":
            return f"zipf:{self.theta:g}"
        if self.name == "hotspot":
            return f"hotspot:{self.hot_fraction:g}:{self.hot_probability:g}"
        return self.name


def fnv1a_64(value: int) -> int:
    """FNV-1a over the 8 bytes of `value`, as YCSB scrambles zipfian ranks."""
    digest = FNV_OFFSET
    for _ in range(8):
        digest ^= value & 0xFF
        digest = (digest * FNV_PRIME) & MASK64
        value >>= 8
    return digest


class Zipfian:
    """Ranks 0..n-1, rank r with probability (r+1)^-theta / zeta(n, theta)."""

    def __init__(self, theta: float) -> None:
        self.theta = theta
        self.alpha = 1.0 / (1.0 - theta)
        self.zeta2 = 1.0 + 0.5**theta
        self.n = 0
        self.zetan = 0.0
        self.eta = 0.0
        # zeta(n) for the n picked among lately, least recently used first: a workload picks in
        # several key ranges (two tables), each growing. zeta was re-summed from 0 on every switch
        # between two ranges (40,649 -> 29 ops/s); now a range's zeta is kept, and a new n sums only
        # the terms past the largest smaller n kept.
        self._zetas: OrderedDict[int, float] = OrderedDict()
        self.terms = 0  # zeta terms summed so far: the picker's set-up work, whatever its ranges

    def _zeta(self, n: int) -> float:
        found = self._zetas.get(n)
        if found is None:
            below = max((m for m in self._zetas if m < n), default=0)
            found = (self._zetas[below] if below else 0.0) + math.fsum((i + 1) ** -self.theta for i in range(below, n))
            self.terms += n - below
            self._zetas[n] = found
            if len(self._zetas) > ZETAS_KEPT:
                self._zetas.popitem(last=False)
        self._zetas.move_to_end(n)
        return found

    def _switch(self, n: int) -> None:
        self.n, self.zetan = n, self._zeta(n)
        self.eta = (1 - (2.0 / n) ** (1 - self.theta)) / (1 - self.zeta2 / self.zetan) if n > 1 else 0.0

    def rank(self, rng: random.Random, n: int) -> int:
        if n != self.n:
            self._switch(n)
        if n == 1:
            return 0
        u = rng.random()
        uz = u * self.zetan
        if uz < 1.0:
            return 0
        if uz < self.zeta2:
            return 1
        return min(n - 1, int(n * (self.eta * u - self.eta + 1) ** self.alpha))


class Keys:
    """`pick(n)`: a key in 1..n by the run's --keys; `pick("posts")`: one of the keys the load put
    in that table (1..its rows). One per worker, with the worker's own RNG."""

    def __init__(self, spec: KeySpec, rng: random.Random, tables: Mapping[str, int] | None = None) -> None:
        self.spec = spec
        self.rng = rng
        self.tables: Mapping[str, int] = tables or {}
        self._zipf = Zipfian(spec.theta if spec.name == "zipf" else DEFAULT_THETA)

    def pick(self, n: int | str) -> int:
        if isinstance(n, str):
            if n not in self.tables:
                loaded = ", ".join(f"{name} ({rows:,})" for name, rows in self.tables.items()) or "none"
                raise LookupError(f"keys.pick({n!r}): no rows were loaded in a table of that name (loaded: {loaded})")
            n = self.tables[n]
        if n < 1:
            raise ValueError(f"no key to pick among {n}")
        name, rng = self.spec.name, self.rng
        if name == "uniform":
            return rng.randint(1, n)
        if name == "zipf":
            return fnv1a_64(self._zipf.rank(rng, n)) % n + 1
        if name == "latest":
            return n - self._zipf.rank(rng, n)
        hot = max(1, int(n * self.spec.hot_fraction))
        if hot == n or rng.random() < self.spec.hot_probability:
            return rng.randint(1, hot)
        return rng.randint(hot + 1, n)
