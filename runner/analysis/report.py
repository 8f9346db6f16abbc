"""The close step: derive rates and percentiles once, build the JSON document and the human table."""

from __future__ import annotations

import os
import platform
import resource
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

from runner import __version__
from runner.analysis.checks import named_percentiles
from runner.analysis.client import bottleneck, worker_load
from runner.analysis.statements import match_ops
from runner.concurrency import MODES
from runner.concurrency.stages import offered_ops
from runner.measure.anatomy import anatomy_line, repeat_warning
from runner.measure.collector import Collector, OpTotals, WorkerState
from runner.measure.exemplars import slowest
from runner.measure.sample import Sample
from runner.measure.status import WorkerStatus
from runner.measure.timeline import build_timeline, stage_summaries
from runner.server.sampler import ConnectionSampler
from runner.server.stats import insights
from runner.spec import RunSpec
from runner.transport.pools import PoolPlan

SCHEMA_VERSION = 1
NS_PER_S = 1_000_000_000
MAX_SERIES_POINTS = 2000  # ~200 s of 0.1 s samples before thinning
REPORTED_PACKAGES = ("sqlalchemy", "asyncpg", "psycopg2-binary", "psycopg", "uvloop", "orjson", "click", "hdrhistogram")


def environment() -> dict[str, Any]:
    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    return {
        "runner": __version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        **{name.split("-")[0]: version(name) for name in REPORTED_PACKAGES},
    }


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 3) if seconds > 0 else 0.0


