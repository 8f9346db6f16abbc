"""The timeline keeps every bin from the first to the last: a stall shows as zero, not as a gap."""

from __future__ import annotations

from runner.measure.collector import Collector
from runner.measure.histogram import LatencyHistogram
from runner.measure.records import WIRE_VERSION
from runner.measure.timeline import build_timeline

S = 1_000_000_000


def _interval(seq: int, t_ns: int, ok: int) -> dict[str, object]:
    hist = LatencyHistogram()
    for _ in range(ok):
        hist.record(1_000_000)
    ops = {"read": {"ok": ok, "errors": {}, "error_samples": {}, "dropped": 0, "unfinished": 0, "hist": hist.to_dict(), "anatomy": None,
                    "retries": {}, "retried_ok": 0, "gave_up": {}, "outcomes": {}}}
    return {"v": WIRE_VERSION, "kind": "interval", "worker": 0, "seq": seq, "phase": "measure", "t_ns": t_ns, "ops": ops,
            "pool_checked_out": 0, "schedule": {"late_ops": 0, "max_lag_ns": 0}, "tick_lag": LatencyHistogram().to_dict()}


def test_an_empty_bin_between_two_is_kept_with_zero_ops() -> None:
    collector = Collector([None], interval_s=1.0)
    start = {"v": WIRE_VERSION, "kind": "start", "worker": 0, "seq": 0, "pid": 1, "host": "h", "node": None,
             "planned_ops": None, "settings": {}, "loop": None}
    collector.add(start)  # type: ignore[arg-type]
    collector.go_ns = 10 * S  # the parent's clock: irrelevant to the bins, which count from the worker's release
    collector.add(_interval(1, 1 * S, 5))  # type: ignore[arg-type]
    collector.add(_interval(2, 3 * S + 2_000_000, 7))  # type: ignore[arg-type]  # the worker stalled through bin 2
    timeline = build_timeline(collector, [])
    assert [e["ops"] for e in timeline] == [5, 0, 7]
    assert [e["elapsed_s"] for e in timeline] == [1.0, 2.0, 3.002]
    assert timeline[1]["ops_per_s"] == 0


def _started(collector: Collector) -> Collector:
    start = {"v": WIRE_VERSION, "kind": "start", "worker": 0, "seq": 0, "pid": 1, "host": "h", "node": None,
             "planned_ops": None, "settings": {}, "loop": None}
    collector.add(start)  # type: ignore[arg-type]
    return collector


def test_intervals_cut_a_little_late_land_in_their_own_bin() -> None:
    """A worker cuts interval n at n seconds plus its timer's lateness (30 ms here). The first
    entry is the first second's ops over its own length, not an empty bin followed by a second's
    ops divided by the lateness (ops_per_s 7,500-84,000 in every run of a new user)."""
    collector = _started(Collector([None], interval_s=1.0))
    collector.add(_interval(1, 1_030_000_000, 300))  # type: ignore[arg-type]
    collector.add(_interval(2, 2_030_000_000, 300))  # type: ignore[arg-type]
    collector.add(_interval(3, 2_500_000_000, 150))  # type: ignore[arg-type]  # the last, partial interval
    timeline = build_timeline(collector, [])
    assert [e["ops"] for e in timeline] == [300, 450]
    assert [e["elapsed_s"] for e in timeline] == [1.03, 2.5]
    assert [e["ops_per_s"] for e in timeline] == [round(300 / 1.03, 3), round(450 / 1.47, 3)]


