"""The Ray transport against the local one, and how far one driver's collector goes (not a test).

    python bench/cluster.py [--ops 4000] [--procs 2] [--repeat 3] [--collector-workers 1000]

1. Transport overhead: one embedded server and one Ray head started by this script (2 slots per
   worker process); each round runs the same seeded workload with `--cluster local` and with
   `--cluster ray:ADDRESS`, alternating which goes first. Prints ops/s and read/write p50 per
   round and the ratio ray/local of the medians (goal: >= 0.97).
2. Ray's own cost: seconds to start and stop a private instance (`ray.init` + `ray.shutdown`, as
   `--cluster ray` does), and the peak resident memory of Ray's processes during a
   `--cluster ray` run.
3. The collector at scale: synthetic interval records from N workers (each 1 s of ~500 ops of
   two op types, with real HdrHistogram payloads), decoded and added as the driver does; prints
   the driver's CPU per second of run (goal: under 10 % of one core for 1,000 workers).
4. --driver-records: the driver's whole CPU per streamed record, Ray's own share included, with
   real workers: `--workload noop --rate R --procs P --interval I` (P / I records a second, each
   worker's ops few) over --cluster local and over a private --cluster ray, at two intervals and
   each at two durations; the slope between the durations is the CPU per second of run (start-up
   cancelled), and its difference between the two record rates the cost of one record.
5. --aggregated: the driver's whole CPU over the local transport (the baseline: every record
   reaches the parent) and over a private Ray instance (one aggregator per node merges them), real
   `noop` workers at three (procs, interval) configurations, each at two durations (the slope
   cancels start-up), rounds alternating the transports; fitted as fixed + per timeline bin + per
   worker record (--interval is 0.1 s at least, so 1,000 workers' records cannot come from a few
   workers without also making bins 10x as often), and read at --agg-workers workers at 1 s.
   Then 10,000 workers on 100 nodes: the collector's CPU for 100 merged records a second of 100
   workers each (made by the aggregator's own merge from synthetic intervals), and the Ray fit read
   there (100 items a second, 10,000 worker records).
6. --ray-items: Ray's own cost to the driver per streamed item, without the runner around it: one
   actor yields real merged records (a node of 100 workers, ~17 KB) at two rates, the driver reads
   them as the transport does; the driver process's CPU (Ray's threads included) per item.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner.dsn import child_env  # noqa: E402
from runner.measure.anatomy import Anatomy  # noqa: E402
from runner.measure.collector import Collector  # noqa: E402
from runner.measure.histogram import LatencyHistogram  # noqa: E402
from runner.measure.records import WIRE_VERSION, decode, encode  # noqa: E402
from runner.server.embedded import start_embedded  # noqa: E402


def run(dsn: str, cluster: str, args: argparse.Namespace) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--cluster", cluster, "--procs", str(args.procs), "--ops", str(args.ops),
         "--seed", "11", "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=True, env=child_env(dsn),
    )
    doc = json.loads(proc.stdout)
    assert doc["complete"], doc["stop_reason"]
    return {
        "ops_per_s": doc["totals"]["ops_per_s"],
        "read_p50_ms": doc["totals"]["by_op"]["read"]["latency_ms"]["p50"],
        "write_p50_ms": doc["totals"]["by_op"]["write"]["latency_ms"]["p50"],
    }


def transports(args: argparse.Namespace) -> dict[str, Any]:
    from ray.cluster_utils import Cluster

    server = start_embedded()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.procs, "resources": {"runner": args.procs},
                                                            "include_dashboard": False})
    rounds: dict[str, list[dict[str, Any]]] = {"local": [], "ray": []}
    try:
        for i in range(args.repeat):
            order = ["local", "ray"] if i % 2 == 0 else ["ray", "local"]
            for name in order:
                rounds[name].append(run(server.dsn, "local" if name == "local" else f"ray:{cluster.address}", args))
                print(f"round {i + 1} {name}: {rounds[name][-1]}", file=sys.stderr)
    finally:
        cluster.shutdown()
        server.stop()
    medians = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in rounds.items()}
    return {
        "rounds": rounds,
        "medians": medians,
        "ratio_ops_per_s": round(medians["ray"]["ops_per_s"] / medians["local"]["ops_per_s"], 3),
    }


def _ray_rss_kb() -> int:
    total = 0
    for proc in psutil.process_iter(["name", "cmdline", "memory_info"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] in ("raylet", "gcs_server") or "ray::" in cmdline or "ray/_private" in cmdline:
            total += proc.info["memory_info"].rss // 1024 if proc.info["memory_info"] else 0
    return total


def ray_cost(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    starts = []
    for _ in range(3):
        begin = time.monotonic()
        ray.init(num_cpus=args.procs, resources={"runner": args.procs}, include_dashboard=False, log_to_driver=False,
                 object_store_memory=200 * 2**20, logging_level=logging.WARNING)
        ray.shutdown()
        starts.append(time.monotonic() - begin)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _ray_rss_kb())
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        subprocess.run([sys.executable, "-m", "runner", "--cluster", "ray", "--procs", str(args.procs), "--ops", str(args.ops),
                        "--quiet"], cwd=REPO, capture_output=True, timeout=600, check=True)
    finally:
        done.set()
        sampler.join()
    return {"start_stop_s": [round(s, 2) for s in starts], "peak_rss_mb_during_run": round(peak / 1024, 1)}


def _synthetic_interval(worker: int, seq: int, rng: random.Random) -> bytes:
    ops = {}
    for name in ("read", "write"):
        hist, anatomy = LatencyHistogram(), Anatomy()
        for _ in range(250):
            latency = int(rng.lognormvariate(15.5, 0.6))  # ~5 ms median, a long tail
            hist.record(latency)
            db = latency // 3
            trace = SimpleNamespace(statements=2, rows=3, streamed=0, db_ns=db, pool_wait_ns=db // 10, texts={"SELECT a": 1, "SELECT b": 1}, calls=None)
            anatomy.record(trace, latency)
        ops[name] = {
            "ok": 250, "errors": {}, "error_samples": {}, "dropped": 0, "unfinished": 0, "hist": hist.to_dict(), "anatomy": anatomy.to_dict(),
            "retries": {}, "retried_ok": 0, "gave_up": {}, "outcomes": {},
        }
    lag = LatencyHistogram()
    for _ in range(100):  # the probe's 100 ticks a second
        lag.record(int(rng.expovariate(1 / 200_000)))
    record = {"v": WIRE_VERSION, "kind": "interval", "worker": worker, "seq": seq, "phase": "measure",
              "t_ns": seq * 1_000_000_000, "ops": ops, "pool_checked_out": 40, "schedule": {"late_ops": 0, "max_lag_ns": 0}, "tick_lag": lag.to_dict()}
    return encode(record)  # type: ignore[arg-type]


def _interval_line(templates: list[bytes], worker: int, second: int) -> bytes:
    """Worker `worker`'s interval record for second `second`: a template's, renumbered."""
    line = templates[worker % len(templates)]
    line = line.replace(b'"worker":%d,"seq":1,' % (worker % len(templates)), b'"worker":%d,"seq":%d,' % (worker, second))
    return line.replace(b'"t_ns":1000000000', b'"t_ns":%d' % (second * 1_000_000_000))


def _cpu_s(add: Callable[[bytes], None], lines: list[bytes]) -> float:
    """This process's CPU seconds to hand every line to `add`, as the driver does."""
    begin = time.process_time()
    for line in lines:
        add(line)
    return time.process_time() - begin


