"""What a worker's lifecycle asks of its layer (httpx's twins: one name, a sync and an async form).

The orm and core layers' engine (runner.worker.engine) and the raw layer's pool (runner.worker.raw)
each come in both forms; the lifecycle (runner.worker.body) drives either through the same steps.
"""

from __future__ import annotations

from typing import Protocol

from workloads import Handle


class Backend(Protocol):
    """A layer in the sync mode."""

    handle: Handle  # what each op is given: the engine and sessions, or the raw pool's lease

    def checked_out(self) -> int:
        """Connections lent out now (the interval records' pool_checked_out)."""

    def preflight(self) -> dict[str, str]:
        """One connection, opened and asked for its session settings; PreflightError if it fails."""

    def flush_stats(self) -> None:
        """Have every idle connection's backend flush its statistics (warm-up's, before the barrier)."""

    def close(self) -> None: ...


class AsyncBackend(Protocol):
    """A layer in the async modes."""

    handle: Handle

    def checked_out(self) -> int: ...

    async def preflight(self) -> dict[str, str]: ...

    async def flush_stats(self) -> None: ...

    async def close(self) -> None: ...