def test_a_long_last_interval_gets_its_own_bin_and_its_ops_their_own_step() -> None:
    """A --stages run of 1 s at 50/s then 1 s ramping to 100/s ends just before 2 s: its last
    interval, (1.004, 1.996], went to bin 1 with the first second's, and the first step showed 0 ops."""
    from runner.concurrency.stages import boundaries
    from runner.measure.timeline import stage_summaries

    collector = _started(Collector([None], interval_s=1.0))
    collector.add(_interval(1, 1_004_000_000, 49))  # type: ignore[arg-type]
    collector.add(_interval(2, 1_996_000_000, 75))  # type: ignore[arg-type]
    timeline = build_timeline(collector, [])
    assert [e["ops"] for e in timeline] == [49, 75] and [e["elapsed_s"] for e in timeline] == [1.004, 1.996]
    stages = (("hold", 1.0, 50.0), ("ramp", 1.0, 100.0))
    assert [s["ops"] for s in stage_summaries(collector, stages, boundaries(stages))] == [49, 75]


def test_the_emitter_cuts_at_each_multiple_of_the_interval_without_drift() -> None:
    """The worker's emitter, on the real clock, with a send that costs a quarter of an interval:
    every cut at or after its multiple of the interval, the first in bin 1 and each in the next
    bin. A wait of one interval after each send drifted by the send's cost (here a bin skipped
    every 4 cuts, 3 in 12) and put the first cut in bin 2."""
    import threading
    import time

    from runner.worker.channel import Emitter

    sent: list[int] = []
    interval_s, cuts = 0.2, 12

    class Channel:
        def send(self, kind: str, **fields: object) -> bool:
            sent.append(int(fields["t_ns"]))  # type: ignore[call-overload]
            return True

    class Recorder:
        def take(self) -> dict[str, object]:
            time.sleep(interval_s / 4)  # a send that costs something, as encoding a record does
            return {"read": {}}

        def take_schedule(self) -> dict[str, int]:
            return {}

        def take_tick_lag(self) -> dict[str, object]:
            return {}

    go = time.perf_counter_ns()
    emitter = Emitter(Channel(), Recorder(), lambda: 0, interval_s, lambda: time.perf_counter_ns() - go, threading.Event())  # type: ignore[arg-type]
    emitter.start()
    while len(sent) < cuts:
        time.sleep(0.01)
    emitter.finish()
    collector = Collector([None], interval_s=interval_s)
    bins = [collector.bin_of(t) for t in sent[:cuts]]
    assert all(t >= interval_bin * collector.interval_ns for t, interval_bin in zip(sent, bins, strict=False))
    assert bins[0] == 1
    skipped = bins[-1] - cuts
    assert bins == sorted(set(bins)) and skipped <= 1, bins  # one bin may go to a starved moment on a busy machine


def test_a_long_run_keeps_settled_bins_packed_and_its_timeline_unchanged() -> None:
    """Bins below every running worker's latest are settled: their histograms are kept in wire form
    (#29 item 11: the parent grew 2.1 MB/s at --interval 0.1 holding every bin's full buckets). The
    timeline and the run's totals read from them are what unpacked bins give."""
    import tracemalloc

    def fed(packing: bool, bins: int) -> Collector:
        collector = _started(Collector([None], interval_s=0.1))
        if not packing:
            collector.packed_below = 10**9  # nothing below it: nothing packed
        for seq in range(1, bins + 1):
            collector.add(_interval(seq, seq * S // 10 + 1_000, 40 + seq % 7))  # type: ignore[arg-type]
        return collector

    packed, full = fed(True, 60), fed(False, 60)
    assert all(b.by_op["read"].hist._packed is not None for i, b in packed.timeline.items() if i < 60)
    assert packed.timeline[60].by_op["read"].hist._packed is None  # the worker's latest: still open
    assert build_timeline(packed, []) == build_timeline(full, [])
    packed.close()
    full.close()
    assert packed.by_op["read"].hist.summary_ms() == full.by_op["read"].hist.summary_ms()
    for packing, bound in ((False, 30_000), (True, 10_000)):  # bytes a bin holds: HdrHistogram's buckets are 36 KB
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        kept = fed(packing, 200)
        per_bin = (tracemalloc.get_traced_memory()[0] - before) / 200
        tracemalloc.stop()
        assert (per_bin < bound) == packing, (packing, per_bin)
        del kept
