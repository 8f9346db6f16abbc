"""The Ray transport against real Ray clusters on this machine: a private instance, a joined
cluster (ray.cluster_utils.Cluster), and two nodes started with `ray start` that lose one.

Ray is required here (the README's test command installs the `ray` extra): a missing Ray fails
the collection of this module instead of skipping what it claims to test.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import ray  # noqa: F401  (a missing extra is a failure, not a skip)
from ray.cluster_utils import Cluster

from runner.dsn import parse_dsn
from tests.conftest import REPO, query, run_runner, started, table_oid, wait_until_writing

ACTOR_TITLE = "ray::RunnerWorker"


def runner_actors() -> list[psutil.Process]:
    """Processes that are (or were, while still alive) a RunnerWorker actor."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if ACTOR_TITLE in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _no_actor_left(timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not runner_actors():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def joined() -> Iterator[Cluster]:
    """One Ray head with 4 `runner` resources, shared by the module's runs (each joins it)."""
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 4, "resources": {"runner": 4}, "include_dashboard": False},
    )
    try:
        yield cluster
    finally:
        cluster.shutdown()


def _rows_match(doc: dict[str, Any], dsn: str) -> None:
    writes = doc["totals"]["by_op"].get("write", {}).get("ok", 0)
    assert query(dsn, "SELECT count(*) FROM runner.a") == doc["database"]["rows"]["a"]
    assert doc["database"]["rows"] == doc["database"]["expected_rows"] == {"a": 3 * writes, "b": 5 * writes}


def _ray_sessions() -> set[str]:
    """Session directories in Ray's temp dir (this test session's TMPDIR, which the runs inherit)."""
    return {p.name for p in (Path(tempfile.gettempdir()) / "ray").glob("session_*")}


@pytest.mark.system
def test_a_private_instance_runs_the_seed_and_leaves_nothing(dsn: str) -> None:
    sessions = _ray_sessions()
    result = run_runner("--cluster", "ray", "--procs", "2", "--ops", "2000", dsn=dsn, timeout=240)
    assert result.code == 0, result.stderr
    doc = result.doc  # stdout parsed as one JSON document: Ray's own lines never reached it
    assert doc is not None and doc["complete"] is True
    cluster = doc["cluster"]
    assert cluster["engine"] == "ray" and cluster["private"] is True and cluster["version"] == ray.__version__
    assert sum(len(n["workers"]) for n in cluster["nodes"]) == 2
    assert doc["totals"]["ok"] == 2000 and doc["totals"]["errors"] == 0
    assert all(w["node"] and w["host"] and w["status"] == "done" for w in doc["workers"])
    assert doc["hosts"][0]["workers"] == [0, 1]
    assert doc["totals"]["start_spread_ms"] is not None
    assert "Ray 2" in result.stderr and "private instance" in result.stderr
    _rows_match(doc, dsn)
    assert _no_actor_left()
    raylets = [p for p in psutil.process_iter(["name"]) if p.info["name"] in ("raylet", "gcs_server")]
    assert raylets == [] or all(p.ppid() != 1 for p in raylets)  # the private instance is gone
    assert _ray_sessions() == sessions  # nor its session directory (one per run was left)
    # Ray's own lines are not on stderr: "Token authentication is enabled..." was, at every run
    quiet = run_runner("--cluster", "ray", "--procs", "1", "--ops", "50", "--quiet", dsn=dsn, timeout=240)
    assert quiet.code == 0 and quiet.stderr == "", quiet.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--mode", "chunked", "--chunk", "8"],
        ["--mode", "window", "--chunk", "8", "--loop", "asyncio"],
        ["--rate", "300"],
        ["--mode", "sync", "--threads", "2"],
    ],
)
@pytest.mark.system
def test_every_mode_on_a_joined_cluster_matches_the_local_transport(joined: Cluster, dsn: str, args: list[str]) -> None:
    ops = ["--ops", "300"]
    local = run_runner(*args, *ops, "--procs", "2", "--seed", "7", "--quiet", dsn=dsn)
    remote = run_runner(*args, *ops, "--procs", "2", "--seed", "7", "--quiet", "--cluster", f"ray:{joined.address}", dsn=dsn)
    assert local.code == 0 and remote.code == 0, remote.stderr
    assert local.doc is not None and remote.doc is not None
    for key in ("ops", "ok", "errors", "not_started", "unknown", "unfinished"):
        assert remote.doc["totals"][key] == local.doc["totals"][key], key
    # The same seed gives the same op sequence on either transport.
    assert {k: v["ops"] for k, v in remote.doc["totals"]["by_op"].items()} == {k: v["ops"] for k, v in local.doc["totals"]["by_op"].items()}
    assert set(remote.doc) == set(local.doc) and set(remote.doc["totals"]) == set(local.doc["totals"])
    assert local.doc["cluster"] is None and remote.doc["cluster"]["private"] is False
    _rows_match(remote.doc, dsn)
    if "--loop" in args:  # Ray installs uvloop in its workers: the worker builds its loop itself
        assert {w["loop"] for w in remote.doc["workers"]} == {"asyncio.unix_events._UnixSelectorEventLoop"}
    elif "sync" not in args:
        assert {w["loop"] for w in remote.doc["workers"]} == {"uvloop.Loop"}


