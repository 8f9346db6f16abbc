"""--prometheus-port: the run's merged figures in the Prometheus exposition format while it runs.

prometheus_client (the optional extra `prometheus`) serves them on 127.0.0.1. The collector hands
every measured interval record's decoded figures to `observe`, on the parent's loop; a scrape, on
the server's thread, reads them under one lock, so counters never go backwards. Beside the ops,
errors and latency: the anatomy (statements sent, pool wait and database time per op type) and
`runner_run_info`, whose labels say what runs and in which phase (warmup, measure, done). With
--prometheus-linger the endpoint stays up that long after the run, so the last scrape sees its end.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from runner.errors import UsageError
from runner.measure.anatomy import Anatomy
from runner.measure.histogram import LatencyHistogram
from runner.measure.records import OpDelta

NS_PER_S = 1_000_000_000
LINGER_POLL_S = 0.1  # a signal during --prometheus-linger ends it within this
BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Exporter:
    def __init__(self, port: int, gauges: Callable[[], dict[str, float]], info: dict[str, str] | None = None) -> None:
        from prometheus_client import start_http_server
        from prometheus_client.registry import CollectorRegistry

        self._gauges = gauges  # read at scrape time: pool checked out, server connections
        self._lock = threading.Lock()
        self._ok: Counter[str] = Counter()
        self._errors: Counter[tuple[str, str]] = Counter()
        self._hists: dict[str, LatencyHistogram] = {}
        self._anatomy: dict[str, Anatomy] = {}
        self._info = dict(info or {})  # workload, mode, procs: runner_run_info's labels
        self.phase = "warmup"  # measure from the first measured record; done once the run ended
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)  # type: ignore[arg-type]  # a custom collector: collect() is all it needs
        try:
            self._server, self._thread = start_http_server(port, addr="127.0.0.1", registry=registry)
        except OSError as exc:
            raise UsageError(f"--prometheus-port {port}: {exc.strerror or exc}") from None

    def observe(self, op: str, delta: OpDelta, hist: LatencyHistogram, anatomy: Anatomy | None = None) -> None:
        """One measured interval record's delta for one op type (called by the collector)."""
        with self._lock:
            self.phase = "measure"
            if anatomy is not None:
                self._anatomy.setdefault(op, Anatomy()).merge(anatomy)
            self._ok[op] += delta["ok"]
            for name, count in delta["errors"].items():
                self._errors[(op, name)] += count
            self._hists.setdefault(op, LatencyHistogram()).merge(hist)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        ops = CounterMetricFamily("runner_ops", "Successful ops of the measured part", labels=["op"])
        errors = CounterMetricFamily("runner_errors", "Failed ops of the measured part, by the driver's error class", labels=["op", "class"])
        latency = HistogramMetricFamily("runner_op_latency_seconds", "Latency of successful ops", labels=["op"])
        bounds = [int(b * NS_PER_S) for b in BUCKETS_S]
        with self._lock:
            for op, count in sorted(self._ok.items()):
                ops.add_metric([op], count)
            for (op, name), count in sorted(self._errors.items()):
                errors.add_metric([op, name], count)
            for op, hist in sorted(self._hists.items()):
                _add_histogram(latency, op, hist, bounds)
            statements = CounterMetricFamily("runner_statements", "Statements sent by successful ops (the anatomy)", labels=["op"])
            parts = {
                part: HistogramMetricFamily(f"runner_op_{part}_seconds", f"Per successful op: {what} (the anatomy)", labels=["op"])
                for part, what in (("pool_wait", "waiting for a pooled connection"), ("db", "in the database, statement by statement"))
            }
            for op, anatomy in sorted(self._anatomy.items()):
                if anatomy.db_timed:  # the raw layer's statements are not seen
                    statements.add_metric([op], anatomy.statements)
                for part, family in parts.items():
                    if part == "pool_wait" or anatomy.db_timed:
                        _add_histogram(family, op, anatomy.hists[part], bounds)
            info = GaugeMetricFamily("runner_run_info", "What runs, and its phase (warmup, measure, done)", labels=[*self._info, "phase"])
            info.add_metric([*self._info.values(), self.phase], 1)
        yield from (ops, errors, latency, statements, *parts.values(), info)
        for name, value in self._gauges().items():
            gauge = GaugeMetricFamily(f"runner_{name}", name.replace("_", " "))
            gauge.add_metric([], value)
            yield gauge

    def linger(self, seconds: float, stopped: Callable[[], bool]) -> None:
        """Keep serving the finished run's figures for `seconds` (--prometheus-linger), unless stopped."""
        self.phase = "done"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not stopped():
            time.sleep(min(LINGER_POLL_S, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _add_histogram(family: Any, op: str, hist: LatencyHistogram, bounds: list[int]) -> None:
    """One op's histogram in Prometheus's cumulative buckets, in seconds."""
    cumulative = hist.cumulative(bounds)
    buckets = [(f"{b:g}", c) for b, c in zip(BUCKETS_S, cumulative, strict=True)] + [("+Inf", hist.count)]
    family.add_metric([op], buckets, sum_value=hist.mean_ns() * hist.count / NS_PER_S)
