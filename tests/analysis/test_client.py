"""The client-bottleneck verdict (runner.analysis.client): what changes it, by the host's cores."""

from __future__ import annotations

from runner.analysis.client import bottleneck
from runner.measure.collector import WorkerState

S = 1_000_000_000


def _worker(worker_id: int, host: str, cpu_share: float, lag_ms: float = 50.0) -> WorkerState:
    """A worker 10 s long whose probe timer was `lag_ms` late at every tick, at this CPU share."""
    worker = WorkerState(worker_id, 100, host=host, end_ns=10 * S, cpu_measured_s=10 * cpu_share)
    for _ in range(100):
        worker.tick_lag.record(int(lag_ms * 1_000_000))
    return worker


def test_a_starved_worker_alone_is_never_told_to_use_fewer_processes() -> None:
    verdict = bottleneck([_worker(0, "here", 0.4)], True, cores=2, here="here")
    assert verdict["cause"] == "starved" and verdict["advice"] == "separate-hosts"
    assert "fewer" not in verdict["verdict"] and "1 worker on 2 cores" in verdict["verdict"] and "--cluster ray" in verdict["verdict"]


def test_more_workers_than_cores_are_told_how_many_fit() -> None:
    verdict = bottleneck([_worker(i, "here", 0.4) for i in range(4)], False, cores=2, here="here")
    assert verdict["advice"] == "fewer-procs" and "4 workers on 2 cores: at most 2 --procs per host" in verdict["verdict"]
    assert "threads (GIL)" in verdict["verdict"]


def test_a_busy_worker_is_told_to_add_workers_and_another_hosts_cores_are_not_guessed() -> None:
    busy = bottleneck([_worker(0, "here", 0.97), _worker(1, "here", 0.2)], True, cores=2, here="here")
    assert busy["cause"] == "cpu" and busy["advice"] == "add-procs" and "add --procs or hosts" in busy["verdict"]
    remote = bottleneck([_worker(0, "node-b", 0.3)], True, cores=2, here="here")
    assert remote["advice"] == "more-hosts" and "node-b" in remote["verdict"] and "fewer" not in remote["verdict"]
    idle = bottleneck([_worker(0, "here", 0.3, lag_ms=1.0)], True, cores=2, here="here")
    assert idle["limited"] is False and idle["advice"] is None and idle["verdict"] is None