def _added(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Counts by class, added up over op types (in the order the classes first appear)."""
    total: dict[str, int] = {}
    for part in counts:
        for name, count in part.items():
            total[name] = total.get(name, 0) + count
    return total


def _retries(parts: list[OpTotals]) -> dict[str, Any]:
    """--retries, summed over `parts`: tries retried by class, ops that then succeeded, ops that
    failed on their last allowed try (by that try's class; they are in the errors too)."""
    by_class = _added(part.retries for part in parts)
    gave_up = _added(part.gave_up for part in parts)
    return {
        "retried": sum(by_class.values()),
        "by_class": by_class,
        "succeeded_after_retry": sum(part.retried_ok for part in parts),
        "failed_after_retries": gave_up,
    }


def _op_summary(totals: OpTotals, wall_s: float, percentiles: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "ops": totals.ok + totals.error_count,
        "ok": totals.ok,
        "errors": totals.error_count,
        "errors_by_class": dict(totals.errors),
        "error_samples": dict(totals.error_samples),
        "dropped": totals.dropped,
        "unfinished": totals.unfinished,
        "ops_per_s": _rate(totals.ok, wall_s),
        "latency_ms": totals.hist.summary_ms(percentiles),
        "latency_overflow": totals.hist.overflow,
        "anatomy": None if totals.anatomy is None else totals.anatomy.summary(percentiles),
        "retries": _retries([totals]),
        "outcomes": dict(totals.outcomes),
    }


def _wall_ns(workers: list[WorkerState]) -> int:
    """From the release to the last op's end, over every worker, each on its own clock: its
    measured part's end, or for a worker that died (no end sent) its last interval's. Not every
    interval's: with --think and a count of ops, intervals go on through the pause after the last
    op, which is no part of the run."""
    return max((w.end_ns if w.end_ns is not None else w.last_t_ns for w in workers), default=0)


def _start_spread_ms(workers: list[WorkerState]) -> float | None:
    """How far apart the workers were released, by their wall clocks (NTP skew included)."""
    stamps = [w.go_wall_ns for w in workers if w.go_wall_ns is not None]
    return round((max(stamps) - min(stamps)) / 1e6, 3) if stamps else None


def _worker_summary(worker: WorkerState) -> dict[str, Any]:
    wall_s = worker.end_ns / NS_PER_S if worker.end_ns else 0.0
    return {
        "id": worker.worker_id,
        "pid": worker.pid,
        "host": worker.host,
        "node": worker.node,
        "loop": worker.loop,
        "status": worker.status,
        "reason": worker.reason,
        "exitcode": worker.exitcode,
        "planned_ops": worker.planned_ops,
        "ops": worker.ok + worker.errors,
        "ok": worker.ok,
        "errors": worker.errors,
        "unfinished": worker.unfinished,
        "wall_s": round(wall_s, 6),
        "ops_per_s": _rate(worker.ok, wall_s),
        "cpu_user_s": round(worker.cpu_user_s, 3),
        "cpu_sys_s": round(worker.cpu_sys_s, 3),
        "cpu_measured_s": round(worker.cpu_measured_s, 3),
        "max_rss_kb": worker.max_rss_kb,
        **worker_load(worker),
    }


def host_summary(workers: list[WorkerState]) -> list[dict[str, Any]]:
    """Per host: its workers, their successful ops and their CPU in the measured part. On a
    cluster this answers "did the clients saturate?", the reason to use more than one host."""
    hosts: dict[str, list[WorkerState]] = {}
    for worker in workers:
        hosts.setdefault(worker.host or "unknown", []).append(worker)
    return [
        {
            "host": host,
            "workers": [w.worker_id for w in members],
            "ok": sum(w.ok for w in members),
            "cpu_measured_s": round(sum(w.cpu_measured_s for w in members), 3),
        }
        for host, members in sorted(hosts.items())
    ]


def client_resources(workers: list[WorkerState]) -> dict[str, Any]:
    """CPU the client side spent: every worker (whole process) and this parent (collector, sampler)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    parent_cpu_s = usage.ru_utime + usage.ru_stime
    workers_cpu_s = sum(w.cpu_measured_s for w in workers)
    return {
        "parent": {
            "cpu_user_s": round(usage.ru_utime, 3),
            "cpu_sys_s": round(usage.ru_stime, 3),
            "max_rss_kb": usage.ru_maxrss,
        },
        # The workers' CPU during the measured part, plus all of the parent's (a small share).
        "workers_cpu_s": round(workers_cpu_s, 3),
        "cpu_s": round(workers_cpu_s + parent_cpu_s, 3),
    }


def _cpu_per_op(workers: list[WorkerState], server: dict[str, Any], ops: int) -> dict[str, float | None]:
    """CPU milliseconds per finished op, each side: the workers' in the measured part (what the
    ORM and the driver cost), and the server's (the embedded server's processes; None on another
    server, whose CPU this runner cannot see)."""
    server_cpu = (server.get("stats") or {}).get("cpu_s")
    client_cpu = sum(w.cpu_measured_s for w in workers)
    return {
        "client_cpu_ms_per_op": round(client_cpu * 1000 / ops, 4) if ops else None,
        "server_cpu_ms_per_op": round(server_cpu * 1000 / ops, 4) if ops and server_cpu is not None else None,
    }


def _busier_side(doc: dict[str, Any]) -> str:
    server_cpu = doc["server"].get("stats", {}).get("cpu_s")
    client_cpu = doc["client"]["cpu_s"]
    totals = doc["totals"]
    per_op = {side: f" ({totals[f'{side}_cpu_ms_per_op']:.3g} ms/op)" if totals.get(f"{side}_cpu_ms_per_op") is not None else "" for side in ("client", "server")}
    if server_cpu is None:
        return f"client CPU {client_cpu:.1f} s{per_op['client']} (server CPU unknown: not the embedded server)"
    side = "client" if client_cpu > server_cpu else "server"
    return f"client CPU {client_cpu:.1f} s{per_op['client']}, server CPU {server_cpu:.1f} s{per_op['server']}: the {side} was the busier side"


def connection_series(samples: list[Sample], start_ns: int) -> list[list[float]]:
    """[seconds since the start barrier, server connections] for every sample from the barrier on;
    a long run is thinned to MAX_SERIES_POINTS by keeping each stretch's highest sample."""
    points = [(s.t_ns, s.total) for s in samples if s.t_ns >= start_ns]
    stride = max(1, -(-len(points) // MAX_SERIES_POINTS))
    series = []
    for i in range(0, len(points), stride):
        stretch = points[i : i + stride]
        t_ns = stretch[0][0]
        series.append([round((t_ns - start_ns) / NS_PER_S, 3), max(total for _, total in stretch)])
    return series


def _match_top_statements(server: dict[str, Any], collector: Collector) -> None:
    """pg_stat_statements' top statements, each with the op types that sent it (from the anatomy)."""
    top = server.get("stats", {}).get("top_statements")
    if not top:
        return
    texts = {name: list(t.anatomy.texts) for name, t in collector.by_op.items() if t.anatomy is not None}
    for entry, ops in zip(top, match_ops(top, texts), strict=True):
        entry["ops"] = ops


def build(
    config: RunSpec,
    server: dict[str, Any],
    collector: Collector,
    sampler: ConnectionSampler,
    pools: PoolPlan,
    database: dict[str, Any],
    stop_reason: str | None,
    mismatch: str | None = None,
    cluster: dict[str, Any] | None = None,
    load: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One run's document. `mismatch`: the database disagrees with the reported ops (incomplete);
    `cluster`: the transport's description (Ray), None for local processes; `load`: how the
    tables were filled. `.repeat` and `.checks` are the whole run's (runner.run.judged)."""
    collector.close()
    workers = collector.workers
    wall_s = _wall_ns(workers) / NS_PER_S
    planned = {w.worker_id: w.planned_ops - w.ok - w.errors - w.dropped - w.unfinished for w in workers if w.planned_ops is not None}
    ok = sum(w.ok for w in workers)
    errors = sum(w.errors for w in workers)
    errors_by_class = _added(totals.errors for totals in collector.by_op.values())
    error_samples: dict[str, str] = {}
    for totals in collector.by_op.values():
        for name, message in totals.error_samples.items():
            error_samples.setdefault(name, message)
    dropped = sum(w.dropped for w in workers)
    unfinished = sum(w.unfinished for w in workers)
    offered = round(config.rate_per_s * config.duration_s) if config.rate_per_s and config.duration_s else config.ops or 0
    if config.stages and config.stage_kind == "rate":
        offered = offered_ops(config.stages)
    complete = stop_reason is None and mismatch is None and all(w.status is WorkerStatus.DONE for w in workers)
    _match_top_statements(server, collector)
    percentiles = named_percentiles(config.checks)  # p95, p(97.5): computed because a check reads them
    by_op = {name: _op_summary(t, wall_s, percentiles) for name, t in sorted(collector.by_op.items())}
    repeats = [w for name, op in by_op.items() if op["anatomy"] and (w := repeat_warning(name, op["anatomy"]))]
    return {
        "schema_version": SCHEMA_VERSION,
        "warnings": pools.warnings + ([mismatch] if mismatch else []) + repeats,
        "complete": complete,
        "stop_reason": stop_reason or mismatch,
        "config": config.to_report(),
        "environment": environment(),
        "cluster": cluster,
        "server": server,
        "totals": {
            "limit": "ops" if config.duration_s is None else "duration",
            "planned_ops": config.ops,
            "duration_s": config.duration_s,
            "ops": ok + errors,
            "ok": ok,
            "errors": errors,
            **_cpu_per_op(workers, server, ok + errors),
            # A worker that died could not say whether its unreported ops ran: they are "unknown".
            "not_started": sum(n for i, n in planned.items() if not workers[i].status.vanished),
            "unknown": sum(n for i, n in planned.items() if workers[i].status.vanished),
            "dropped": dropped,
            "unfinished": unfinished,
            "errors_by_class": errors_by_class,
            "error_samples": error_samples,
            "retries": _retries(list(collector.by_op.values())),
            "outcomes": _added(t.outcomes for t in collector.by_op.values()),
            "schedule": None
            if config.rate_per_s is None
            else {
                "rate_per_s": config.rate_per_s,
                "arrival": config.arrival,
                "max_inflight": config.inflight_cap,
                "offered_ops": offered,
                # Due by the end of --duration but never issued: the client fell behind its schedule.
                "not_issued": max(0, offered - ok - errors - unfinished - dropped) if config.duration_s else 0,
                "late_ops": collector.late_ops,
                "max_lag_ms": round(collector.max_lag_ns / 1e6, 3),
            },
            "start_spread_ms": _start_spread_ms(workers),
            "wall_s": round(wall_s, 6),
            "ops_per_s": _rate(ok, wall_s),
            "by_op": by_op,
            "connections": {
                "server_peak": sampler.peak,
                "series": connection_series(sampler.samples, collector.go_ns),
                "samples": len(sampler.samples),
                "failed_samples": sampler.failed_samples,
                "pool_size_per_worker": pools.sizes,
                "max_overflow": pools.max_overflow,
            },
        },
        "warmup": {
            "ops": sum(t.ok + t.error_count for t in collector.warmup_by_op.values()),
            "ok": sum(t.ok for t in collector.warmup_by_op.values()),
            "errors": sum(t.error_count for t in collector.warmup_by_op.values()),
            "by_op": {name: _op_summary(t, 0.0) for name, t in sorted(collector.warmup_by_op.items())},
        },
        "exemplars": slowest({w.worker_id: w.exemplars for w in workers}, config.exemplars) if config.exemplars else None,
        "timeline": build_timeline(collector, sampler.samples),
        "stages": stage_summaries(collector, config.stages) if config.stages else None,
        "client": {**client_resources(workers), "bottleneck": bottleneck(workers, MODES[config.mode].is_async, green=MODES[config.mode].patched)},
        "workers": [_worker_summary(w) for w in workers],
        "hosts": host_summary(workers),
        "database": database,
        "repeat": None,
        "load": load,
        "checks": None,
        "baseline": None,
    }


def scenario_name(config: dict[str, Any]) -> str:
    mode = MODES.get(config["mode"])  # a document may come from another version's modes
    if mode is not None and mode.width == "threads":
        width = f"threads={config['threads']}"
    elif mode is not None and mode.width == "chunk":
        width = f"K={config['chunk']}"
    elif mode is not None and mode.takes_rate:
        width = f"rate={config['rate_per_s']:g}/s"
    else:
        width = "all tasks"
    return f"{config['mode']} {width} procs={config['procs']}"


def _ranges(ids: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5"."""
    spans: list[list[int]] = []
    for i in sorted(ids):
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in spans)


def _placement(doc: dict[str, Any]) -> list[str]:
    """Where the workers ran, when it was more than local processes; lost workers by node."""
    cluster = doc.get("cluster")
    if not cluster:
        return []
    nodes = cluster["nodes"]
    lines = [
        f"Ray {cluster['version']} ({'private instance' if cluster['private'] else cluster['address']}): "
        f"{len(doc['workers'])} workers on {len(nodes)} node{'s' if len(nodes) != 1 else ''}: "
        + "; ".join(f"{n['address'] or n['node'][:12]} ran workers {_ranges(n['workers'])}" for n in nodes),
        f"workers released within {doc['totals']['start_spread_ms']} ms of each other (wall clocks)",
    ]
    for node in nodes:
        lost = [w for w in node["workers"] if doc["workers"][w]["status"] in (WorkerStatus.LOST, WorkerStatus.UNRESPONSIVE)]
        if lost:
            where = node["address"] or node["node"][:12]
            lines.append(
                f"workers {_ranges(lost)} lost on node {where}, which is still up (their actors ended, not the host)"
                if node["alive"]
                else f"node {where} lost, and its workers {_ranges(lost)}"
            )
    return lines


def _schedule(totals: dict[str, Any]) -> list[str]:
    """The open loop's verdict on its own schedule: was the offered rate met?"""
    schedule = totals["schedule"]
    if schedule is None or not (totals["dropped"] or totals["unfinished"] or schedule["not_issued"] or schedule["late_ops"]):
        return []
    issued = totals["ops"] + totals["unfinished"]
    return [
        f"offered rate {schedule['rate_per_s']:g}/s not met: of {schedule['offered_ops']:,} ops due, {issued:,} were issued, "
        f"{totals['dropped']:,} dropped at --max-inflight {schedule['max_inflight']}, {schedule['not_issued']:,} never issued "
        f"(the client fell behind); {schedule['late_ops']:,} issued more than 1 ms late (at most {schedule['max_lag_ms']} ms)"
    ]


def _outcome_lines(doc: dict[str, Any]) -> list[str]:
    """The ops that ended in an answer the workload declared (ok, not errors), per op and class."""
    parts = []
    for name, op in sorted(doc["totals"]["by_op"].items()):
        for cls, n in sorted((op.get("outcomes") or {}).items()):
            parts.append(f"{name} {cls} {n:,} ({n / op['ops']:.1%} of its ops)" if op["ops"] else f"{name} {cls} {n:,}")
    return [f"outcomes (declared by the workload: ok, not errors): {'; '.join(parts)}"] if parts else []


def _retry_lines(doc: dict[str, Any]) -> list[str]:
    retries = doc["totals"]["retries"]
    if not retries["retried"]:
        return []
    classes = ", ".join(f"{name} {n}" for name, n in sorted(retries["by_class"].items()))
    failed = sum(retries["failed_after_retries"].values())
    return [
        f"retries: {retries['retried']:,} tries retried ({classes}); {retries['succeeded_after_retry']:,} ops succeeded after retrying, "
        f"{failed:,} failed after {doc['config']['retries']} retries (latency counts from each op's first try)"
    ]


def _load_shape(config: dict[str, Any]) -> str:
    """How the ops were shaped, when not the defaults: --keys and --think (not in the latencies)."""
    parts = []
    if config.get("keys", "uniform") != "uniform":
        parts.append(f"keys {config['keys']}")
    if config.get("isolation"):
        parts.append(f"isolation {config['isolation']}")
    if config.get("think_s"):
        mean = f"{config['think_s'] * 1000:g} ms"
        parts.append(f"think {'exp, mean ' if config['think_dist'] == 'exp' else ''}{mean} per lane (not in latency)")
    return "".join(f" | {part}" for part in parts)


def human_summary(doc: dict[str, Any]) -> str:
    """The seed's "scenario | time" table, grown up."""
    totals, server = doc["totals"], doc["server"]
    where = "embedded" if server.get("embedded") else "--dsn"
    lines = [
        f"runner {doc['environment']['runner']} | workload {doc['config']['workload']} | "
        f"PostgreSQL {server.get('version')} ({where}) | seed {doc['config']['seed']}" + _load_shape(doc["config"]),
        f"{'scenario':<28} {'ops':>8} {'time s':>8} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'peak conns':>10} {'errors':>7}",
    ]

    def row(name: str, ops: int, wall: str, rate: float, lat: dict[str, float] | None, conns: str, errs: int) -> str:
        p50 = f"{lat['p50']:.2f}" if lat else ""
        p99 = f"{lat['p99']:.2f}" if lat else ""
        return f"{name:<28} {ops:>8} {wall:>8} {rate:>9.1f} {p50:>8} {p99:>8} {conns:>10} {errs:>7}"

    lines.append(
        row(
            scenario_name(doc["config"]),
            totals["ops"],
            f"{totals['wall_s']:.2f}",
            totals["ops_per_s"],
            None,
            str(totals["connections"]["server_peak"]),
            totals["errors"],
        )
    )
    for name, op in totals["by_op"].items():
        lines.append(row(f"  {name}", op["ops"], "", op["ops_per_s"], op["latency_ms"], "", op["errors"]))
    anatomies = {name: op["anatomy"] for name, op in totals["by_op"].items() if op.get("anatomy")}
    lines += [anatomy_line(name, summary) for name, summary in anatomies.items()]
    lines += _retry_lines(doc)
    lines += _outcome_lines(doc)
    lines.append(_busier_side(doc))
    verdict = doc["client"].get("bottleneck", {}).get("verdict")
    if verdict:
        lines.append(f"client: {verdict}")
    lines += _placement(doc)
    lines += insights(server.get("stats", {}))
    lines += _schedule(totals)
    lines += [f"warning: {w}" for w in doc["warnings"]]
    for name, count in totals["errors_by_class"].items():
        sample = totals["error_samples"].get(name)
        lines.append(f"errors: {name} x{count}" + (f": {sample}" if sample else ""))
    if totals["unfinished"]:
        lines.append(f"unfinished: {totals['unfinished']} ops were still in flight when the grace period ran out (cancelled)")
    if not doc["complete"]:
        lines.append(f"INCOMPLETE: {doc['stop_reason'] or 'a worker did not finish'}")
        for worker in doc["workers"]:
            if worker["status"] != WorkerStatus.DONE:
                lines.append(f"  worker {worker['id']}: {worker['status']} ({worker['reason']})")
    return "\n".join(lines)


def print_summary(doc: dict[str, Any]) -> None:
    print(human_summary(doc), file=sys.stderr)