@pytest.mark.system
def test_records_stream_live_before_the_run_ends(joined: Cluster, dsn: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--cluster", f"ray:{joined.address}", "--procs", "2", "--duration", "3",
         "--interval", "0.5", "--jsonl", "--quiet", "--dsn", dsn],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    intervals = [line for line in lines if line["kind"] == "interval"]
    assert len(intervals) >= 4 and lines[-1]["kind"] == "result"
    assert sum(i["ops"] for i in intervals) == lines[-1]["totals"]["ops"]


@pytest.mark.system
def test_too_few_runner_resources_is_one_line(joined: Cluster, dsn: str) -> None:
    result = run_runner("--cluster", f"ray:{joined.address}", "--procs", "8", "--ops", "100", dsn=dsn, timeout=60)
    assert result.code == 2, result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "offers 4 `runner` resources" in line and "needs 8" in line
    assert _no_actor_left()


def _start(address: str, dsn: str, *args: str) -> subprocess.Popen[str]:
    before = table_oid(dsn)
    parent = started(subprocess.Popen(
        [sys.executable, "-m", "runner", "--cluster", f"ray:{address}", *args, "--dsn", dsn],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ))
    deadline = time.monotonic() + 60
    while len(runner_actors()) < int(args[args.index("--procs") + 1]) and time.monotonic() < deadline:
        time.sleep(0.2)
    wait_until_writing(dsn, before)  # measuring by now
    return parent


def _nothing_lost(doc: dict[str, Any], dsn: str) -> None:
    totals = doc["totals"]
    assert totals["ok"] + totals["errors"] + totals["not_started"] + totals["unknown"] + totals["unfinished"] == totals["planned_ops"]
    rows_a = query(dsn, "SELECT count(*) FROM runner.a")
    assert doc["database"]["rows"]["a"] == rows_a
    unreported = doc["database"]["unreported_rows"]  # a lost worker's last interval: whole writes
    assert unreported["a"] % 3 == 0 and unreported["b"] == unreported["a"] // 3 * 5
    assert 0 <= unreported["a"] // 3 <= totals["unknown"]


@pytest.mark.system
def test_a_killed_worker_is_lost_and_the_others_report(joined: Cluster, dsn: str) -> None:
    parent = _start(joined.address, dsn, "--procs", "2", "--ops", "1000000", "--quiet")
    victim = runner_actors()[0]
    victim.kill()
    stdout, stderr = parent.communicate(timeout=90)
    assert parent.returncode == 4, stderr
    doc = json.loads(stdout)
    assert doc["complete"] is False
    assert sorted(w["status"] for w in doc["workers"]) == ["lost", "stopped"]
    lost = next(w for w in doc["workers"] if w["status"] == "lost")
    assert "died" in lost["reason"].lower()
    assert all(node["alive"] for node in doc["cluster"]["nodes"])  # an actor died, not its host
    _nothing_lost(doc, dsn)
    assert _no_actor_left()


