"""The timeline keeps every slot from the first to the last: a stall shows as zero, not as a gap."""

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
                    "retries": {}, "retried_ok": 0, "gave_up": {}}}
    return {"v": WIRE_VERSION, "kind": "interval", "worker": 0, "seq": seq, "phase": "measure", "t_ns": t_ns, "ops": ops,
            "pool_checked_out": 0, "schedule": {"late_ops": 0, "max_lag_ns": 0}, "tick_lag": LatencyHistogram().to_dict()}


def test_an_empty_slot_between_two_is_kept_with_zero_ops() -> None:
    collector = Collector([None], interval_s=1.0)
    start = {"v": WIRE_VERSION, "kind": "start", "worker": 0, "seq": 0, "pid": 1, "host": "h", "node": None,
             "planned_ops": None, "settings": {}, "loop": None}
    collector.add(start)  # type: ignore[arg-type]
    collector.go_ns = 10 * S  # the parent's clock: irrelevant to the slots, which count from the worker's release
    collector.add(_interval(1, 1 * S, 5))  # type: ignore[arg-type]
    collector.add(_interval(2, 3 * S - 1, 7))  # type: ignore[arg-type]  # the worker stalled through slot 2
    timeline = build_timeline(collector, [])
    assert [e["ops"] for e in timeline] == [5, 0, 7]
    assert [e["elapsed_s"] for e in timeline] == [1.0, 2.0, 3.0]
    assert timeline[1]["ops_per_s"] == 0
