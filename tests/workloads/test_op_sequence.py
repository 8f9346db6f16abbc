"""The op stream's mix: kinds by --read-ratio, ops by weight, whichever shortcut applies."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
from sqlalchemy import MetaData

from workloads import Op, Workload


async def _nothing(*_: object) -> None:
    return None


def _workload(*ops: tuple[str, str, float]) -> Workload:
    return Workload("mix", "test", MetaData(), tuple(Op(name, kind, weight, (_nothing, None)) for name, kind, weight in ops))  # type: ignore[arg-type]


def _shares(workload: Workload, read_ratio: float, n: int = 20_000, seed: int = 7) -> dict[str, float]:
    counts = Counter(op.name for op in itertools.islice(workload.op_sequence(random.Random(seed), read_ratio), n))
    return {name: count / n for name, count in counts.items()}


@pytest.mark.parametrize("read_ratio", [0.0, 0.3, 1.0])
def test_one_op_per_kind_follows_the_read_ratio(read_ratio: float) -> None:
    shares = _shares(_workload(("r", "read", 1.0), ("w", "write", 1.0)), read_ratio)
    assert shares.get("r", 0.0) == pytest.approx(read_ratio, abs=0.015)  # 4 sigma at n = 20,000
    assert shares.get("w", 0.0) == pytest.approx(1 - read_ratio, abs=0.015)


@pytest.mark.parametrize("read_ratio", [0.0, 0.5])
def test_weights_pick_among_one_kinds_ops(read_ratio: float) -> None:
    shares = _shares(_workload(("r", "read", 1.0), ("w1", "write", 3.0), ("w2", "write", 1.0)), read_ratio)
    writes = 1 - read_ratio
    assert shares["w1"] == pytest.approx(0.75 * writes, abs=0.015)
    assert shares["w2"] == pytest.approx(0.25 * writes, abs=0.015)


def test_a_single_op_workload_is_that_op_and_the_sequence_repeats_with_its_seed() -> None:
    single = _workload(("only", "write", 1.0))
    assert _shares(single, 0.5) == {"only": 1.0}  # no reads: the ratio cannot apply
    mixed = _workload(("r", "read", 1.0), ("w1", "write", 3.0), ("w2", "write", 1.0))
    runs = [[op.name for op in itertools.islice(mixed.op_sequence(random.Random(seed), 0.4), 500)] for seed in (1, 1, 2)]
    assert runs[0] == runs[1] != runs[2]
