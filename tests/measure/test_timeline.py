"""The timeline keeps every bin from the first to the last: a stall shows as zero, not as a gap."""

from __future__ import annotations

from runner.concurrency.stages import boundaries
from runner.measure.anatomy import Anatomy
from runner.measure.collector import Collector
from runner.measure.histogram import LatencyHistogram
from runner.measure.records import WIRE_VERSION
from runner.measure.timeline import build_timeline, stage_summaries

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
    stages = (("hold", 1.0, 50.0), ("ramp", 1.0, 100.0))
    collector = _started(Collector([None], interval_s=1.0, stage_bounds=boundaries(stages)))
    collector.add(_interval(1, 1_004_000_000, 49))  # type: ignore[arg-type]
    collector.add(_interval(2, 1_996_000_000, 75))  # type: ignore[arg-type]
    timeline = build_timeline(collector, [])
    assert [e["ops"] for e in timeline] == [49, 75] and [e["elapsed_s"] for e in timeline] == [1.004, 1.996]
    assert [e["stage"] for e in timeline] == [0, 1]
    collector.close()
    assert [s["ops"] for s in stage_summaries(collector, stages)] == [49, 75]


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


def _fed(collector: Collector, bins: int, settling: bool = True) -> Collector:
    """`bins` one-per-interval records of a worker, at --interval 0.1, with an anatomy: as a run
    feeds its parent. Without `settling`, no bin settles before close()."""
    _started(collector)
    if not settling:  # until close(): `del collector._settle_below` first
        collector._settle_below = lambda end: None  # type: ignore[method-assign]
    for seq in range(1, bins + 1):
        record = _interval(seq, seq * S // 10 + 1_000, 40 + seq % 7)
        anatomy = Anatomy()
        for part, hist in anatomy.hists.items():
            for value in range(1, 6 + seq % 3):
                hist.record(value * 100_000 * (2 if part == "db" else 1))
        anatomy.ops = anatomy.attempts = 40 + seq % 7
        anatomy.statements = 2 * anatomy.ops
        anatomy.texts["SELECT a FROM t WHERE id = %(id)s"] = anatomy.statements
        record["ops"]["read"]["anatomy"] = anatomy.to_dict()  # type: ignore[index]
        collector.add(record)  # type: ignore[arg-type]
    return collector


def test_a_long_run_settles_its_bins_and_its_timeline_and_totals_are_unchanged() -> None:
    """Bins below every running worker's latest settle: their histograms go into the run's totals
    (and the step's) and only what the timeline shows is kept (#29 item 11: the parent grew 2.1
    MB/s at --interval 0.1 holding every bin's histograms). The timeline, the run's totals and the
    steps read from settled bins are what bins kept whole give."""
    stages = (("hold", 3.0, 50.0), ("hold", 3.0, 50.0))
    settling = _fed(Collector([None], interval_s=0.1, stage_bounds=boundaries(stages)), 60)
    whole = _fed(Collector([None], interval_s=0.1, stage_bounds=boundaries(stages)), 60, settling=False)
    assert all(b.settled is not None and not b.by_op for i, b in settling.timeline.items() if i < 60)
    assert settling.timeline[60].settled is None  # the worker's latest: still open
    assert all(b.settled is None for b in whole.timeline.values())
    assert build_timeline(settling, []) == build_timeline(whole, [])  # the open bins read as the settled ones
    settling.close()
    del whole._settle_below  # close() settles every bin, as a run's end does
    whole.close()
    assert build_timeline(settling, []) == build_timeline(whole, [])
    assert stage_summaries(settling, stages) == stage_summaries(whole, stages)
    read, read_whole = settling.by_op["read"], whole.by_op["read"]
    assert read.hist.summary_ms() == read_whole.hist.summary_ms() and read.ok == read_whole.ok
    assert read.anatomy is not None and read_whole.anatomy is not None and read.anatomy.summary() == read_whole.anatomy.summary()


def test_a_late_record_into_a_settled_bin_counts_in_the_bin_and_in_the_totals() -> None:
    """A record into a bin that settled (a worker the parent stopped waiting for, whose pipe held
    more): its ops count in that bin's entry, its latencies in the run's and the step's totals."""
    stages = (("hold", 1.0, 50.0),)
    collector = Collector([None, None], interval_s=1.0, stage_bounds=boundaries(stages))
    for worker in (0, 1):
        start = {"v": WIRE_VERSION, "kind": "start", "worker": worker, "seq": 0, "pid": 1, "host": "h", "node": None,
                 "planned_ops": None, "settings": {}, "loop": None}
        collector.add(start)  # type: ignore[arg-type]
    for seq in (1, 2, 3):
        collector.add(_interval(seq, seq * S + 1_000, 10))  # type: ignore[arg-type]
    collector.mark_unresponsive(1, 3.5)  # worker 1 said nothing: bins 1 and 2 settle without it
    collector.add({**_interval(4, 4 * S + 1_000, 10), "worker": 0})  # type: ignore[arg-type]
    assert collector.timeline[1].settled is not None
    collector.add({**_interval(1, 1 * S + 5_000, 7), "worker": 1})  # type: ignore[arg-type]  # its pipe held one
    collector.close()
    timeline = build_timeline(collector, [])
    assert [e["ops"] for e in timeline] == [17, 10, 10, 10] and timeline[0]["by_op"]["read"]["ops"] == 17
    assert collector.by_op["read"].ok == 47 and collector.by_op["read"].hist.count == 47
    assert stage_summaries(collector, stages)[0]["ops"] == 47


def test_a_settled_bin_holds_what_its_entry_shows_not_its_histograms() -> None:
    """Memory a bin holds once settled: ~1 kB, where its histograms (one for latency, four for the
    anatomy, HdrHistogram's buckets 36 KB each) held more than 30 kB."""
    import gc
    import tracemalloc

    for settling, bound in ((False, 30_000), (True, 3_000)):
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        kept = _fed(Collector([None], interval_s=0.1), 200, settling=settling)
        gc.collect()  # hdrh's HdrHistogram and its encoder refer to each other: a dropped one waits for the collector
        per_bin = (tracemalloc.get_traced_memory()[0] - before) / 200
        tracemalloc.stop()
        assert (per_bin < bound) == settling, (settling, per_bin)
        del kept
