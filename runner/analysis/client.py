"""Was the load generator, not PostgreSQL, what limited the run?

Every worker times a 10 ms probe timer (runner.worker.anatomy): on a busy event loop (or, in the
sync mode, behind busy threads holding the GIL) it fires late, and every op waiting to be
resumed was late by as much. Late timers with the worker's CPU near a full core mean the worker
itself was the bottleneck; late timers at a low CPU share mean it waited for a core that other
processes (PostgreSQL, other workers) held.
"""

from __future__ import annotations

from typing import Any

from runner.measure.collector import WorkerState

NS_PER_S = 1_000_000_000
LAG_LIMIT_MS = 10.0  # probe lateness at p99 from which ops waited noticeably for their own client
BUSY_SHARE = 0.9  # of one core: a Python worker cannot go much past it (one thread runs at a time)


def worker_load(worker: WorkerState) -> dict[str, Any]:
    """The worker's probe lateness and its CPU share of the measured part."""
    wall_s = (worker.end_ns or 0) / NS_PER_S
    lag = worker.tick_lag.summary_ms()
    return {
        "tick_lag_ms": {"p50": lag["p50"], "p99": lag["p99"], "max": lag["max"]} if worker.tick_lag.count else None,
        "cpu_share": round(worker.cpu_measured_s / wall_s, 3) if wall_s > 0 else None,
    }


def bottleneck(workers: list[WorkerState], is_async: bool) -> dict[str, Any]:
    """`limited`: some worker's probe lagged past LAG_LIMIT_MS at p99, so its ops waited for the
    client. `cause`: "cpu" when such a worker was busy (near a full core: add workers), "starved"
    when it was not (it waited for a core other processes held). `verdict`: one sentence."""
    what = "event loop" if is_async else "threads (GIL)"
    lagged: list[tuple[int, float, float]] = []
    for worker in workers:
        load = worker_load(worker)
        lag, share = load["tick_lag_ms"], load["cpu_share"]
        if lag is not None and share is not None and lag["p99"] >= LAG_LIMIT_MS:
            lagged.append((worker.worker_id, lag["p99"], share))
    busy = [w for w in lagged if w[2] >= BUSY_SHARE]
    cause, verdict = None, None
    if busy:
        wid, p99, share = max(busy, key=lambda w: w[1])
        cause = "cpu"
        verdict = (
            f"the client limited this run: worker {wid}'s {what} lagged p99 {p99:.0f} ms at {share:.0%} CPU "
            f"({len(busy)} of {len(workers)} workers busy like it): add --procs or hosts"
        )
    elif lagged:
        wid, p99, share = max(lagged, key=lambda w: w[1])
        cause = "starved"
        verdict = (
            f"the client limited this run: worker {wid}'s {what} lagged p99 {p99:.0f} ms at only {share:.0%} CPU, "
            "waiting for a core that PostgreSQL or other workers held: fewer --procs per host, or more hosts"
        )
    return {
        "limited": bool(lagged),
        "cause": cause,
        "workers": [w[0] for w in lagged],
        "lag_limit_ms": LAG_LIMIT_MS,
        "busy_share": BUSY_SHARE,
        "verdict": verdict,
    }
