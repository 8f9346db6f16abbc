"""A connection-count sample: what the server's sampler sees, as plain data the measure side can bin."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    t_ns: int  # monotonic clock
    total: int
    active: int
    idle: int
    idle_in_transaction: int
