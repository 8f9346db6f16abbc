"""The supervisor's rules on a scripted transport and a clock of the test's own: no process, no
server, no sleeping."""

from __future__ import annotations

from typing import Any

from runner.measure.collector import Collector
from runner.measure.histogram import LatencyHistogram
from runner.measure.records import WIRE_VERSION, encode
from runner.resolve import spec
from runner.transport import Ended, Event, Line
from runner.transport.plan import make_plans
from runner.transport.supervisor import TICK_S, Supervisor
from runner.worker.plan import WorkerPlan


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ScriptedTransport:
    """Each worker's events at the times the script gives; poll advances the clock by its timeout.
    Events a worker sends after its release are timed from the release (`after_go`)."""

    def __init__(
        self, clock: Clock, before_go: list[tuple[float, Event]], after_go: list[tuple[float, Event]], silence_allowance_s: float = 2.0
    ) -> None:
        self.silence_allowance_s = silence_allowance_s
        self._clock = clock
        self._pending = sorted(before_go, key=lambda item: item[0])
        self._after_go = after_go
        self.released_at: float | None = None
        self.killed: list[int | None] = []
        self.stopped = False

    def start(self, plans: list[WorkerPlan]) -> None:
        pass

    def poll(self, timeout_s: float) -> list[Event]:
        self._clock.now += timeout_s
        due = [event for at, event in self._pending if at <= self._clock.now]
        self._pending = [(at, event) for at, event in self._pending if at > self._clock.now]
        return due

    def release(self) -> None:
        self.released_at = self._clock.now
        self._pending = sorted(self._pending + [(self._clock.now + at, event) for at, event in self._after_go], key=lambda item: item[0])

    def stop(self, worker: int | None = None) -> None:
        self.stopped = True

    def kill(self, worker: int | None = None) -> None:
        """As a real transport: a killed worker's stream ends, and nothing it had not sent comes."""
        self.killed.append(worker)
        gone = {worker} if worker is not None else {0, 1}
        self._pending = [(at, event) for at, event in self._pending if event.worker not in gone]
        self._pending += [(self._clock.now, Ended(w, -9)) for w in sorted(gone)]
        self._after_go = [(at, event) for at, event in self._after_go if event.worker not in gone]

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any] | None:
        return None


def _line(worker: int, seq: int, kind: str, **fields: Any) -> Line:
    return Line(worker, encode({"v": WIRE_VERSION, "kind": kind, "worker": worker, "seq": seq, **fields}))  # type: ignore[arg-type]


def _start(worker: int) -> Line:
    return _line(worker, 0, "start", pid=100 + worker, host="h", node=None, planned_ops=None, settings={}, loop=None)


def _measured(worker: int) -> list[tuple[float, Event]]:
    """After the release: go, one interval, the final record, the end of the stream."""
    empty = LatencyHistogram().to_dict()
    return [
        (0.05, _line(worker, 1, "go", wall_ns=0)),
        (1.0, _line(worker, 2, "interval", phase="measure", t_ns=1_000_000_000, ops={}, pool_checked_out=0,
                    schedule={"late_ops": 0, "max_lag_ns": 0}, tick_lag=empty)),
        (1.5, _line(worker, 3, "final", status="done", reason=None, end_ns=1_500_000_000, cpu_user_s=0.0, cpu_sys_s=0.0,
                    cpu_measured_s=0.0, max_rss_kb=0, exemplars={})),
        (1.6, Ended(worker, 0)),
    ]


