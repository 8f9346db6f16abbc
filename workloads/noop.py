"""noop: ops that do nothing and touch no table, for measuring the harness itself."""

from __future__ import annotations

import random

from sqlalchemy import MetaData

from workloads import SCHEMA, Handle, Op, Workload, register


async def noop_async(handle: Handle, rng: random.Random) -> None:
    return None


def noop_sync(handle: Handle, rng: random.Random) -> None:
    return None


WORKLOAD = register(
    Workload(
        name="noop",
        description=__doc__.splitlines()[0],
        metadata=MetaData(schema=SCHEMA),
        ops=(Op("noop", "read", 1.0, (noop_async, noop_sync), (noop_async, noop_sync), (noop_async, noop_sync)),),
    )
)
