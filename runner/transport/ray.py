"""The Ray transport: one threaded actor per worker, on as many hosts as the cluster has.

Ray is an existing engine, so the runner speaks no protocol of its own: a placement group
reserves one bundle per worker (all of them or a clear error), each worker is a threaded actor
whose `run` is a streaming generator yielding the same JSON-line records the local pipe carries,
and `go`/`stop` are served on a control concurrency group while `run` streams. A dead actor or
host surfaces in its stream as an error item; the driver's death takes its actors with it (no
detached actors). Why Ray, and why each choice: docs/design/ray.md.

Only imported for --cluster ray...: Ray is the optional extra `runner[ray]`.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError
from ray.util.placement_group import PlacementGroup, placement_group, placement_group_table, remove_placement_group
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

from runner.errors import UsageError
from runner.spec import RunSpec
from runner.transport import Ended, Event, Line, Lost, Merged
from runner.transport.aggregate import Item, NodeMerge
from runner.transport.ray_defaults import (
    masked_entrypoint,
    node_up,
    quiet_auth_notice,
    quiet_raylet_errors,
    reachable,
    remove_session,
    session_dir,
)
from runner.worker.body import run_worker
from runner.worker.channel import Channel
from runner.worker.plan import WorkerPlan

RUNNER_RESOURCE = "runner"  # hosts opt in to carrying workers by advertising it
PLACEMENT_TIMEOUT_S = 30.0
GET_TIMEOUT_S = 10.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")
RAISED = re.compile(r"^[A-Za-z_.]*(Error|Exception)\b")  # a traceback's last line: "WireError: ..."
AGGREGATOR_TICK_S = 0.05  # how often a node's aggregator looks for bins due when no record comes
AGGREGATOR_BATCH_S = 0.2  # a node's aggregator sends at most one batch this often: the driver reads one a tick (0.1 s)
PRIVATE_OBJECT_STORE_BYTES = 200 * 2**20  # records are tiny; containers have a small /dev/shm
# Ray's worker processes install uvloop's policy when uvloop is importable: off, so that
# --loop asyncio is honoured (the body also builds its loops explicitly).
ACTOR_ENV = {"RAY_USE_UVLOOP": "0"}


@ray.remote(concurrency_groups={"control": 2})  # type: ignore[call-overload]
class RunnerWorker:
    """One worker: the shared body on a thread of its own, its records streamed back."""

    def __init__(self) -> None:
        self._go = threading.Event()
        self._stop = threading.Event()

    def run(self, plan: WorkerPlan) -> Any:  # a generator method: a streaming generator for the caller
        lines: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        node = ray.get_runtime_context().get_node_id()

        def body() -> None:
            try:
                run_worker(plan, Channel(lines.put, plan.worker_id), self._go, self._stop, node)
            finally:
                lines.put(None)

        thread = threading.Thread(target=body, name="runner-worker", daemon=True)
        thread.start()
        while (line := lines.get()) is not None:
            yield line
        thread.join()

    @ray.method(concurrency_group="control")
    def go(self) -> None:
        self._go.set()

    @ray.method(concurrency_group="control")
    def stop(self) -> None:
        self._stop.set()
        self._go.set()  # a worker still waiting to start ends at once


@ray.remote(num_cpus=0)
class NodeAggregator:
    """One node's workers: their streams read on their node, their intervals merged there
    (runner.transport.aggregate), one stream to the driver for all of them."""

    def run(self, workers: list[tuple[int, Any, WorkerPlan]], interval_s: float) -> Any:  # a streaming generator
        """Yields lists of items (runner.transport.aggregate.Item), at most one per
        AGGREGATOR_BATCH_S: Ray costs the driver ~0.45-0.95 ms a streamed object, whatever it holds."""
        streams = {worker: actor.run.remote(plan) for worker, actor, plan in workers}
        merge = NodeMerge(streams, interval_s)
        batch: list[Item] = []
        sent = 0.0
        while streams:
            for worker, stream in _ready(streams, AGGREGATOR_TICK_S):
                try:
                    batch += merge.add(worker, ray.get(next(stream), timeout=GET_TIMEOUT_S))
                except StopIteration:
                    del streams[worker]
                    batch += merge.gone(worker, None)
                except RayError as exc:  # ActorDiedError (killed, crashed), a stuck object
                    del streams[worker]
                    batch += merge.gone(worker, _reason(exc))
            batch += merge.due()
            if batch and (not streams or time.monotonic() - sent >= AGGREGATOR_BATCH_S):
                yield batch
                batch, sent = [], time.monotonic()


def _ready_by(streams: dict[int, Any], timeout_s: float) -> list[tuple[int, Any]]:
    """The streams with a next item `timeout_s` from now (or at once, if all have one): one
    `ray.wait` a tick over every node's stream, not one each time a node's batch comes (with 50
    streams whose items came one by one, that wait made Ray's cost per item 953 µs, against 572 µs
    when they came together: bench/cluster.py --ray-items --item-streams 50)."""
    if not streams:
        return []
    return _owned(streams, ray.wait(list(streams.values()), num_returns=len(streams), timeout=timeout_s)[0])


def _ready(streams: dict[int, Any], timeout_s: float) -> list[tuple[int, Any]]:
    """The streams with a next item: waiting up to `timeout_s` for the first, then taking all."""
    if not streams:
        return []
    ready, rest = ray.wait(list(streams.values()), num_returns=1, timeout=timeout_s)
    if ready and rest:
        ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
    return _owned(streams, ready)


def _owned(streams: dict[int, Any], ready: list[Any]) -> list[tuple[int, Any]]:
    """`ready` (streams `ray.wait` returned) with the key each has in `streams`."""
    owner = {id(stream): key for key, stream in streams.items()}
    return [(owner[id(stream)], stream) for stream in ready]


class RayCluster:
    """The cluster a run uses: a private local instance (`ray`), or one it joins (`ray:auto`,
    `ray:HOST:PORT`). Opened once per invocation, whatever --repeat says."""

    def __init__(self, config: RunSpec) -> None:
        self.private = config.cluster == "ray"
        common: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING, "include_dashboard": False}
        self._session_dir: Path | None = None
        if self.private:
            quiet_auth_notice()
            with masked_entrypoint():
                ray.init(
                    num_cpus=config.procs,
                    resources={RUNNER_RESOURCE: config.procs},
                    object_store_memory=PRIVATE_OBJECT_STORE_BYTES,
                    **common,
                )
            self._session_dir = session_dir()
        else:
            address = "auto" if config.cluster == "ray:auto" else config.cluster.removeprefix("ray:")
            common.pop("include_dashboard")  # a running cluster's choice, not ours
            if address != "auto":
                reachable(address)
            try:
                with masked_entrypoint():
                    ray.init(address=address, **common)
            except (ConnectionError, RuntimeError) as exc:
                raise UsageError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
        quiet_raylet_errors()
        self.address = ray.get_runtime_context().gcs_address

    def all_on_this_host(self) -> bool:
        """Whether every node runs on this machine (the embedded server is reachable only then)."""
        here = {ray.util.get_node_ip_address(), "127.0.0.1"}
        return all(node["NodeManagerAddress"] in here for node in ray.nodes() if node["Alive"])

    def transport(self) -> RayTransport:
        return RayTransport(self)

    def close(self) -> None:
        ray.shutdown()  # a private instance stops; a joined cluster only loses this driver
        if self._session_dir is not None:  # a private instance's logs and sockets: ours, and done with
            remove_session(self._session_dir)


def _too_few_bundles(offered: int, needed: int, when: str = "") -> str:
    return (
        f"the Ray cluster offers {offered} `runner` resources{' ' + when if when else ''} and this run needs {needed} "
        f"(one per --procs, each 1 CPU and 1 '{RUNNER_RESOURCE}'): lower --procs, or add hosts with "
        f"ray start --address=HEAD:6379 --resources='{{\"{RUNNER_RESOURCE}\": N}}'"
    )


def _reason(exc: BaseException) -> str:
    """A lost worker's reason: the error's first line, where Ray says it the host's address, and
    a failed task's own exception (its last line), without Ray's terminal colours."""
    lines = [line.strip() for line in ANSI.sub("", str(exc)).splitlines() if line.strip()]
    parts = lines[:1] + [line for line in lines if line.startswith(("ip:", "pid:"))]
    if len(lines) > 1 and RAISED.match(lines[-1]):
        parts.append(lines[-1])
    return "; ".join(parts) or type(exc).__name__


class RayTransport:
    """Workers as actors, and one aggregator actor on each node they run on: the driver reads
    one stream per node (its merged intervals, its workers' other records, their ends and losses)
    and sends `go` and `stop` to the workers themselves."""

    # A record crosses the actor's streaming generator and the object store: on a starved host
    # (two CPU hogs and a second test session on two cores) a live worker's went unheard 5 s.
    # A dead actor is reported by Ray itself (lost), so this covers only a hung, living one.
    silence_allowance_s = 10.0

    def __init__(self, cluster: RayCluster) -> None:
        self._cluster = cluster
        self._pg: PlacementGroup | None = None
        self._actors: list[Any] = []
        self._aggregators: list[Any] = []
        self._live: dict[int, Any] = {}  # aggregator index -> its stream, until it ends or is lost
        self._members: dict[int, set[int]] = {}  # aggregator index -> its workers not yet ended or lost
        self._node_of: list[str] = []

    def start(self, plans: list[WorkerPlan]) -> None:
        offered = int(ray.cluster_resources().get(RUNNER_RESOURCE, 0))
        if offered < len(plans):  # it can never fit: say so now, not after the placement timeout
            raise UsageError(_too_few_bundles(offered, len(plans)))
        bundles = [{"CPU": 1, RUNNER_RESOURCE: 1} for _ in plans]
        self._pg = placement_group(bundles, strategy="SPREAD")
        try:
            ray.get(self._pg.ready(), timeout=PLACEMENT_TIMEOUT_S)
        except GetTimeoutError:
            free = int(ray.available_resources().get(RUNNER_RESOURCE, 0))
            raise UsageError(_too_few_bundles(free, len(plans), f"within {PLACEMENT_TIMEOUT_S:.0f} s")) from None
        table = placement_group_table(self._pg)["bundles_to_node_id"]
        self._node_of = [table[i] for i in range(len(plans))]
        by_node: dict[str, list[tuple[int, Any, WorkerPlan]]] = {}
        for plan in plans:
            actor = RunnerWorker.options(  # type: ignore[attr-defined]
                num_cpus=1,
                resources={RUNNER_RESOURCE: 1},
                scheduling_strategy=PlacementGroupSchedulingStrategy(self._pg, placement_group_bundle_index=plan.worker_id),
                max_restarts=0,  # a benchmark never silently re-runs a worker
                max_task_retries=0,
                runtime_env={"env_vars": ACTOR_ENV},
            ).remote()
            self._actors.append(actor)
            by_node.setdefault(self._node_of[plan.worker_id], []).append((plan.worker_id, actor, plan))
        for index, (node, workers) in enumerate(by_node.items()):
            aggregator = NodeAggregator.options(  # type: ignore[attr-defined]
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),  # where its workers are
                max_restarts=0,
                max_task_retries=0,
                runtime_env={"env_vars": ACTOR_ENV},
            ).remote()
            self._aggregators.append(aggregator)
            self._members[index] = {worker for worker, _, _ in workers}
            self._live[index] = aggregator.run.remote(workers, plans[0].config.interval_s)

    def poll(self, timeout_s: float) -> list[Event]:
        events: list[Event] = []
        for index, stream in _ready_by(self._live, timeout_s):  # a node's batch each: it sends one per AGGREGATOR_BATCH_S at most
            members = self._members[index]
            try:
                batch: list[Item] = ray.get(next(stream), timeout=GET_TIMEOUT_S)
            except StopIteration:  # it ends after its every worker's end: none should be left
                events += self._node_gone(index, "its node's aggregator ended before it")
                continue
            except RayError as exc:  # the aggregator died: its node with it, most likely
                events += self._node_gone(index, _reason(exc))
                continue
            for kind, who, payload in batch:
                if kind == "merged":
                    events.append(Merged(who, payload))
                elif kind == "line":
                    events.append(Line(who, payload))
                else:
                    members.discard(who)
                    events.append(Ended(who) if kind == "ended" else Lost(who, payload, self._node_address(who)))
        return events

    def _node_gone(self, index: int, reason: str) -> list[Event]:
        """Aggregator `index`'s stream is over: each of its workers not yet ended is lost."""
        del self._live[index]
        members = self._members[index]
        lost: list[Event] = [Lost(w, reason, self._node_address(w)) for w in sorted(members)]
        members.clear()
        return lost

    def _node_address(self, worker: int) -> str | None:
        node_id = self._node_of[worker] if worker < len(self._node_of) else None
        return next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id), None)

    def release(self) -> None:
        for actor in self._actors:
            actor.go.remote()

    def stop(self, worker: int | None = None) -> None:
        for index in self._chosen(worker):
            self._actors[index].stop.remote()

    def kill(self, worker: int | None = None) -> None:
        for index in self._chosen(worker):
            ray.kill(self._actors[index], no_restart=True)

    def _chosen(self, worker: int | None) -> list[int]:
        live = set().union(*self._members.values())
        return [w for w in sorted(live) if worker is None or w == worker]

    def close(self) -> None:
        for actor in self._actors + self._aggregators:
            try:
                ray.kill(actor, no_restart=True)
            except RayError:
                pass  # already gone with its node
        if self._pg is not None:
            remove_placement_group(self._pg)

    def describe(self) -> dict[str, Any] | None:
        known = {n["NodeID"]: n for n in ray.nodes()}
        nodes: dict[str, list[int]] = {}
        for worker, node_id in enumerate(self._node_of):
            nodes.setdefault(node_id, []).append(worker)
        return {
            "engine": "ray",
            "version": ray.__version__,
            "address": self._cluster.address,
            "private": self._cluster.private,
            "nodes": [
                {"node": node, "address": known[node]["NodeManagerAddress"] if node in known else None, "workers": workers,
                 "alive": node_up(known.get(node))}
                for node, workers in nodes.items()
            ],
        }