@pytest.mark.system
@pytest.mark.parametrize(("signum", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_driver_gives_partial_results_and_no_actor_left(joined: Cluster, dsn: str, signum: int, expected: int) -> None:
    parent = _start(joined.address, dsn, "--procs", "2", "--ops", "1000000", "--quiet")
    os.kill(parent.pid, signum)
    stdout, stderr = parent.communicate(timeout=90)
    assert parent.returncode == expected, stderr
    doc = json.loads(stdout)
    assert doc["complete"] is False and signal.Signals(signum).name in doc["stop_reason"]
    assert all(w["status"] == "stopped" for w in doc["workers"])
    _nothing_lost(doc, dsn)
    assert _no_actor_left()


@pytest.mark.system
def test_the_dsn_password_never_reaches_rays_job_table_or_logs(joined: Cluster, dsn: str) -> None:
    """Ray keeps each driver's command line as its job's entrypoint in the cluster's job table
    (`ray list jobs`, the dashboard) after the job ends: a --dsn there must be masked."""
    from ray._raylet import GcsClient

    secret = parse_dsn(dsn).password  # the session server's own (password authentication)
    assert secret
    # On the command line, as a user who did not read the README's advice would pass it.
    result = run_runner("--cluster", f"ray:{joined.address}", "--procs", "2", "--ops", "100", "--quiet", "--dsn", dsn)
    assert result.code == 0, result.stderr
    jobs = GcsClient(address=joined.address).get_all_job_info()
    entrypoints = [job.entrypoint for job in jobs.values()]
    assert any("--dsn" in entrypoint and "***" in entrypoint for entrypoint in entrypoints), entrypoints
    assert [str(job) for job in jobs.values() if secret in str(job)] == []
    session = Path(joined.head_node.get_session_dir_path())
    leaked = [p.name for p in session.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaked == []
    assert secret not in result.stdout + result.stderr


def _free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now: every port a second node on this machine would share with the first."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _ray_start(root: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    """`ray start ... --block` for one node with its own temp dir and ports (two nodes share this
    machine), in the foreground so the test owns it; its log in ROOT/NAME.log. The environment's
    RAY_AUTH_TOKEN is the cluster's (token authentication, as the README says)."""
    node_manager, object_manager, agent_http, agent_grpc, env_agent, metrics = _free_ports(6)
    command = [
        str(Path(sys.executable).parent / "ray"), "start", *args, "--block", "--node-ip-address=127.0.0.1",
        f"--temp-dir={root / name}", "--disable-usage-stats", "--num-cpus=1", '--resources={"runner": 1}',
        f"--node-manager-port={node_manager}", f"--object-manager-port={object_manager}",
        f"--dashboard-agent-listen-port={agent_http}", f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--runtime-env-agent-port={env_agent}", f"--metrics-export-port={metrics}",
    ]
    log = (root / f"{name}.log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive_nodes(address: str) -> int:
    probe = f"import ray; ray.init(address='{address}', logging_level='ERROR'); print(sum(n['Alive'] for n in ray.nodes()))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    return int(result.stdout.strip() or 0)


def _node_processes(temp_dir: Path) -> list[psutil.Process]:
    """A node's Ray processes (its temp dir on their command line) and all of their children."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if str(temp_dir) in " ".join(proc.info["cmdline"] or []):
                found[proc.pid] = proc
                found.update({child.pid: child for child in proc.children(recursive=True)})
        except psutil.Error:
            continue
    return list(found.values())


@pytest.mark.system
def test_a_node_stopped_mid_run_on_a_ray_start_cluster_loses_its_workers_and_keeps_the_rest(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `ray start` nodes on this machine, as a user starts them (the head carrying one worker,
    a joined node the other, one token for the cluster and the driver): the joined node is killed
    mid-run, its aggregator with it."""
    tmp_path = Path(tempfile.mkdtemp(prefix="ray-"))  # short: a node's socket paths must fit 107 bytes
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    port = _free_ports(1)[0]
    address = f"127.0.0.1:{port}"
    head = _ray_start(tmp_path, "head", "--head", f"--port={port}", "--include-dashboard=false")
    node: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 90
        while not _listening(port):  # the head's GCS: up before a node can join it
            assert time.monotonic() < deadline and head.poll() is None, (tmp_path / "head.log").read_text()
            time.sleep(0.5)
        node = _ray_start(tmp_path, "node", f"--address={address}")
        while _alive_nodes(address) < 2:
            assert time.monotonic() < deadline, (tmp_path / "node.log").read_text()
            time.sleep(1)
        parent = _start(address, dsn, "--procs", "2", "--ops", "1000000", "--interval", "0.5", "--quiet")
        time.sleep(3)  # six intervals: the node's aggregator has sent some of its workers' bins
        for proc in _node_processes(tmp_path / "node"):  # the host goes: every process of its node at once
            try:
                proc.kill()
            except psutil.Error:
                pass
        node.kill()
        stdout, stderr = parent.communicate(timeout=120)
        assert parent.returncode == 4, stderr
        doc = json.loads(stdout)
        assert doc["complete"] is False
        assert len({w["node"] for w in doc["workers"]}) == 2 and len(doc["cluster"]["nodes"]) == 2
        assert sorted(w["status"] for w in doc["workers"]) == ["lost", "stopped"]
        survivor = next(w for w in doc["workers"] if w["status"] == "stopped")
        lost = next(w for w in doc["workers"] if w["status"] == "lost")
        assert survivor["ok"] > 0 and lost["ok"] > 0  # both nodes' measured ops kept
        assert doc["totals"]["ok"] == sum(w["ok"] for w in doc["workers"]) == sum(op["ok"] for op in doc["totals"]["by_op"].values())
        _nothing_lost(doc, dsn)
        assert _no_actor_left()
        assert not [p for p in psutil.process_iter(["cmdline"]) if "ray::NodeAggregator" in " ".join(p.info["cmdline"] or [])]
    finally:
        for proc in (node, head):
            if proc is not None and proc.poll() is None:
                proc.terminate()  # `ray start --block` stops its node's processes on SIGTERM
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for proc in _node_processes(tmp_path):  # whatever of the two nodes is left: ours, by their temp dirs
            try:
                proc.kill()
            except psutil.Error:
                pass
    assert _node_processes(tmp_path) == []
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.system
def test_an_unreachable_head_is_one_line_within_seconds() -> None:
    """ray:127.0.0.1:1 was retried for 590 s with 45 lines of Ray's warnings."""
    result = run_runner("--cluster", "ray:127.0.0.1:1", "--ops", "10", timeout=30)
    assert result.code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "cannot join the Ray cluster at 127.0.0.1:1: Connection refused" in result.stderr
