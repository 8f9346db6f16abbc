"""--prometheus-port: the run's merged figures in the Prometheus exposition format while it runs.

prometheus_client (the optional extra `prometheus`) serves them on 127.0.0.1. The collector hands
every measured interval record's decoded figures to `observe`, on the parent's loop; a scrape, on
the server's thread, reads them under one lock, so counters never go backwards.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from runner.errors import UsageError
from runner.measure.histogram import LatencyHistogram
from runner.measure.records import OpDelta

NS_PER_S = 1_000_000_000
BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Exporter:
    def __init__(self, port: int, gauges: Callable[[], dict[str, float]]) -> None:
        from prometheus_client import start_http_server
        from prometheus_client.registry import CollectorRegistry

        self._gauges = gauges  # read at scrape time: pool checked out, server connections
        self._lock = threading.Lock()
        self._ok: Counter[str] = Counter()
        self._errors: Counter[tuple[str, str]] = Counter()
        self._hists: dict[str, LatencyHistogram] = {}
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)  # type: ignore[arg-type]  # a custom collector: collect() is all it needs
        try:
            self._server, self._thread = start_http_server(port, addr="127.0.0.1", registry=registry)
        except OSError as exc:
            raise UsageError(f"--prometheus-port {port}: {exc.strerror or exc}") from None

    def observe(self, op: str, delta: OpDelta, hist: LatencyHistogram) -> None:
        """One measured interval record's delta for one op type (called by the collector)."""
        with self._lock:
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
                cumulative = hist.cumulative(bounds)
                buckets = [(f"{b:g}", c) for b, c in zip(BUCKETS_S, cumulative, strict=True)] + [("+Inf", hist.count)]
                latency.add_metric([op], buckets, sum_value=hist.mean_ns() * hist.count / NS_PER_S)
        yield from (ops, errors, latency)
        for name, value in self._gauges().items():
            gauge = GaugeMetricFamily(f"runner_{name}", name.replace("_", " "))
            gauge.add_metric([], value)
            yield gauge

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
