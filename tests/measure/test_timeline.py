"""The timeline keeps every slot from the first to the last: a stall shows as zero, not as a gap."""

from __future__ import annotations

from runner.measure.collector import Collector
from runner.measure.histogram import LatencyHistogram
from runner.measure.timeline import build_timeline

S = 1_000_000_000


def _interval(seq: int, t_ns: int, ok: int) -> dict[str, object]:
    hist = LatencyHistogram()
    for _ in range(ok):
        hist.record(1_000_000)
    ops = {"read": {"ok": ok, "errors": {}, "dropped": 0, "hist": hist.to_dict()}}
    return {"v": 1, "kind": "interval", "worker": 0, "seq": seq, "phase": "measure", "t_ns": t_ns, "ops": ops,
            "pool_checked_out": 0, "schedule": {"late_ops": 0, "max_lag_ns": 0}}


def test_an_empty_slot_between_two_is_kept_with_zero_ops() -> None:
    collector = Collector([None], interval_s=1.0)
    collector.add({"v": 1, "kind": "start", "worker": 0, "seq": 0, "pid": 1, "planned_ops": None})  # type: ignore[arg-type]
    collector.go_ns = 10 * S
    collector.add(_interval(1, 11 * S, 5))  # type: ignore[arg-type]
    collector.add(_interval(2, 13 * S - 1, 7))  # type: ignore[arg-type]  # the worker stalled through slot 2
    timeline = build_timeline(collector, [])
    assert [e["ops"] for e in timeline] == [5, 0, 7]
    assert [e["elapsed_s"] for e in timeline] == [1.0, 2.0, 3.0]
    assert timeline[1]["ops_per_s"] == 0
