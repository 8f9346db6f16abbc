"""The worker's end of the wire: numbered records, interval deltas, a closed pipe noticed."""

from __future__ import annotations

import multiprocessing
import threading
import time

from runner.measure.records import decode
from runner.worker.channel import Channel, Emitter
from runner.worker.recorder import Recorder


def test_records_are_numbered_lines_the_collector_can_decode() -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    channel = Channel(writer.send_bytes, worker_id=3)
    assert channel.send("start", pid=1, planned_ops=10)  # (fields as the worker body sends them)
    assert channel.send("final", status="done")
    first, second = decode(reader.recv_bytes()), decode(reader.recv_bytes())
    assert (first["kind"], first["worker"], first["seq"]) == ("start", 3, 0)
    assert (second["kind"], second["seq"]) == ("final", 1)


def test_emitter_sends_deltas_and_the_last_partial_interval() -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    recorder, stop = Recorder(), threading.Event()
    released = time.perf_counter_ns()  # the worker's release: the wire's times count from it
    emitter = Emitter(Channel(writer.send_bytes, 0), recorder, lambda: 7, 0.05, lambda: time.perf_counter_ns() - released, stop)
    emitter.start()
    recorder.record("read", 1_000_000, None)
    time.sleep(0.12)
    recorder.record("read", 2_000_000, TimeoutError("canceling statement due to statement timeout"))
    emitter.finish()
    records = []
    while reader.poll(0.2):
        records.append(decode(reader.recv_bytes()))
    assert all(r["kind"] == "interval" and r["pool_checked_out"] == 7 for r in records)
    oks = sum(r["ops"].get("read", {}).get("ok", 0) for r in records)
    errors = sum(r["ops"].get("read", {}).get("errors", {}).get("TimeoutError", 0) for r in records)
    assert (oks, errors) == (1, 1)  # each op in exactly one delta, the last one in the final flush
    samples = [r["ops"]["read"]["error_samples"] for r in records if r["ops"].get("read", {}).get("errors")]
    assert samples == [{"TimeoutError": "canceling statement due to statement timeout"}]  # the reason survives
    stamps = [r["t_ns"] for r in records]
    assert len(stamps) >= 2 and stamps == sorted(stamps)  # cuts on the timer (at 0.05 and 0.10 s on a quiet machine), then the last, partial one
    assert all(t >= 50_000_000 * (i + 1) for i, t in enumerate(stamps[:-1]))  # each cut at or after its multiple of the interval
    assert not stop.is_set()


def test_a_closed_pipe_stops_the_worker() -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    reader.close()
    stop = threading.Event()
    released = time.perf_counter_ns()
    emitter = Emitter(Channel(writer.send_bytes, 0), Recorder(), lambda: 0, 0.02, lambda: time.perf_counter_ns() - released, stop)
    emitter.start()
    assert stop.wait(2.0)  # the parent is gone: stop issuing
    emitter.finish()
