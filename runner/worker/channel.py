"""A worker's side of the wire: its record channel, and the thread that sends interval deltas.

The channel only needs a way to write one line of bytes: a pipe on the local transport, a
queue feeding a streaming generator on Ray. Whatever carries it, a failed write means the
parent is gone, and the worker stops.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from runner.measure.records import WIRE_VERSION, encode
from runner.worker.recorder import Recorder

Write = Callable[[bytes], None]  # raises OSError once the other end is gone
NS_PER_S = 1_000_000_000


class Channel:
    """The worker's end of its record stream: numbered records, one JSON line each."""

    def __init__(self, write: Write, worker_id: int) -> None:
        self._write = write
        self._worker_id = worker_id
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def send(self, kind: str, **fields: Any) -> bool:
        """Send one record; False when the parent is gone (the stream is closed)."""
        with self._lock:
            record = {"v": WIRE_VERSION, "kind": kind, "worker": self._worker_id, "seq": next(self._seq)}
            try:
                self._write(encode({**record, **fields}))  # type: ignore[arg-type]
            except OSError:  # BrokenPipeError, ConnectionResetError, a closed queue
                return False
        return True


class Emitter:
    """Sends an interval record of deltas every `interval_s`; a failed send stops the worker."""

    def __init__(
        self,
        channel: Channel,
        recorder: Recorder,
        pool_gauge: Callable[[], int],
        interval_s: float,
        since_go_ns: Callable[[], int],
        stop: threading.Event,
        end_ns: Callable[[], int] | None = None,
    ) -> None:
        self._channel, self._recorder, self._pool_gauge = channel, recorder, pool_gauge
        self._interval_s, self._since_go_ns, self._stop = interval_s, since_go_ns, stop
        self._end_ns = end_ns or since_go_ns  # the last interval's end: the measured part's (see body._measured_end)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emitter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """Stop the timer and send the last (partial) interval."""
        self._done.set()
        self._thread.join()
        self._flush(last=True)

    def _flush(self, last: bool = False) -> None:
        ops = self._recorder.take()
        if last and not ops:
            return  # the run ended right after a full interval: no empty tail entry
        sent = self._channel.send(
            "interval",
            phase="measure",
            t_ns=(self._end_ns if last else self._since_go_ns)(),
            ops=ops,
            pool_checked_out=self._pool_gauge(),
            schedule=self._recorder.take_schedule(),
            tick_lag=self._recorder.take_tick_lag(),
        )
        if not sent:
            self._stop.set()

    def _run(self) -> None:
        """Cut an interval at each multiple of `interval_s` after the release, never before it:
        the collector bins a record by the last multiple it passed (Collector.bin_of). A fixed
        schedule, not a wait of `interval_s` after each send, which drifted by the send's cost
        and the timer's lateness every interval (30 ms a second here). A cut later than a whole
        interval (a starved CPU) skips the deadlines it missed instead of sending a burst."""
        interval_ns = int(self._interval_s * NS_PER_S)
        deadline_ns = interval_ns
        while True:
            now_ns = self._since_go_ns()
            if now_ns < deadline_ns:
                if self._done.wait((deadline_ns - now_ns) / NS_PER_S):
                    return
                continue  # the wait's clock and ours may differ by a hair: check again
            self._flush()
            deadline_ns = (self._since_go_ns() // interval_ns + 1) * interval_ns
