"""--stages: a run as a list of steps, each a duration and a target, as k6's stages.

    30s:100/s,ramp:60s:400/s,30s:100/s   the open loop's rate (ops/s across all workers)
    30s:10,30s:40                         window mode's ops in flight per worker

A step holds its target for its duration; a `ramp:` step moves linearly from the previous step's
target (0 before the first) to its own. Durations take `ms`, `s` or `m`.
"""

from __future__ import annotations

import re

from runner.config import DURATION_UNIT_S
from runner.errors import UsageError

STEP = re.compile(r"^(ramp:)?(\d+(?:\.\d+)?)(ms|s|m):(\d+(?:\.\d+)?)(/s)?$")

Stage = tuple[str, float, float]  # ("hold" | "ramp", seconds, target)


def parse_stages(text: str) -> tuple[str, tuple[Stage, ...]]:
    """("rate" | "concurrency", the steps); UsageError names the step that is wrong."""
    steps: list[Stage] = []
    kinds = set()
    for part in text.split(","):
        match = STEP.match(part.strip())
        if match is None:
            raise UsageError(f"--stages: {part.strip()!r} is not a step: write 30s:100/s (a rate), 30s:10 (ops in flight) or ramp:60s:400/s")
        ramp, number, unit, target, per_s = match.groups()
        seconds = float(number) * DURATION_UNIT_S[unit]
        if seconds <= 0:
            raise UsageError(f"--stages: {part.strip()!r} lasts no time")
        kinds.add("rate" if per_s else "concurrency")
        value = float(target)
        if not per_s and (value != int(value) or value < 1):
            raise UsageError(f"--stages: {part.strip()!r}: ops in flight is a whole number of at least 1")
        if per_s and value <= 0 and not ramp:
            raise UsageError(f"--stages: {part.strip()!r}: a rate must be above 0/s")
        steps.append(("ramp" if ramp else "hold", seconds, value))
    if len(kinds) != 1:
        raise UsageError("--stages: every step is a rate (30s:100/s) or every step is ops in flight (30s:10), not both")
    return kinds.pop(), tuple(steps)


def total_s(stages: tuple[Stage, ...]) -> float:
    return sum(seconds for _, seconds, _ in stages)


def _segments(stages: tuple[Stage, ...]) -> list[tuple[float, float, float, float]]:
    """(start, end, target at start, target at end) per step: the one walk the others read."""
    out, previous, start = [], 0.0, 0.0
    for kind, seconds, target in stages:
        out.append((start, start + seconds, previous if kind == "ramp" else target, target))
        previous, start = target, start + seconds
    return out


def boundaries(stages: tuple[Stage, ...]) -> list[tuple[float, float]]:
    """(start, end) in seconds since the start barrier, per step."""
    return [(start, end) for start, end, _, _ in _segments(stages)]


def target_at(stages: tuple[Stage, ...], t_s: float) -> float:
    """The target `t_s` seconds after the start barrier (the last step's after the end)."""
    for start, end, target0, target1 in _segments(stages):
        if t_s < end:
            return target0 + (target1 - target0) * (t_s - start) / (end - start)
    return stages[-1][2]


def offered_ops(stages: tuple[Stage, ...]) -> int:
    """Ops a rate schedule makes due: the area under it."""
    return round(sum((target0 + target1) / 2 * (end - start) for start, end, target0, target1 in _segments(stages)))


def next_arrival(stages: tuple[Stage, ...], t_s: float, amount: float, scale: float) -> float | None:
    """When the schedule (each rate times `scale`: a worker's share) has made `amount` more ops
    due after `t_s`: the time at which the area under the rate grows by `amount`. Exact on each
    step (a rate that is constant or linear in time); None when that is after the last step."""
    owed = amount
    for start, end, rate0, rate1 in _segments(stages):
        if t_s >= end:
            continue
        t = max(t_s, start)
        slope = (rate1 - rate0) / (end - start) * scale
        rate = (rate0 * scale) + slope * (t - start)
        area = rate * (end - t) + slope / 2 * (end - t) ** 2
        if area >= owed:
            if abs(slope) < 1e-12:
                return t + owed / rate
            # slope/2 d^2 + rate d - owed = 0, the root that is in the step
            return t + (-rate + (rate * rate + 2 * slope * owed) ** 0.5) / slope
        owed -= area
    return None