def collector_at_scale(workers: int, seconds: int) -> dict[str, Any]:
    rng = random.Random(5)
    templates = [_synthetic_interval(w, 1, rng) for w in range(min(workers, 50))]  # payloads vary; 50 are enough
    collector = Collector([None] * workers, interval_s=1.0)
    for worker in range(workers):
        start = {"v": WIRE_VERSION, "kind": "start", "worker": worker, "seq": 0, "pid": worker, "host": "h", "node": None,
                 "planned_ops": None, "settings": {}, "loop": None}
        collector.add(start)  # type: ignore[arg-type]
    lines = [_interval_line(templates, worker, second) for second in range(1, seconds + 1) for worker in range(workers)]
    cpu_s = _cpu_s(lambda line: collector.add(decode(line)), lines)
    assert sum(t.ok for t in collector.by_op.values()) == workers * seconds * 500
    return {
        "workers": workers,
        "seconds_of_run": seconds,
        "records": len(lines),
        "bytes_per_record": round(sum(len(line) for line in lines) / len(lines)),
        "driver_cpu_s": round(cpu_s, 3),
        "driver_cpu_per_second_of_run": round(cpu_s / seconds, 4),
        "share_of_one_core": f"{cpu_s / seconds:.1%}",
    }


def _driver_cpu_s(cluster: str, seconds: float, interval_s: float, args: argparse.Namespace) -> float:
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--cluster", cluster, "--workload", "noop", "--procs", str(args.record_procs),
         "--rate", str(args.record_rate), "--interval", str(interval_s), "--duration", str(seconds), "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=True,
    )
    parent = json.loads(proc.stdout)["client"]["parent"]
    return float(parent["cpu_user_s"] + parent["cpu_sys_s"])


