"""--prometheus-port: live metrics, scraped during a run, gone after it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runner.measure.histogram import LatencyHistogram
from tests.conftest import REPO, run_cli, run_runner


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(port: int) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    return {f.name: [(s.name, s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(text)}


@pytest.mark.system
def test_a_run_is_scraped_while_it_runs(dsn: str) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "--duration", "6", "--interval", "0.5", "--prometheus-port", str(port), "--quiet", "--dsn", dsn],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    scraped: list[dict[str, list[tuple[str, dict[str, str], float]]]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            metrics = _scrape(port)
            if any(value > 0 for _, _, value in metrics.get("runner_ops", [])):
                scraped.append(metrics)
                if len(scraped) == 2:
                    break
        except (urllib.error.URLError, ConnectionError):
            pass  # not serving yet (setup, workers starting)
        time.sleep(0.7)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert len(scraped) == 2, "never scraped a run in progress"
    first, second = scraped
    reads = lambda m: sum(v for name, labels, v in m["runner_ops"] if name == "runner_ops_total" and labels["op"] == "read")  # noqa: E731
    assert 0 < reads(first) <= reads(second)  # a counter: it only grows
    buckets = [(labels["le"], v) for name, labels, v in second["runner_op_latency_seconds"] if name.endswith("_bucket") and labels["op"] == "read"]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and buckets[-1][0] == "+Inf"
    count = next(v for name, labels, v in second["runner_op_latency_seconds"] if name.endswith("_count") and labels["op"] == "read")
    assert counts[-1] == count == reads(second)
    assert second["runner_server_connections"][0][2] > 0
    doc = json.loads(stdout)
    assert doc["config"]["prometheus_port"] == port
    assert doc["totals"]["by_op"]["read"]["ok"] >= reads(second)  # the final totals include every scraped op
    try:
        _scrape(port)
        raise AssertionError("still serving after the run")
    except (urllib.error.URLError, ConnectionError):
        pass


@pytest.mark.system
def test_a_port_in_use_is_one_line(dsn: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_runner("--ops", "20", "--prometheus-port", str(busy.getsockname()[1]), dsn=dsn)
    assert result.code == 2 and "--prometheus-port" in result.stderr and "Traceback" not in result.stderr


def test_buckets_count_values_at_or_below_each_bound() -> None:
    hist = LatencyHistogram()
    for ms in (0.4, 0.9, 3, 3, 80):
        hist.record(int(ms * 1_000_000))
    assert hist.cumulative([500_000, 1_000_000, 5_000_000, 100_000_000]) == [1, 2, 4, 5]


def test_the_anatomy_and_the_run_info_are_exported() -> None:
    """In-process: the exporter fed one op type's interval as the collector feeds it, then scraped."""
    from runner.measure.anatomy import Anatomy
    from runner.measure.exporter import Exporter

    port = _free_port()
    exporter = Exporter(port, lambda: {"workers_running": 1.0}, {"workload": "seed", "mode": "chunked", "procs": "2"})
    try:
        assert _scrape(port)["runner_run_info"] == [("runner_run_info", {"workload": "seed", "mode": "chunked", "procs": "2", "phase": "warmup"}, 1.0)]
        hist, anatomy = LatencyHistogram(), Anatomy(ops=4, attempts=4, statements=10)
        for ms in (1, 2, 3, 4):
            hist.record(ms * 1_000_000)
            anatomy.hists["pool_wait"].record(ms * 100_000)
            anatomy.hists["db"].record(ms * 500_000)
        delta = {
            "ok": 4, "dropped": 0, "unfinished": 0, "errors": {}, "error_samples": {}, "hist": {}, "anatomy": None,
            "retries": {}, "retried_ok": 0, "gave_up": {}, "outcomes": {},
        }
        exporter.observe("read", delta, hist, anatomy)  # type: ignore[arg-type]
        metrics = _scrape(port)
        assert ("runner_statements_total", {"op": "read"}, 10.0) in metrics["runner_statements"]
        for part in ("pool_wait", "db"):
            count = next(v for name, labels, v in metrics[f"runner_op_{part}_seconds"] if name.endswith("_count"))
            assert count == 4.0, part
        db_sum = next(v for name, labels, v in metrics["runner_op_db_seconds"] if name.endswith("_sum"))
        assert db_sum == pytest.approx(0.005, rel=0.02)  # 0.5 + 1 + 1.5 + 2 ms
        assert metrics["runner_run_info"][0][1]["phase"] == "measure"
        exporter.linger(0.0, lambda: False)
        assert _scrape(port)["runner_run_info"][0][1]["phase"] == "done"
    finally:
        exporter.close()


@pytest.mark.system
def test_the_endpoint_lingers_so_the_last_scrape_sees_the_end(dsn: str) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "--ops", "200", "--prometheus-port", str(port), "--prometheus-linger", "5", "--quiet", "--dsn", dsn],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    final = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and final is None:
        try:
            metrics = _scrape(port)
            if metrics["runner_run_info"][0][1]["phase"] == "done":
                final = metrics
        except (urllib.error.URLError, ConnectionError, KeyError, IndexError):
            pass
        time.sleep(0.2)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert final is not None, "never scraped the finished run"
    ok = sum(v for name, _, v in final["runner_ops"] if name == "runner_ops_total")
    assert ok == json.loads(stdout)["totals"]["ok"] == 200  # the scrape after the end saw every op


def test_linger_needs_a_port() -> None:
    result = run_cli("--ops", "10", "--prometheus-linger", "3")
    assert result.code == 2 and "--prometheus-linger 3: needs --prometheus-port" in result.stderr
