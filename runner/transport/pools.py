"""Each worker's connection pool, and the preflight that refuses pools the server cannot hold."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from runner.concurrency import MODES
from runner.errors import DatabaseError
from runner.spec import RunSpec
from runner.transport.plan import op_shares

PARENT_CONNECTIONS = 1  # the sampler; the parent's other connections are short and sequential


@dataclass(frozen=True)
class PoolPlan:
    sizes: list[int]  # pool_size per worker
    max_overflow: int
    warnings: list[str] = field(default_factory=list)

    def connections(self) -> int:
        """The most connections all workers together can open."""
        return sum(self.sizes) + self.max_overflow * len(self.sizes)


def connection_budget(server: dict[str, Any], in_use: int) -> int:
    """Connections left for workers: max_connections minus reserved connections, others' and our own."""
    settings = server["settings"]
    reserved = int(settings.get("superuser_reserved_connections", 0)) + int(settings.get("reserved_connections", 0))
    return int(settings["max_connections"]) - reserved - in_use - PARENT_CONNECTIONS


def plan_pools(config: RunSpec, budget: int) -> PoolPlan:
    """By default each pool is the worker's concurrency, so the pool is never the bottleneck.

    The all-tasks-at-once mode has as many ops in flight as it has ops; its default pool is capped
    at the worker's fair share of the budget (excess tasks queue on the pool). `--pool-size` and
    `--max-overflow` override the default, with a warning when the pool is smaller than the
    concurrency (the run then measures the pool's queue). Pools that cannot fit are refused.
    """
    mode = MODES[config.mode]
    concurrency = [mode.concurrency(share or sys.maxsize, config.chunk, config.threads) for share in op_shares(config)]
    if mode.takes_rate:  # as many in flight as the schedule's backlog, up to --max-inflight
        concurrency = [min(c, config.inflight_cap) for c in concurrency]
    warnings = []
    if config.pool_size is not None:
        sizes = [config.pool_size] * config.procs
        if config.pool_size + config.max_overflow < max(concurrency):
            warnings.append(
                f"pool of {config.pool_size}+{config.max_overflow} connections is smaller than the "
                f"{max(concurrency)} ops in flight per worker: latencies include waiting for the pool"
            )
    elif mode.width is None:  # as many ops in flight as it has ops, unless capped
        sizes = [max(1, min(size, budget // config.procs)) for size in concurrency]
    else:
        sizes = concurrency
    plan = PoolPlan(sizes, config.max_overflow, warnings)
    if plan.connections() > budget:
        raise DatabaseError(
            f"{config.procs} procs x {max(sizes) + config.max_overflow} connections = {plan.connections()} exceed the "
            f"server's {budget} free connections (max_connections minus reserved and in use): "
            "lower --procs, --chunk/--threads or --pool-size, or raise max_connections "
            "(through a pooler, tell the runner its limit with --max-client-connections)"
        )
    return plan
