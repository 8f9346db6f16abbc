"""Planning a run's workers: each one's share of the ops, its seed, its pool, its plan."""

from __future__ import annotations

import hashlib
import os

from runner.config import ISOLATION
from runner.dsn import driver_args
from runner.spec import RunSpec
from runner.worker.plan import WorkerPlan


def split_ops(total: int, procs: int) -> list[int]:
    """Shares that differ by at most one and sum exactly to `total`."""
    base, extra = divmod(total, procs)
    return [base + (1 if i < extra else 0) for i in range(procs)]


def worker_seed(seed: int, worker_id: int) -> int:
    """A per-worker RNG seed: the same --seed gives every worker the same op sequence again."""
    digest = hashlib.sha256(f"{seed}:{worker_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def op_shares(config: RunSpec) -> list[int | None]:
    """Each worker's share of --ops; None for every worker when --duration bounds the run."""
    if config.ops is None:
        return [None] * config.procs
    return list(split_ops(config.ops, config.procs))


def worker_session_settings(config: RunSpec, dsn: str, embedded: bool) -> dict[str, str]:
    """The session settings every worker connection gets: the DSN's `options`, --pg-setting on a
    user's server (the embedded server takes them as server flags), and --op-timeout."""
    _, _, settings = driver_args(dsn, config.worker_driver)
    if not embedded:
        settings.update(config.pg_settings)
    if config.op_timeout_s is not None:
        settings["statement_timeout"] = str(max(1, round(config.op_timeout_s * 1000)))  # ms
    if config.isolation is not None:  # a session default: every layer and driver gets it, checked like the rest
        settings["default_transaction_isolation"] = ISOLATION[config.isolation]
    return settings


def make_plans(
    config: RunSpec, dsn: str, pool_sizes: list[int], session_settings: dict[str, str], table_rows: dict[str, int]
) -> list[WorkerPlan]:
    assert config.seed is not None
    warmups = split_ops(config.warmup_ops, config.procs)
    return [
        WorkerPlan(
            i, config, dsn, share, warmups[i], worker_seed(config.seed, i), pool_sizes[i], os.getpid(), session_settings, table_rows
        )
        for i, share in enumerate(op_shares(config))
    ]
