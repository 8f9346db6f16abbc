"""While the run goes on: a progress line on a terminal, and `--jsonl` interval lines on stdout.

Both read what the collector has already merged, at most once per interval, from the parent's
loop: they never touch the workers, so they cannot slow the measured ops. Before the start
barrier, a slow start (many workers, a long warm-up) is said on stderr rather than silent.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import orjson

from runner.measure.collector import Collector
from runner.measure.status import WorkerStatus
from runner.measure.timeline import timeline_entry
from runner.output import ResultStream
from runner.server.sampler import ConnectionSampler
from runner.spec import RunSpec

PROGRESS_PERIOD_S = 1.0
STARTING_QUIET_S = 2.0  # say nothing about start-up unless it takes longer than this
STARTING_PERIOD_S = 5.0  # then a line this often (a terminal's line is redrawn every second)


class Live:
    def __init__(
        self,
        config: RunSpec,
        collector: Collector,
        sampler: ConnectionSampler,
        stream: ResultStream | None = None,
        stderr: TextIO = sys.stderr,
    ) -> None:
        self._config, self._collector, self._sampler, self._stderr = config, collector, sampler, stderr
        self._stream = stream
        self._progress = not config.quiet and stderr.isatty()
        self._last_progress = 0.0
        self._streamed = 0  # timeline bins already written as JSON lines
        self._previous_ns = 0  # end of the last streamed bin since the release; 0: the release
        self._created = time.monotonic()
        self._last_starting = float("-inf")

    def tick(self) -> None:
        if not self._collector.go_ns:  # the workers have not been released yet
            self._starting()
            return
        if self._config.jsonl:
            self._stream_complete_bins()
        now = time.monotonic()
        if self._progress and now - self._last_progress >= PROGRESS_PERIOD_S:
            self._last_progress = now
            self._stderr.write("\r" + self._line() + "\x1b[K")
            self._stderr.flush()

    def _starting(self) -> None:
        """How far start-up has come, once it is slow enough to wonder about."""
        now = time.monotonic()
        period = PROGRESS_PERIOD_S if self._progress else STARTING_PERIOD_S
        if self._config.quiet or now - self._created < STARTING_QUIET_S or now - self._last_starting < period:
            return
        self._last_starting = now
        workers = self._collector.workers
        ready = sum(w.status is not WorkerStatus.STARTING for w in workers)
        line = f"runner: starting workers: {ready} of {len(workers)} ready after {now - self._created:.0f} s"
        if self._config.warmup_ops or self._config.warmup_s:
            line += " (ready = warmed up)"
        self._stderr.write(f"\r{line}\x1b[K" if self._progress else f"{line}\n")
        self._stderr.flush()
        if self._progress:
            self._last_progress = now  # the progress line takes over this terminal line

    def close(self) -> None:
        if self._config.jsonl:
            self._stream_complete_bins(final=True)
        if self._progress and self._last_progress:
            self._stderr.write("\n")

    def _stream_complete_bins(self, final: bool = False) -> None:
        """A bin is complete once every worker still running has sent its interval for it."""
        collector = self._collector
        running = [w.last_t_ns for w in collector.workers if not w.finished]
        if final or not running:
            complete = max(collector.timeline, default=0)
        else:  # the bin before the one the slowest running worker last reported into
            complete = collector.bin_of(min(running)) - 1 if min(running) else 0
        while self._streamed < complete:
            self._streamed += 1
            interval_bin = self._collector.interval_bin(self._streamed)
            entry = timeline_entry(interval_bin, self._sampler.samples, self._previous_ns, collector.go_ns)
            self._previous_ns = interval_bin.t_ns
            if self._stream is not None:
                self._stream.write(orjson.dumps({"kind": "interval", **entry}) + b"\n")

    def _line(self) -> str:
        elapsed_s = (time.perf_counter_ns() - self._collector.go_ns) / 1e9
        done = sum(t.ok + t.error_count for t in self._collector.by_op.values())
        errors = sum(t.error_count for t in self._collector.by_op.values())
        rate = done / elapsed_s if elapsed_s > 0 else 0.0
        latest = self._collector.timeline.get(max(self._collector.timeline, default=0))
        p99 = max((t.hist.quantile_ns(99.0) for t in latest.by_op.values()), default=0) / 1e6 if latest else 0.0
        conns = self._sampler.samples[-1].total if self._sampler.samples else 0
        if self._config.duration_s is not None:
            where, left_s = f"{elapsed_s:.0f}/{self._config.duration_s:.0f} s", self._config.duration_s - elapsed_s
        else:
            total = self._config.ops or 0
            where, left_s = f"{done}/{total} ops", (total - done) / rate if rate else 0.0
        return (
            f"{where}  {rate:.0f} ops/s  p99 {p99:.1f} ms  errors {errors}  "
            f"server conns {conns}  ETA {max(left_s, 0):.0f} s"
        )
