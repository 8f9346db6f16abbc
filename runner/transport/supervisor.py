"""The rules of a run's workers, whatever carries them: start barrier, stop, grace, kill, watchdog.

The supervisor drains a transport's events into the collector and decides:
- release the workers together once every one is ready (the start barrier);
- a worker that refuses to start (its preflight failed) ends the run before it starts;
- the first worker lost (died, crashed, host gone) or failed stops all the others gracefully;
- a stop gives in-flight ops --grace, then the workers cancel them; whoever is still there a
  margin later is killed;
- a worker silent for 3 intervals + the transport's allowance (local 2 s, Ray 10 s) in the measured
  part is unresponsive: stopped and killed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from runner.measure.collector import Collector
from runner.measure.records import decode, decode_merged
from runner.measure.status import WorkerStatus
from runner.transport import Line, Lost, Merged, Transport
from runner.worker.plan import WorkerPlan

log = logging.getLogger(__name__)  # every transition at DEBUG: shown with --debug
TICK_S = 0.1
GRACE_S = 10.0  # in-flight ops get this long to finish after a stop
KILL_MARGIN_S = 5.0  # after the grace, workers cancel what is left and report it; then they are killed
SILENT_INTERVALS = 3  # the watchdog: a worker silent this many intervals, plus its transport's
# silence_allowance_s, is unresponsive


class Supervisor:
    """Runs the workers of one run to the end and feeds their records to a collector."""

    def __init__(
        self,
        transport: Transport,
        plans: list[WorkerPlan],
        collector: Collector,
        grace_s: float = GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._plans = plans
        self._collector = collector
        self._grace_s = grace_s
        self._clock = clock
        self._released = False
        self._killing = False
        self._kill_deadline: float | None = None
        self._last_heard = [clock()] * len(plans)
        self.stop_reason: str | None = None
        self.refused: str | None = None  # why the run could not start (a worker's preflight)
        self.on_go: Callable[[], str | None] = lambda: None  # just before release; a reason refuses

    def request_stop(self, reason: str) -> None:
        """Stop issuing ops everywhere; kill whatever is left after the grace period and a margin."""
        if self._kill_deadline is not None:
            return
        self.stop_reason = reason
        self._kill_deadline = self._clock() + self._grace_s + KILL_MARGIN_S
        log.debug("stop: %s; in-flight ops get %.1f s, then %.1f s more before a kill", reason, self._grace_s, KILL_MARGIN_S)
        self._transport.stop()

    def kill_all(self) -> None:
        """A second Ctrl-C (or the kill deadline): end every worker now."""
        if not self._killing:
            self._killing = True
            log.debug("kill: every worker still running")
        self._transport.kill()

    def run(self, on_tick: Callable[[], None] = lambda: None) -> None:
        log.debug("start: %d workers", len(self._plans))
        self._transport.start(self._plans)
        try:
            self._drain(on_tick)
        finally:
            self._transport.close()  # nothing outlives the run, whatever happened above

    def _drain(self, on_tick: Callable[[], None]) -> None:
        running = set(range(len(self._plans)))
        while running:
            for event in self._transport.poll(TICK_S):
                if isinstance(event, Merged):  # a node's intervals: each of its workers was heard
                    for worker in event.workers:
                        self._last_heard[worker] = self._clock()
                    self._collector.add_merged(decode_merged(event.data))
                    continue
                self._last_heard[event.worker] = self._clock()
                if isinstance(event, Line):
                    self._collector.add(decode(event.data))
                    continue
                running.discard(event.worker)
                log.debug("worker %d ended: %s", event.worker, event)
                if isinstance(event, Lost):
                    self._collector.mark_lost(event.worker, event.reason, event.host)
                else:
                    self._collector.mark_ended(event.worker, event.exitcode)
                self._worker_ended(event.worker)
            self._check()
            on_tick()

    def _worker_ended(self, worker_id: int) -> None:
        state = self._collector.workers[worker_id]
        if state.status is WorkerStatus.REFUSED and self.refused is None:
            self.refused = f"worker {worker_id} cannot start: {state.reason}"
            self.request_stop(self.refused)
        elif state.status.ends_the_run:
            self.request_stop(f"worker {worker_id} {state.status}: {state.reason}")

    def _check(self) -> None:
        now = self._clock()
        if not self._released and self._collector.all_ready and self._kill_deadline is None:
            veto = self.on_go()
            if veto is not None:
                log.debug("release refused: %s", veto)
                self.refused = veto
                self.request_stop(veto)
            else:
                log.debug("release: all %d workers ready", len(self._plans))
                self._released = True
                self._collector.go_ns = time.perf_counter_ns()
                self._transport.release()  # every worker is ready (and warmed up): start together
                # Waiting at the barrier is not silence: the first worker ready may have waited
                # a long time for the last (128 processes starting on 2 cores: 49 s).
                self._last_heard = [now] * len(self._plans)
        if self._released:
            self._watchdog(now)
        if self._kill_deadline is not None and now > self._kill_deadline:
            self.kill_all()

    def _watchdog(self, now: float) -> None:
        """A worker that sends nothing for 3 intervals + the transport's allowance is unresponsive."""
        silent_s = SILENT_INTERVALS * self._collector.interval_ns / 1e9 + self._transport.silence_allowance_s
        for worker_id, state in enumerate(self._collector.workers):
            if not state.finished and now - self._last_heard[worker_id] > silent_s:
                self._collector.mark_unresponsive(worker_id, now - self._last_heard[worker_id])
                self.request_stop(f"worker {worker_id} unresponsive: nothing heard for {now - self._last_heard[worker_id]:.1f} s")
                self._transport.kill(worker_id)