def driver_per_record(args: argparse.Namespace) -> dict[str, Any]:
    """The driver's CPU per second of run at two record rates, local and Ray: its slope over the
    two durations cancels start-up; the difference between the rates splits what each record
    costs from what the driver spends every second whatever the records (sampler, live line)."""
    short, long = args.record_seconds
    out: dict[str, Any] = {"procs": args.record_procs, "intervals_s": args.record_intervals, "durations_s": [short, long]}
    for cluster in ("local", "ray"):
        per_s = {}
        for interval_s in args.record_intervals:
            cpu = {seconds: _driver_cpu_s(cluster, seconds, interval_s, args) for seconds in (short, long)}
            per_s[args.record_procs / interval_s] = (cpu[long] - cpu[short]) / (long - short)
        (low, low_cpu), (high, high_cpu) = sorted(per_s.items())
        per_record = (high_cpu - low_cpu) / (high - low)
        out[cluster] = {
            "share_of_one_core": {f"{rate:g} records/s": f"{cpu:.1%}" for rate, cpu in sorted(per_s.items())},
            "us_per_record": round(per_record * 1e6, 1),
            "fixed_share_of_one_core": f"{low_cpu - per_record * low:.1%}",
        }
    return out


def _merged_records(workers: int, nodes: int, seconds: int) -> tuple[list[bytes], int]:
    """`nodes` nodes' merged records for `seconds` seconds of `workers` workers each, made by the
    aggregator's own merge (runner.transport.aggregate) from synthetic intervals, and the workers' count."""
    from runner.transport.aggregate import NodeMerge

    rng = random.Random(7)
    templates = [_synthetic_interval(w, 1, rng) for w in range(min(workers, 50))]
    merge = NodeMerge(range(workers), interval_s=1.0, clock=lambda: 0.0)
    per_second: list[list[bytes]] = []
    for second in range(1, seconds + 1):
        for worker in range(workers):
            merge.add(worker, _interval_line(templates, worker, second))
        per_second.append([payload for _, _, payload in merge.due()])
    out = []
    for records in per_second:
        for node in range(nodes):
            for payload in records:
                record = json.loads(payload)
                for part in record["workers"] + record["totals"]:
                    part["worker"] += node * workers
                out.append(json.dumps(record).encode())
    return out, workers * nodes


def collector_merged(workers: int, nodes: int, seconds: int) -> dict[str, Any]:
    from runner.measure.records import decode_merged

    lines, total = _merged_records(workers, nodes, seconds)
    collector = Collector([None] * total, interval_s=1.0)
    for worker in range(total):
        collector.workers[worker].next_seq = 1  # their start records (seq 0) are not what is timed
    cpu_s = _cpu_s(lambda line: collector.add_merged(decode_merged(line)), lines)
    assert sum(t.ok for t in collector.by_op.values()) == total * seconds * 500
    return {
        "workers": total, "nodes": nodes, "seconds_of_run": seconds, "merged_records": len(lines),
        "bytes_per_record": round(sum(len(line) for line in lines) / len(lines)),
        "collector_share_of_one_core": f"{cpu_s / seconds:.1%}",
        "collector_cpu_per_second_of_run": round(cpu_s / seconds, 4),
    }


CONFIGS = ((2, 0.125), (16, 0.125), (2, 1.0))  # (procs, interval): workers vary at one bin rate, then bins at one worker count


def _fit(share: dict[tuple[int, float], float]) -> dict[str, float]:
    """The driver's CPU share as fixed + per bin a second + per worker record a second, from CONFIGS."""
    (few, fast), (many, _), (_, slow) = CONFIGS
    per_record = (share[(many, fast)] - share[(few, fast)]) / (many / fast - few / fast)
    per_bin = (share[(few, fast)] - share[(few, slow)] - per_record * (few / fast - few / slow)) / (1 / fast - 1 / slow)
    fixed = share[(few, slow)] - per_bin / slow - per_record * few / slow
    return {"fixed": fixed, "per_bin_s": per_bin, "per_record_s": per_record}


