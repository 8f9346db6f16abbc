"""The recorder keeps one message per error class, shortened and without the password, and
counts every op in the interval it ended in."""

from __future__ import annotations

import threading

import pytest

from runner.measure.anatomy import Anatomy
from runner.measure.histogram import LatencyHistogram
from runner.worker.anatomy import OpTrace, PoolTrace
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


def test_each_op_type_of_a_mixed_batch_gets_its_own_ops() -> None:
    # Ops of several types end interleaved; a batch is folded in by type: each type's count,
    # histogram and anatomy hold its own ops only, and an untraced op enters no anatomy.
    traced = {"read": 0, "write": 0, "plain": 0}
    recorder = Recorder()
    sent: dict[str, list[int]] = {"read": [], "write": [], "plain": []}
    for i in range(FOLD_EVERY + 40):
        name = ("read", "write", "plain")[i % 3]
        latency = 1_000_000 * (1 + i % 7) if name != "write" else 50_000_000 + i
        sent[name].append(latency)
        trace = None if name == "plain" and i % 2 else PoolTrace()
        traced[name] += trace is not None
        if trace is not None and i % 5 == 0:
            trace.pool_wait_ns = 1_000
        recorder.record(name, latency, None, trace, retried=1 if name == "read" else 0)
    deltas = recorder.take()
    for name, latencies in sent.items():
        hist = LatencyHistogram.from_dict(deltas[name]["hist"])
        assert deltas[name]["ok"] == hist.count == len(latencies)
        assert hist.max_ns() == pytest.approx(max(latencies), rel=0.01)
        assert hist.quantile_ns(0.1) == pytest.approx(min(latencies), rel=0.01)
    assert deltas["read"]["retried_ok"] == len(sent["read"]) and deltas["write"]["retried_ok"] == 0
    assert [Anatomy.from_dict(deltas[name]["anatomy"]).ops for name in sent] == [traced[name] for name in sent]
    assert 0 < traced["plain"] < len(sent["plain"])
    waited = sum(1 for i in range(FOLD_EVERY + 40) if i % 3 == 0 and i % 5 == 0)
    read = Anatomy.from_dict(deltas["read"]["anatomy"])
    waits = read.hists["pool_wait"]
    assert read.ops == waits.count == len(sent["read"]) and waits.count - waits.cumulative([0])[0] == waited


def test_the_slowest_kept_ops_are_the_exemplars_and_are_taken_once() -> None:
    # Kept ops offer their calls when they are folded in: taking the exemplars folds first, so
    # none of the ops recorded before it is missed (warm-up's are taken and dropped this way).
    recorder = Recorder(exemplars=2)
    for latency in (5, 9, 1, 7):
        trace = OpTrace(keeps_calls=True)
        assert trace.calls is not None
        trace.calls.append(("SELECT $1", [latency]))
        recorder.record("read", latency * 1_000_000, None, trace)
    recorder.record("read", 50_000_000, TimeoutError("slow and failed"), OpTrace(keeps_calls=True))
    taken = recorder.take_exemplars()
    assert [e["latency_ms"] for e in taken["read"]] == [9.0, 7.0]
    assert taken["read"][0]["statements"] == [{"statement": "SELECT $1", "parameters": [9]}]
    assert recorder.take_exemplars() == {}
    delta = recorder.take()["read"]
    assert (delta["ok"], delta["errors"]) == (4, {"TimeoutError": 1})
