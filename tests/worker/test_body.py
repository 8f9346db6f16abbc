"""The worker's lifecycle, in this process: its steps in order on a backend of the test's own
(unit), and the whole worker body against the session's server in each kind of loop (db)."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest

from runner.resolve import spec
from runner.spec import RunSpec
from runner.worker.body import SyncWorkerIO, WorkerContext, _complete, _lifecycle, run_worker
from runner.worker.channel import Channel
from runner.worker.plan import WorkerPlan
from runner.worker.recorder import Recorder
from workloads import Handle


def _plan(config: RunSpec, dsn: str) -> WorkerPlan:
    assert config.ops is not None
    return WorkerPlan(0, config, dsn, config.ops, config.warmup_ops, 1, 2, 0, {}, {})


def _worker(plan: WorkerPlan) -> list[dict[str, Any]]:
    """run_worker on `plan`, released at once; its records."""
    lines: list[bytes] = []
    go = threading.Event()
    go.set()
    run_worker(plan, Channel(lines.append, 0), go, threading.Event())
    return [orjson.loads(line) for line in lines]


class _Backend:
    """A layer that records what the lifecycle asked of it; its preflight fails when told to."""

    def __init__(self, calls: list[str], refuse: bool) -> None:
        self.calls, self.refuse = calls, refuse
        self.handle = Handle(None, None)

    def checked_out(self) -> int:
        return 0

    def preflight(self) -> dict[str, str]:
        self.calls.append("preflight")
        if self.refuse:
            raise ConnectionRefusedError("no server")
        return {}

    def flush_stats(self) -> None:
        self.calls.append("flush_stats")

    def close(self) -> None:
        self.calls.append("close")


class _TestIO(SyncWorkerIO):
    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    def backend(self, plan: WorkerPlan) -> _Backend:
        return self._backend


def _context(config: RunSpec, lines: list[bytes]) -> WorkerContext:
    go = threading.Event()
    go.set()
    return WorkerContext(_plan(config, "postgresql://nobody@127.0.0.1:1/none"), Channel(lines.append, 0), Recorder(()), threading.Event(), go)


def test_the_lifecycle_runs_its_steps_in_order_and_reports_warm_up_apart() -> None:
    calls: list[str] = []
    lines: list[bytes] = []
    config = spec(workload="noop", mode="sync", threads=2, ops=30, warmup_ops=6, interval_s=60.0)
    ctx = _context(config, lines)
    end_ns = _complete(_lifecycle(ctx, _TestIO(_Backend(calls, refuse=False))))
    records = [orjson.loads(line) for line in lines]
    assert calls == ["preflight", "flush_stats", "close"]
    assert [r["kind"] for r in records] == ["interval", "start", "go", "interval"]
    warmup, measured = records[0], records[-1]
    assert warmup["phase"] == "warmup" and sum(op["ok"] for op in warmup["ops"].values()) == 6
    assert sum(op["ok"] for op in measured["ops"].values()) == 30
    assert 0 < end_ns <= measured["t_ns"]  # the last interval ends when the emitter finishes, after it


def test_a_failed_step_still_closes_the_backend_and_raises() -> None:
    calls: list[str] = []
    lines: list[bytes] = []
    ctx = _context(spec(workload="noop", mode="sync", ops=5), lines)
    with pytest.raises(ConnectionRefusedError):
        _complete(_lifecycle(ctx, _TestIO(_Backend(calls, refuse=True))))
    assert calls == ["preflight", "close"] and lines == []


def test_a_worker_that_cannot_connect_is_refused_with_the_driver_s_reason() -> None:
    config = spec(workload="noop", mode="window", chunk=2, ops=5)
    records = _worker(_plan(config, "postgresql://nobody@127.0.0.1:1/none"))
    assert [r["kind"] for r in records] == ["final"]
    assert records[0]["status"] == "refused" and "refused" in records[0]["reason"].lower()


@pytest.mark.parametrize(
    ("mode", "layer", "width"),
    [
        ("sync", "orm", {"threads": 2}),
        ("sync", "raw", {"threads": 2}),
        ("window", "core", {"chunk": 3}),
        ("chunked", "raw", {"chunk": 3}),
        ("window", "orm", {"chunk": 3}),
    ],
)
def test_the_whole_worker_in_each_kind_of_loop(dsn: str, mode: str, layer: str, width: dict[str, int]) -> None:
    config = spec(workload="noop", mode=mode, layer=layer, ops=40, warmup_ops=4, dsn=dsn, **width)
    records = _worker(_plan(config, dsn))
    kinds = [r["kind"] for r in records]
    assert kinds[:3] == ["interval", "start", "go"] and kinds[-1] == "final", kinds
    final = records[-1]
    assert final["status"] == "done", final
    measured = [r for r in records if r["kind"] == "interval" and r["phase"] != "warmup"]
    assert sum(op["ok"] for r in measured for op in r["ops"].values()) == 40
    assert records[1]["settings"] is not None and final["cpu_measured_s"] > 0
