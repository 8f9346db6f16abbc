"""Was the load generator, not PostgreSQL, what limited the run?

Every worker times a 10 ms probe timer (runner.worker.anatomy): on a busy event loop (or, in the
sync mode, behind busy threads holding the GIL) it fires late, and every op waiting to be
resumed was late by as much. Late timers with the worker's CPU near a full core mean the worker
itself was the bottleneck; late timers at a low CPU share mean it waited for a core that other
processes (PostgreSQL, other workers) held.
"""

from __future__ import annotations

import os
import socket
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


def bottleneck(workers: list[WorkerState], is_async: bool, cores: int | None = None, here: str | None = None, green: bool = False) -> dict[str, Any]:
    """`limited`: some worker's probe lagged past LAG_LIMIT_MS at p99, so its ops waited for the
    client. `cause`: "cpu" when such a worker was busy (near a full core: add workers), "starved"
    when it was not (it waited for a core other processes held). `advice`: what changes it, from
    the worker's host's cores (`cores` of the host `here`, this one by default; unknown for another
    host): "add-procs", "fewer-procs" (more workers there than cores), "separate-hosts" (no more
    workers than cores, so PostgreSQL or other processes held them: fewer processes would not
    help), "more-hosts" (cores unknown). `verdict`: one sentence."""
    cores = cores if cores is not None else os.cpu_count()
    here = here if here is not None else socket.gethostname()
    what = "event loop" if is_async else "greenlets (gevent's hub)" if green else "threads (GIL)"
    lagged: list[tuple[int, float, float]] = []
    for worker in workers:
        load = worker_load(worker)
        lag, share = load["tick_lag_ms"], load["cpu_share"]
        if lag is not None and share is not None and lag["p99"] >= LAG_LIMIT_MS:
            lagged.append((worker.worker_id, lag["p99"], share))
    busy = [w for w in lagged if w[2] >= BUSY_SHARE]
    cause, verdict, advice = None, None, None
    if busy:
        wid, p99, share = max(busy, key=lambda w: w[1])
        cause, advice = "cpu", "add-procs"
        verdict = (
            f"the client limited this run: worker {wid}'s {what} lagged p99 {p99:.0f} ms at {share:.0%} CPU "
            f"({len(busy)} of {len(workers)} workers busy like it): add --procs or hosts"
        )
    elif lagged:
        wid, p99, share = max(lagged, key=lambda w: w[1])
        cause = "starved"
        advice, remedy = _starved_remedy(workers, wid, cores, here)
        verdict = f"the client limited this run: worker {wid}'s {what} lagged p99 {p99:.0f} ms at only {share:.0%} CPU, {remedy}"
    return {
        "limited": bool(lagged),
        "cause": cause,
        "advice": advice,
        "workers": [w[0] for w in lagged],
        "lag_limit_ms": LAG_LIMIT_MS,
        "busy_share": BUSY_SHARE,
        "verdict": verdict,
    }


def _starved_remedy(workers: list[WorkerState], wid: int, cores: int | None, here: str) -> tuple[str, str]:
    """What a starved worker's host needs: never fewer processes where there is one, or no more
    than cores (the cores went to PostgreSQL or to other work then, not to the client's own)."""
    host = next((w.host for w in workers if w.worker_id == wid), None)
    sharing = sum(1 for w in workers if w.host == host)
    known = cores if host in (here, None) else None
    if known is None:  # another host, its cores unknown here
        fewer = "fewer --procs per host, or " if sharing > 1 else ""
        return "more-hosts", f"waiting for a core that other processes held on {host} ({sharing} worker{'s' if sharing > 1 else ''} there): {fewer}more hosts"
    if sharing > known:
        return "fewer-procs", f"waiting for a core: {sharing} workers on {known} cores: at most {known} --procs per host (fewer beside PostgreSQL), or more hosts"
    return "separate-hosts", (
        f"waiting for a core that PostgreSQL or other work held ({sharing} worker{'s' if sharing > 1 else ''} on {known} cores, "
        "not too many): the client and the server share the cores; a client on other hosts (--cluster ray) or a server elsewhere (--dsn) would free them"
    )
