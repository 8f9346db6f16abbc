"""What one worker is told to do: made by the transport's planner, read by the worker body."""

from __future__ import annotations

from dataclasses import dataclass

from runner.spec import RunSpec


@dataclass(frozen=True)
class WorkerPlan:
    worker_id: int
    config: RunSpec
    dsn: str  # resolved (embedded or the user's); never printed
    ops: int | None  # this worker's share of --ops; None: until --duration ends
    warmup_ops: int  # this worker's share of --warmup ops
    seed: int  # derived from --seed and the worker id
    pool_size: int
    parent_pid: int
    session_settings: dict[str, str]  # every worker connection's session settings (worker_session_settings)
    table_rows: dict[str, int]  # the rows setup put in each table (`ctx.keys.pick("posts")` picks among them)