def aggregated(args: argparse.Namespace) -> dict[str, Any]:
    """The driver's CPU per second of run, local (every record to the parent) and Ray (one
    aggregator per node), at CONFIGS; fitted as fixed + per bin + per worker record, then read at
    --agg-workers workers at 1 s intervals (one bin a second), rounds alternating the transports."""
    short, long = args.record_seconds
    shares: dict[str, dict[tuple[int, float], list[float]]] = {"local": {}, "ray": {}}
    for i in range(args.repeat):
        for cluster in (("local", "ray") if i % 2 == 0 else ("ray", "local")):
            for procs, interval_s in CONFIGS:
                emulate = argparse.Namespace(record_procs=procs, record_rate=args.record_rate)
                cpu = {seconds: _driver_cpu_s(cluster, seconds, interval_s, emulate) for seconds in (short, long)}
                shares[cluster].setdefault((procs, interval_s), []).append((cpu[long] - cpu[short]) / (long - short))
                print(f"round {i + 1} {cluster} procs {procs} interval {interval_s}: {shares[cluster][(procs, interval_s)][-1]:.2%}",
                      file=sys.stderr)
    out: dict[str, Any] = {"durations_s": [short, long], "rounds": args.repeat, "rate_per_s": args.record_rate}
    fits = {}
    for cluster, measured in shares.items():
        fits[cluster] = fit = _fit({config: statistics.median(values) for config, values in measured.items()})
        out[cluster] = {
            "share_of_one_core": {f"procs {p} interval {i:g} s": [f"{v:.2%}" for v in values] for (p, i), values in measured.items()},
            "fixed_share": f"{fit['fixed']:.2%}",
            "us_per_bin": round(fit["per_bin_s"] * 1e6, 1),
            "us_per_worker_record": round(fit["per_record_s"] * 1e6, 1),
            f"at_{args.agg_workers}_workers_1s": f"{fit['fixed'] + fit['per_bin_s'] + fit['per_record_s'] * args.agg_workers:.1%}",
        }
    at_scale = collector_merged(args.agg_node_workers, args.agg_nodes, args.collector_seconds)
    ray = fits["ray"]  # a node's item a bin: Ray's per-bin cost is its per-item cost (an upper bound)
    workers = args.agg_nodes * args.agg_node_workers
    out["ten_thousand"] = {
        **at_scale,
        "fitted_ray_driver": f"{ray['fixed'] + ray['per_bin_s'] * args.agg_nodes + ray['per_record_s'] * workers:.1%}",
    }
    return out


