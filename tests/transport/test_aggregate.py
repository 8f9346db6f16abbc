"""A node's aggregator: the parent that reads its merged records knows what it would have known
from every worker's own records, to the histogram bucket, in a fraction of the records."""

from __future__ import annotations

import random
from typing import Any

import orjson

from runner.measure.anatomy import PARTS
from runner.measure.collector import Collector
from runner.measure.histogram import LatencyHistogram
from runner.measure.records import WIRE_VERSION, decode, decode_merged, encode
from runner.measure.status import WorkerStatus
from runner.measure.timeline import build_timeline
from runner.transport.aggregate import TOTALS_EVERY, Item, NodeMerge

S = 1_000_000_000


def _delta(rng: random.Random, ok: int, errors: int) -> dict[str, Any]:
    hist = LatencyHistogram()
    for _ in range(ok):
        hist.record(int(rng.lognormvariate(14.5, 0.8)))
    return {"ok": ok, "errors": {"OperationalError": errors} if errors else {}, "error_samples": {"OperationalError": "x"} if errors else {},
            "dropped": 0, "unfinished": 0, "hist": hist.to_dict(), "anatomy": None, "retries": {}, "retried_ok": 0, "gave_up": {},
            "outcomes": {}}


def _stream(worker: int, seconds: int, rng: random.Random, final: bool = True) -> list[bytes]:
    """A worker's records: start, go, `seconds` intervals cut a little late, a short last one, final."""
    head = {"v": WIRE_VERSION, "worker": worker}
    records: list[dict[str, Any]] = [
        {**head, "kind": "start", "pid": worker, "host": "h", "node": "n", "planned_ops": None, "settings": {}, "loop": None},
        {**head, "kind": "go", "wall_ns": 0},
    ]
    for second in range(1, seconds + 1):
        t_ns = second * S + rng.randrange(1_000_000, 40_000_000)
        lag = LatencyHistogram()
        for _ in range(20):
            lag.record(rng.randrange(10_000, 3_000_000))
        ops = {"read": _delta(rng, rng.randrange(50, 200), rng.randrange(0, 3)), "write": _delta(rng, rng.randrange(10, 60), 0)}
        records.append({**head, "kind": "interval", "phase": "measure", "t_ns": t_ns, "ops": ops, "pool_checked_out": worker % 3,
                        "schedule": {"late_ops": second % 2, "max_lag_ns": second * 1000}, "tick_lag": lag.to_dict()})
    if final:
        records.append({**head, "kind": "final", "status": "done", "reason": None, "end_ns": (seconds + 1) * S, "cpu_user_s": 1.0,
                        "cpu_sys_s": 0.1, "cpu_measured_s": 1.0, "max_rss_kb": 1, "exemplars": {}})
    return [encode({**record, "seq": seq}) for seq, record in enumerate(records)]  # type: ignore[arg-type]


def _feed(collector: Collector, items: list[Item]) -> list[str]:
    """An aggregator's items into a collector as the supervisor does; the kinds, in order."""
    for kind, _, payload in items:
        if kind == "line":
            collector.add(decode(payload))
        elif kind == "merged":
            collector.add_merged(decode_merged(payload))
    return [kind for kind, _, _ in items]


def _figures(collector: Collector) -> dict[str, Any]:
    collector.close()
    timeline = [{k: v for k, v in entry.items() if k != "by_op"} | {"by_op": entry["by_op"]} for entry in build_timeline(collector, [])]
    return {
        "timeline": timeline,
        "by_op": {name: (t.ok, dict(t.errors), t.hist.summary_ms(("p95",)), t.hist.count) for name, t in collector.by_op.items()},
        "workers": [(w.status, w.ok, w.errors, w.last_bin, w.next_seq, w.tick_lag.count, w.tick_lag.summary_ms()) for w in collector.workers],
        "late": (collector.late_ops, collector.max_lag_ns),
    }


def test_merged_records_give_the_parent_every_figure_its_workers_own_records_would() -> None:
    rng = random.Random(3)
    streams = {0: _stream(0, 12, rng), 1: _stream(1, 12, rng), 2: _stream(2, 5, rng)}  # worker 2 ends early
    direct = Collector([None] * 3, interval_s=1.0)
    for lines in streams.values():
        for line in lines:
            direct.add(decode(line))

    now = [0.0]
    merge = NodeMerge(streams, interval_s=1.0, clock=lambda: now[0])
    merged = Collector([None] * 3, interval_s=1.0)
    kinds: list[str] = []
    for position in range(max(len(lines) for lines in streams.values())):  # the workers' records interleaved, as they come
        for worker, lines in streams.items():
            if position < len(lines):
                kinds += _feed(merged, merge.add(worker, lines[position]))
        now[0] += 0.3
        kinds += _feed(merged, merge.due())
    for worker in streams:
        kinds += _feed(merged, merge.gone(worker, None))

    assert _figures(merged) == _figures(direct)
    assert [w.status for w in merged.workers] == [WorkerStatus.DONE] * 3
    direct_intervals = sum(len(lines) - 3 for lines in streams.values())
    assert kinds.count("merged") <= 12 + 3 < direct_intervals  # one a bin, and one at most at each final; not one a worker's interval
    assert kinds.count("ended") == 3


