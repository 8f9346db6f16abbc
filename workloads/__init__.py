"""The workload API and registry.

A workload is a set of tables (SQLAlchemy `MetaData` in the runner's own schema) and a set of
named ops, each with a weight and a kind ("read" or "write"). `--read-ratio` picks the kind,
the weights pick the op within it. Each op has an async implementation (given an
`async_sessionmaker`) and a sync one (given a `sessionmaker`); both receive a `random.Random`
for their data values. Workloads register themselves by name with `register`.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import sessionmaker

SCHEMA = "runner"  # every workload's tables live here, never in `public`
BUILTIN_MODULES = ("workloads.seed", "workloads.noop")

AsyncOp = Callable[[async_sessionmaker, random.Random], Awaitable[None]]
SyncOp = Callable[[sessionmaker, random.Random], None]


@dataclass(frozen=True)
class Op:
    name: str
    kind: Literal["read", "write"]
    weight: float
    run_async: AsyncOp
    run_sync: SyncOp


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    metadata: MetaData
    ops: tuple[Op, ...]
    # Rows each successful op adds, per table: {"write": {"a": 3, "b": 5}}; checked after a run.
    rows_per_op: dict[str, dict[str, int]]

    def expected_rows(self, ok_by_op: dict[str, int]) -> dict[str, int]:
        """The rows the committed ops must have left in each table."""
        rows = {str(table.name): 0 for table in self.metadata.sorted_tables}
        for op, per_table in self.rows_per_op.items():
            for table, count in per_table.items():
                rows[table] += count * ok_by_op.get(op, 0)
        return rows

    def _of_kind(self, kind: str) -> tuple[list[Op], list[float]]:
        ops = [op for op in self.ops if op.kind == kind]
        return ops, [op.weight for op in ops]

    def op_sequence(self, rng: random.Random, read_ratio: float) -> Iterator[Op]:
        """An endless, seed-determined sequence of ops: kind by `read_ratio`, op by weight."""
        reads, read_weights = self._of_kind("read")
        writes, write_weights = self._of_kind("write")
        if not reads:
            read_ratio = 0.0
        if not writes:
            read_ratio = 1.0
        while True:
            if rng.random() < read_ratio:
                yield rng.choices(reads, read_weights)[0]
            else:
                yield rng.choices(writes, write_weights)[0]


WORKLOADS: dict[str, Workload] = {}


def register(workload: Workload) -> Workload:
    if workload.metadata.schema != SCHEMA:
        raise ValueError(f"workload {workload.name!r}: tables must live in schema {SCHEMA!r}")
    WORKLOADS[workload.name] = workload
    return workload


for _module in BUILTIN_MODULES:
    importlib.import_module(_module)