def ray_items(args: argparse.Namespace) -> dict[str, Any]:
    """Ray's cost to the driver per streamed item, alone: --item-streams actors on a private
    instance yield real merged records (a node of --agg-node-workers workers) at two rates for the
    same time, batched as a node's aggregator batches them, and the driver reads them as
    RayTransport.poll does (one ray.wait a tick, then next and ray.get); the driver process's CPU
    (every thread: Ray's own included) at the two rates, their difference per item."""
    import ray

    from runner.transport.ray import AGGREGATOR_BATCH_S, GET_TIMEOUT_S, _ready_by
    from runner.transport.ray_defaults import quiet_raylet_errors

    lines, _ = _merged_records(args.agg_node_workers, 1, 10)

    @ray.remote(num_cpus=0)
    class Emitter:
        def run(self, items: list[bytes], rate: float, seconds: float, begin: float | None) -> Any:
            begin = begin or time.time()  # a shared start: the streams' items come together, as nodes' bins do
            batch: list[tuple[str, tuple[int, ...], bytes]] = []
            sent = 0.0
            count = int(rate * seconds)
            for n in range(count):  # batched as a node's aggregator does (AGGREGATOR_BATCH_S)
                time.sleep(max(0.0, begin + n / rate - time.time()))
                batch.append(("merged", (0,), items[n % len(items)]))
                if n == count - 1 or time.monotonic() - sent >= AGGREGATOR_BATCH_S:
                    yield batch
                    batch, sent = [], time.monotonic()

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 2**20, logging_level=logging.WARNING)
    quiet_raylet_errors()  # many actors on 2 CPUs: the raylet's warnings would land on stdout, before the JSON
    cpu: dict[float, list[float]] = {}
    try:
        for i in range(args.repeat):
            for rate in ((args.item_rates[0], args.item_rates[1]) if i % 2 == 0 else (args.item_rates[1], args.item_rates[0])):
                emitters = [Emitter.remote() for _ in range(args.item_streams)]  # type: ignore[attr-defined]
                ray.get([emitter.__ray_ready__.remote() for emitter in emitters])
                begin = time.time() + 0.5 if args.item_together else None
                streams = {n: e.run.remote(lines, rate / args.item_streams, args.item_seconds, begin) for n, e in enumerate(emitters)}
                begin, got = time.process_time(), 0
                while streams:
                    for key, stream in _ready_by(streams, 0.1):
                        try:
                            got += len(ray.get(next(stream), timeout=GET_TIMEOUT_S))
                        except StopIteration:
                            del streams[key]
                cpu.setdefault(rate, []).append((time.process_time() - begin) / args.item_seconds)
                assert got == args.item_streams * int(rate / args.item_streams * args.item_seconds)
                for emitter in emitters:
                    ray.kill(emitter)
                print(f"round {i + 1}: {rate:g} items/s: {cpu[rate][-1]:.2%} of a core", file=sys.stderr)
    finally:
        ray.shutdown()
    low, high = sorted(cpu)
    per_item = (statistics.median(cpu[high]) - statistics.median(cpu[low])) / (high - low)
    fixed = statistics.median(cpu[low]) - per_item * low  # Ray's threads in the driver, whatever the items
    out: dict[str, Any] = {
        "item_bytes": round(sum(len(line) for line in lines) / len(lines)),
        "rates_per_s": [low, high], "seconds": args.item_seconds, "rounds": args.repeat, "streams": args.item_streams, "together": args.item_together,
        "share_of_one_core": {f"{rate:g} items/s": [f"{v:.2%}" for v in values] for rate, values in sorted(cpu.items())},
        "us_per_item": round(per_item * 1e6, 1),
        "fixed_share": f"{fixed:.2%}",
    }
    # The driver at scale, composed: Ray's fixed share, one item a node a second at the cost just
    # measured, and the collector's own CPU for those nodes' merged records (synthetic, in-process).
    for nodes, per_node in ((10, 100), (args.agg_nodes, args.agg_node_workers)):
        collector = collector_merged(per_node, nodes, args.collector_seconds)
        share = fixed + per_item * nodes + collector["collector_cpu_per_second_of_run"]
        out[f"{nodes * per_node}_workers_on_{nodes}_nodes"] = {"collector": collector["collector_share_of_one_core"], "driver": f"{share:.1%}"}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=4000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--collector-workers", type=int, default=1000)
    parser.add_argument("--collector-seconds", type=int, default=20)
    parser.add_argument("--skip-transports", action="store_true")
    parser.add_argument("--driver-records", action="store_true", help="only part 4: the driver's CPU per streamed record, local and Ray")
    parser.add_argument("--record-procs", type=int, default=8)
    parser.add_argument("--record-intervals", type=float, nargs=2, default=(0.125, 1.0))
    parser.add_argument("--record-rate", type=float, default=400.0)
    parser.add_argument("--record-seconds", type=float, nargs=2, default=(10.0, 40.0))
    parser.add_argument("--aggregated", action="store_true", help="only part 5: the driver at 1,000 and 10,000 workers' rates, aggregated on Ray")
    parser.add_argument("--agg-workers", type=int, default=1000)
    parser.add_argument("--agg-nodes", type=int, default=100)
    parser.add_argument("--agg-node-workers", type=int, default=100)
    parser.add_argument("--ray-items", action="store_true", help="only part 6: Ray's cost to the driver per streamed item")
    parser.add_argument("--item-rates", type=float, nargs=2, default=(10.0, 200.0))
    parser.add_argument("--item-seconds", type=float, default=20.0)
    parser.add_argument("--item-streams", type=int, default=1, help="emitting actors (nodes' aggregators), the rate shared among them")
    parser.add_argument("--item-together", action="store_true", help="the streams emit at the same instants (nodes' bins end together)")
    args = parser.parse_args()
    if args.ray_items:
        print(json.dumps(ray_items(args), indent=2))
        return 0
    if args.aggregated:
        print(json.dumps(aggregated(args), indent=2))
        return 0
    if args.driver_records:
        print(json.dumps(driver_per_record(args), indent=2))
        return 0
    result: dict[str, Any] = {"collector": collector_at_scale(args.collector_workers, args.collector_seconds)}
    print(json.dumps(result["collector"]), file=sys.stderr)
    if not args.skip_transports:
        result["ray_cost"] = ray_cost(args)
        result["transports"] = transports(args)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