def test_a_bin_waits_for_every_live_worker_or_one_interval() -> None:
    rng = random.Random(4)
    a, b = _stream(0, 3, rng), _stream(1, 3, rng)
    now = [0.0]
    merge = NodeMerge([0, 1], interval_s=1.0, clock=lambda: now[0])
    for line in a[:2] + b[:2]:  # start, go
        merge.add(0 if line in a else 1, line)
    assert merge.add(0, a[2]) == [] and merge.due() == []  # bin 1: worker 1's record not in yet
    now[0] = 0.5
    merge.add(1, b[2])
    (kind, workers, payload), = merge.due()  # both in: it goes
    record = orjson.loads(payload)
    assert (kind, workers, record["bin"], [e["worker"] for e in record["workers"]]) == ("merged", (0, 1), 1, [0, 1])
    merge.add(0, a[3])
    now[0] = 1.4
    assert merge.due() == []  # worker 1 is late for bin 2
    now[0] = 1.6
    (_, workers, payload), = merge.due()  # a whole interval later it goes without it
    assert workers == (0,) and orjson.loads(payload)["bin"] == 2


def test_a_lost_worker_keeps_what_it_sent_and_its_own_totals() -> None:
    rng = random.Random(5)
    lines = _stream(0, 3, rng, final=False)
    merge = NodeMerge([0], interval_s=1.0)
    collector = Collector([None], interval_s=1.0)
    for line in lines:
        _feed(collector, merge.add(0, line))
    kinds = _feed(collector, merge.gone(0, "ActorDiedError"))
    assert kinds == ["merged"] * 3 + ["lost"]  # its three bins, its totals with the last, then its loss
    sent = sum(orjson.loads(line)["ops"]["read"]["ok"] + orjson.loads(line)["ops"]["write"]["ok"] for line in lines[2:])
    assert collector.workers[0].ok == sent == sum(t.ok for t in collector.by_op.values())
    collector.close()
    assert collector.workers[0].tick_lag.count == 3 * 20


def test_a_workers_counts_come_with_every_bin_and_its_probe_lateness_every_few() -> None:
    rng = random.Random(6)
    lines = _stream(0, TOTALS_EVERY + 2, rng, final=False)
    merge = NodeMerge([0], interval_s=1.0, clock=lambda: 0.0)
    collector = Collector([None], interval_s=1.0)
    seen = []
    _feed(collector, merge.add(0, lines[0]) + merge.add(0, lines[1]))  # start, go
    for line in lines[2:]:  # its intervals
        _feed(collector, merge.add(0, line) + merge.due())
        lag = collector.workers[0].tick_lag_wire  # kept as it came, read at close
        seen.append((collector.workers[0].ok, sum(t.ok for t in collector.by_op.values()), LatencyHistogram.from_dict(lag).count if lag else 0))
    assert all(own == run > 0 for own, run, _ in seen)  # each bin's counts: never behind the run's
    assert [lag for _, _, lag in seen] == [0] * (TOTALS_EVERY - 1) + [TOTALS_EVERY * 20] * 3  # a histogram: every 10 intervals


def test_an_anatomy_merges_on_the_node_as_in_the_parent() -> None:
    """Anatomy parts (four histograms an op) travel merged; every part's quantiles survive."""
    from types import SimpleNamespace

    from runner.measure.anatomy import Anatomy

    rng = random.Random(7)
    streams = {w: _stream(w, 2, rng) for w in (0, 1)}
    for lines in streams.values():  # give each interval an anatomy
        for i, line in enumerate(lines):
            record = orjson.loads(line)
            if record["kind"] == "interval":
                anatomy = Anatomy()
                for _ in range(50):
                    latency = rng.randrange(1_000_000, 9_000_000)
                    trace = SimpleNamespace(statements=2, rows=1, streamed=0, db_ns=latency // 2, pool_wait_ns=latency // 9,
                                            texts={"SELECT 1": 2}, calls=None)
                    anatomy.record(trace, latency)
                record["ops"]["read"]["anatomy"] = anatomy.to_dict()
                lines[i] = orjson.dumps(record)
    direct, merged = Collector([None] * 2, interval_s=1.0), Collector([None] * 2, interval_s=1.0)
    merge = NodeMerge(streams, interval_s=1.0)
    for worker, lines in streams.items():
        for line in lines:
            direct.add(decode(line))
            _feed(merged, merge.add(worker, line))
    for worker in streams:
        _feed(merged, merge.gone(worker, None))
    direct.close()
    merged.close()
    ours, theirs = merged.by_op["read"].anatomy, direct.by_op["read"].anatomy
    assert ours is not None and theirs is not None
    assert (ours.ops, ours.statements, dict(ours.texts)) == (theirs.ops, theirs.statements, dict(theirs.texts))
    for part in PARTS:
        assert ours.hists[part].summary_ms() == theirs.hists[part].summary_ms()
