"""The recorder keeps one message per error class, shortened and without the password, and
counts every op in the interval it ended in."""

from __future__ import annotations

import threading

import pytest

from runner.measure.histogram import LatencyHistogram
from runner.worker.recorder import FOLD_EVERY, SAMPLE_CHARS, Recorder


def test_error_samples_keep_the_first_message_without_the_password() -> None:
    recorder = Recorder(secrets=("hunter22",))
    recorder.record("read", 1, ConnectionError("password authentication failed: hunter22 rejected"))
    recorder.record("read", 1, ConnectionError("a second message of the same class"))
    recorder.record("read", 1, TimeoutError("x" * 1000))
    delta = recorder.take()["read"]
    assert delta["errors"] == {"ConnectionError": 2, "TimeoutError": 1}
    assert delta["error_samples"]["ConnectionError"] == "password authentication failed: *** rejected"
    assert len(delta["error_samples"]["TimeoutError"]) == SAMPLE_CHARS
    assert recorder.take() == {}  # an interval's deltas are taken once


def test_unfinished_ops_are_counted_apart() -> None:
    recorder = Recorder()
    recorder.unfinished("write")
    recorder.record("write", 5, None)
    delta = recorder.take()["write"]
    assert (delta["ok"], delta["unfinished"], delta["errors"]) == (1, 1, {})


def test_kept_ops_are_folded_into_the_interval_they_ended_in() -> None:
    recorder = Recorder()
    latencies = [1_000 + 37 * i for i in range(FOLD_EVERY * 2 + 5)]  # two full batches and a rest
    for i, latency in enumerate(latencies):
        recorder.record("read", latency, None, None, retried=i % 3 == 0)
    first = recorder.take()["read"]
    hist = LatencyHistogram.from_dict(first["hist"])
    assert first["ok"] == len(latencies) and hist.count == len(latencies)
    assert first["retried_ok"] == sum(1 for i in range(len(latencies)) if i % 3 == 0)
    assert hist.max_ns() == pytest.approx(max(latencies), rel=0.01)
    recorder.record("read", 5, None)
    assert recorder.take()["read"]["ok"] == 1  # nothing of the first interval is carried over


def test_ops_recorded_from_many_threads_are_all_counted() -> None:
    recorder = Recorder()
    threads = [threading.Thread(target=lambda: [recorder.record("write", 10 + n, None) for n in range(1000)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    delta = recorder.take()["write"]
    assert delta["ok"] == 8000 and LatencyHistogram.from_dict(delta["hist"]).count == 8000
