"""The slowest ops, kept with the statements they sent (--exemplars N), for `runner explain`.

A worker keeps, per op type, the N slowest successful ops of its measured part in a min-heap
(the fastest kept op is the one a slower op replaces), and sends them with its final record; the
report keeps the N slowest per op type over all workers. Parameters are shortened (long values
cut) and never include anything from the DSN: they are the op's own bind values.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from typing import Any

PARAM_CHARS = 64  # a longer string or bytes value is cut (a plan rarely depends on the tail)
MAX_PARAMS = 100  # values kept per statement (an IN list of thousands keeps its first hundred)
NS_PER_MS = 1_000_000

Call = tuple[str, Any]  # (statement as the driver got it, its parameters)


def _value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = bytes(value).decode("utf-8", "replace") if isinstance(value, bytes | bytearray | memoryview) else str(value)
    return text if len(text) <= PARAM_CHARS else text[: PARAM_CHARS - 3] + "..."


def shorten_params(params: Any) -> Any:
    """A statement's parameters as JSON: a list (positional) or an object (named)."""
    if isinstance(params, dict):
        return {str(k): _value(v) for k, v in itertools.islice(params.items(), MAX_PARAMS)}
    if isinstance(params, list | tuple):
        return [_value(v) for v in params[:MAX_PARAMS]]
    return None if params is None else _value(params)


class Exemplars:
    """One worker's slowest ops per op type; thread-safe like the Recorder that feeds it."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._heaps: dict[str, list[tuple[int, int, list[Call]]]] = {}
        self._order = itertools.count()  # ties never compare the calls

    def offer(self, op: str, latency_ns: int, calls: list[Call]) -> None:
        with self._lock:
            heap = self._heaps.setdefault(op, [])
            item = (latency_ns, next(self._order), calls)
            if len(heap) < self.keep:
                heapq.heappush(heap, item)
            elif latency_ns > heap[0][0]:
                heapq.heapreplace(heap, item)

    def clear(self) -> None:
        """Forget warm-up's ops: exemplars come from the measured part only."""
        with self._lock:
            self._heaps = {}

    def take(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            heaps, self._heaps = self._heaps, {}
        return {
            op: [
                {
                    "latency_ms": round(latency_ns / NS_PER_MS, 3),
                    "statements": [{"statement": statement, "parameters": shorten_params(params)} for statement, params in calls],
                }
                for latency_ns, _, calls in sorted(heap, reverse=True)
            ]
            for op, heap in heaps.items()
        }


def slowest(per_worker: dict[int, dict[str, list[dict[str, Any]]]], keep: int) -> dict[str, list[dict[str, Any]]]:
    """The `keep` slowest per op type over every worker, slowest first, each with its worker."""
    merged: dict[str, list[dict[str, Any]]] = {}
    for worker_id, ops in sorted(per_worker.items()):
        for op, kept in ops.items():
            merged.setdefault(op, []).extend({"worker": worker_id, **exemplar} for exemplar in kept)
    return {op: sorted(kept, key=lambda e: e["latency_ms"], reverse=True)[:keep] for op, kept in sorted(merged.items())}