def test_waiting_at_the_start_barrier_is_not_silence() -> None:
    """Worker 0 was ready at once and waited 40 s for worker 1 (128 processes starting on 2 cores
    took 49 s): released, it is heard from at its next interval, not declared unresponsive for the
    wait (88 of 128 workers were, and the run ended with 14 of 12,800 ops)."""
    clock = Clock()
    transport = ScriptedTransport(clock, [(0.5, _start(0)), (40.0, _start(1))], _measured(0) + _measured(1))
    config = spec(procs=2, duration_s=1.5, seed=1)
    collector = Collector([None, None], interval_s=1.0)
    supervisor = Supervisor(transport, make_plans(config, "postgresql://u@h/db", [1, 1], {}, {}), collector, clock=clock)
    supervisor.run()
    assert transport.released_at is not None and 40.0 <= transport.released_at < 40.0 + 2 * TICK_S
    assert supervisor.stop_reason is None and transport.killed == []
    assert [w.status for w in collector.workers] == ["done", "done"]


def test_a_worker_silent_after_the_release_is_still_unresponsive() -> None:
    """The watchdog still catches a worker that goes quiet in the measured part."""
    clock = Clock()
    quiet = [(0.05, _line(1, 1, "go", wall_ns=0))]  # released, then nothing: a host gone silent
    transport = ScriptedTransport(clock, [(0.5, _start(0)), (1.0, _start(1))], _measured(0) + quiet)
    collector = Collector([None, None], interval_s=1.0)
    supervisor = Supervisor(transport, make_plans(spec(procs=2, duration_s=1.5, seed=1), "postgresql://u@h/db", [1, 1], {}, {}),
                            collector, grace_s=1.0, clock=clock)
    supervisor.run()
    assert collector.workers[1].status == "unresponsive" and 1 in transport.killed
    assert supervisor.stop_reason is not None and "worker 1 unresponsive" in supervisor.stop_reason


def _late(worker: int, delay_s: float) -> list[tuple[float, Event]]:
    """A live worker whose records (its interval and final) arrive `delay_s` late, in a burst."""
    return [(at if at < 0.1 else at + delay_s, event) for at, event in _measured(worker)]


def test_the_watchdog_allows_what_the_transport_allows() -> None:
    """Records 7 s late (a starved host's Ray streaming: 5 s seen) are unresponsive on a pipe
    (3 intervals + 2 s) and not on a transport that allows 10 s."""
    for allowance, expected in ((2.0, "unresponsive"), (10.0, "done")):
        clock = Clock()
        transport = ScriptedTransport(clock, [(0.5, _start(0)), (1.0, _start(1))], _measured(0) + _late(1, 7.0), allowance)
        collector = Collector([None, None], interval_s=1.0)
        supervisor = Supervisor(transport, make_plans(spec(procs=2, duration_s=1.5, seed=1), "postgresql://u@h/db", [1, 1], {}, {}),
                                collector, grace_s=1.0, clock=clock)
        supervisor.run()
        assert collector.workers[1].status == expected, allowance


def test_every_transition_is_logged_at_debug(caplog: Any) -> None:
    """--debug shows where a run is: start, release, stop and why, kill, each worker's end."""
    clock = Clock()
    quiet = [(0.05, _line(1, 1, "go", wall_ns=0))]
    transport = ScriptedTransport(clock, [(0.5, _start(0)), (1.0, _start(1))], _measured(0) + quiet)
    supervisor = Supervisor(transport, make_plans(spec(procs=2, duration_s=1.5, seed=1), "postgresql://u@h/db", [1, 1], {}, {}),
                            Collector([None, None], interval_s=1.0), grace_s=1.0, clock=clock)
    with caplog.at_level("DEBUG", logger="runner"):
        supervisor.run()
    lines = [record.getMessage() for record in caplog.records if record.name == "runner.transport.supervisor"]
    assert lines[0] == "start: 2 workers"
    assert "release: all 2 workers ready" in lines
    assert any(line.startswith("stop: worker 1 unresponsive") for line in lines)
    assert any(line.startswith("worker 0 ended") for line in lines) and any(line.startswith("worker 1 ended") for line in lines)
    assert lines.index("release: all 2 workers ready") < next(i for i, line in enumerate(lines) if line.startswith("stop:"))
