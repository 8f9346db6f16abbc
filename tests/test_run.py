"""Whole runs against the real server: every mode, 1 and 2 procs, counts that add up."""

from __future__ import annotations

from typing import Any

import pytest

from runner.dsn import parse_dsn
from tests.conftest import query, run_cli, run_runner

OPS = 240


def _get(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for key in path.strip(".").split("."):
        assert isinstance(node, dict) and key in node, f"missing {path}"
        node = node[key]
    return node


DOCUMENTED_PATHS = [
    ".schema_version",
    ".config",
    ".config.dsn",
    ".environment.python",
    ".environment.sqlalchemy",
    ".environment.asyncpg",
    ".environment.psycopg2",
    ".environment.uvloop",
    ".environment.cpu_count",
    ".server.version",
    ".server.settings.max_connections",
    ".server.settings.shared_buffers",
    ".server.settings.fsync",
    ".server.settings.synchronous_commit",
    ".server.settings.plan_cache_mode",
    ".totals.ops",
    ".totals.ok",
    ".totals.errors",
    ".totals.wall_s",
    ".totals.ops_per_s",
    ".totals.by_op.read.ops",
    ".totals.by_op.write.ops",
    ".totals.connections.server_peak",
]


@pytest.mark.parametrize(
    ("mode", "extra"),
    [
        ("chunked", ["--chunk", "8"]),
        ("window", ["--chunk", "8"]),
        ("async", []),
        ("sync", ["--threads", "1"]),
        ("sync", ["--threads", "3"]),
    ],
)
@pytest.mark.system
@pytest.mark.parametrize("procs", [1, 2])
def test_every_mode_counts_add_up_and_match_the_rows(dsn: str, mode: str, extra: list[str], procs: int) -> None:
    result = run_runner("--mode", mode, "--procs", str(procs), "--ops", str(OPS), "--quiet", *extra, dsn=dsn)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None and doc["complete"] is True
    totals = doc["totals"]
    assert totals["ops"] == totals["ok"] == OPS and totals["errors"] == 0 and totals["not_started"] == 0
    assert totals["by_op"]["read"]["ops"] + totals["by_op"]["write"]["ops"] == OPS
    assert sum(w["ops"] for w in doc["workers"]) == OPS and len(doc["workers"]) == procs
    assert all(w["status"] == "done" and w["exitcode"] == 0 for w in doc["workers"])
    writes = totals["by_op"]["write"]["ok"]
    assert query(dsn, "SELECT count(*) FROM runner.a") == 3 * writes
    assert query(dsn, "SELECT count(*) FROM runner.b") == 5 * writes
    assert doc["database"]["rows"] == doc["database"]["expected_rows"] == {"a": 3 * writes, "b": 5 * writes}
    assert totals["wall_s"] > 0 and totals["ops_per_s"] > 0
    assert totals["connections"]["server_peak"] >= 1
    lat = totals["by_op"]["read"]["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]


@pytest.mark.system
def test_documented_jq_paths_exist_and_password_is_masked(dsn: str, tmp_path: Any) -> None:
    out = tmp_path / "run.json"
    password = parse_dsn(dsn).password  # the embedded server's own, drawn for this session
    result = run_runner("--procs", "2", "--chunk", "10", "--ops", "200", "--output", str(out), "--debug", dsn=dsn)
    assert result.code == 0, result.stderr
    assert result.doc is not None
    # --debug: each step of the parent's and of every worker's, in the order they happen
    debug_lines = [line for line in result.stderr.splitlines() if line.startswith("runner: debug:")]
    assert all(" runner.transport.supervisor: " in line or " runner.worker.body: " in line for line in debug_lines)  # no line per op
    debug = [line.split(": ", 3)[-1] for line in debug_lines]
    assert "start: 2 workers" in debug and "release: all 2 workers ready" in debug
    for worker in (0, 1):
        steps = [line for line in debug if line.startswith(f"worker {worker}: ")]
        assert [s.split(" (")[0] for s in steps] == [f"worker {worker}: preflight", f"worker {worker}: ready, waiting for the release",
                                                    f"worker {worker}: released", f"worker {worker}: final"], steps
    for path in DOCUMENTED_PATHS:
        _get(result.doc, path)
    assert password and password not in result.stdout + result.stderr + out.read_text()
    assert "***" in result.doc["config"]["dsn"]
    assert out.read_text() == result.stdout  # --output gets the same document
    assert "ops/s" in result.stderr and "peak conns" in result.stderr  # the human table


@pytest.mark.system
def test_chunked_peak_connections_follow_the_chunk(dsn: str) -> None:
    result = run_runner("--procs", "2", "--chunk", "6", "--ops", "300", "--quiet", dsn=dsn)
    assert result.doc is not None
    peak = result.doc["totals"]["connections"]["server_peak"]
    assert 1 <= peak <= 2 * 6  # never more than procs x chunk connections
    assert result.doc["totals"]["connections"]["pool_size_per_worker"] == [6, 6]
    series = result.doc["totals"]["connections"]["series"]
    assert series and [t for t, _ in series] == sorted(t for t, _ in series) and series[0][0] >= 0
    assert max(total for _, total in series) <= peak


@pytest.mark.system
def test_same_seed_same_op_sequence(dsn: str) -> None:
    runs = [run_runner("--procs", "2", "--ops", "150", "--seed", "42", "--quiet", dsn=dsn) for _ in range(2)]
    other = run_runner("--procs", "2", "--ops", "150", "--seed", "43", "--quiet", dsn=dsn)

    def reads_per_worker(doc: dict[str, Any] | None) -> list[int]:
        assert doc is not None
        return [doc["totals"]["by_op"]["read"]["ops"], doc["config"]["seed"]]

    assert reads_per_worker(runs[0].doc) == reads_per_worker(runs[1].doc)
    assert runs[0].doc["config"]["seed"] != other.doc["config"]["seed"]  # type: ignore[index]


@pytest.mark.system
def test_read_ratio_extremes(dsn: str) -> None:
    reads = run_runner("--ops", "60", "--read-ratio", "1", "--quiet", dsn=dsn).doc
    assert reads is not None and reads["totals"]["by_op"]["read"]["ops"] == 60
    assert "write" not in reads["totals"]["by_op"]
    assert query(dsn, "SELECT count(*) FROM runner.a") == 0


@pytest.mark.system
def test_asyncio_loop_runs_the_same_workload(dsn: str) -> None:
    result = run_runner("--loop", "asyncio", "--ops", "120", "--quiet", dsn=dsn)
    assert result.code == 0 and result.doc is not None
    assert result.doc["config"]["loop"] == "asyncio"
    assert result.doc["totals"]["ok"] == 120


@pytest.mark.system
def test_warmup_is_kept_apart_and_timeline_has_intervals(dsn: str) -> None:
    result = run_runner("--ops", "400", "--warmup", "60", "--procs", "2", "--interval", "0.2", "--quiet", dsn=dsn)
    assert result.code == 0 and result.doc is not None
    doc = result.doc
    assert doc["warmup"]["ops"] == 60 and doc["totals"]["ops"] == 400
    # The database holds warm-up writes too, and the report accounts for them.
    warm_writes = doc["warmup"]["by_op"].get("write", {}).get("ok", 0)
    writes = doc["totals"]["by_op"]["write"]["ok"]
    assert doc["database"]["rows"]["a"] == 3 * (writes + warm_writes)
    # ... but the server's measured counters do not: warm-up stats are flushed before the barrier.
    assert doc["server"]["stats"]["tables"]["a"]["n_tup_ins"] == 3 * writes
    timeline = doc["timeline"]
    assert len(timeline) >= 1
    assert sum(entry["ops"] for entry in timeline) == 400
    assert [e["elapsed_s"] for e in timeline] == sorted(e["elapsed_s"] for e in timeline)
    assert max(e["server_connections"]["total"] for e in timeline) <= doc["totals"]["connections"]["server_peak"]


@pytest.mark.system
def test_duration_bounds_the_run(dsn: str) -> None:
    result = run_runner("--duration", "2", "--mode", "sync", "--quiet", dsn=dsn)
    assert result.code == 0 and result.doc is not None
    totals = result.doc["totals"]
    assert totals["limit"] == "duration" and totals["planned_ops"] is None
    assert 1.9 <= totals["wall_s"] <= 3.5  # stops issuing at the deadline; the last op finishes
    assert totals["ok"] > 0 and totals["not_started"] == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--duration", "2", "--ops", "10"], "exclusive"),
        (["--duration", "2", "--mode", "async"], "--duration"),
        (["--duration", "0"], "--duration"),
        (["--warmup", "lots"], "--warmup"),
    ],
)
def test_bad_duration_and_warmup(args: list[str], needle: str) -> None:
    result = run_cli(*args)
    assert result.code == 2 and needle in result.stderr and result.stderr.count("\n") == 1


ANALYZE_ROWS = 20  # pg_statistic rows a few first ANALYZEs can add; a doubled count adds hundreds


@pytest.mark.system
def test_server_stats_insert_counts_match_the_writes(dsn: str) -> None:
    result = run_runner("--ops", "300", "--procs", "2", dsn=dsn)
    assert result.code == 0 and result.doc is not None
    doc = result.doc
    writes = doc["totals"]["by_op"]["write"]["ok"]
    stats = doc["server"]["stats"]
    assert stats["tables"]["a"]["n_tup_ins"] == 3 * writes
    assert stats["tables"]["b"]["n_tup_ins"] == 5 * writes
    # The database's count also takes catalog rows: autovacuum's first ANALYZE of a table inserts
    # one pg_statistic row per column, whenever it happens to run (CI saw 1193 for 8 x 149).
    assert 8 * writes <= stats["database"]["tup_inserted"] <= 8 * writes + ANALYZE_ROWS
    assert stats["tables"]["b"]["seq_scan"] > 0  # no index on b.a_id: every read scans b
    assert stats["cpu_s"] is None  # --dsn: the server's processes are not ours to measure
    assert "seq-scanned" in result.stderr
    assert "runner: debug:" not in result.stderr  # only with --debug
    client = doc["client"]
    assert client["workers_cpu_s"] > 0 and client["cpu_s"] >= client["workers_cpu_s"]


@pytest.mark.system
def test_jsonl_streams_intervals_then_the_document(dsn: str) -> None:
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    proc = subprocess.run(
        [sys.executable, "-m", "runner", "--duration", "2.2", "--interval", "0.5", "--jsonl", "--quiet", "--dsn", dsn],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    intervals, result = lines[:-1], lines[-1]
    assert result["kind"] == "result" and result["totals"]["limit"] == "duration"
    assert len(intervals) >= 3 and all(line["kind"] == "interval" for line in intervals)
    assert sum(line["ops"] for line in intervals) == result["totals"]["ops"]
    assert len(result["timeline"]) == len(intervals)
    # The first entry is the first interval (not an empty bin before it), and no entry's rate is a
    # whole interval's ops over a timer's lateness (it was 7,500-84,000 ops/s in every run).
    first = result["timeline"][0]
    assert first["ops"] > 0 and 0.5 <= first["elapsed_s"] < 1.0
    assert all(entry["ops_per_s"] <= 3 * result["totals"]["ops_per_s"] for entry in result["timeline"]), result["timeline"]


@pytest.mark.system
def test_a_terminal_gets_a_live_progress_line(dsn: str) -> None:
    """Run under a pseudo-terminal: stderr is a TTY, so the progress line appears."""
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import REPO

    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "--duration", "3", "--dsn", dsn],
        cwd=REPO, stdout=subprocess.PIPE, stderr=child_fd, text=True,
    )
    os.close(child_fd)
    seen = b""
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    stdout, _ = proc.communicate(timeout=60)
    os.close(main_fd)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0
    assert "\r" in text and "ops/s" in text and "ETA" in text and "/3 s" in text
    doc = __import__("json").loads(stdout)
    assert 2 <= len(doc["timeline"]) <= 4  # ~one entry per second
    for entry in doc["timeline"]:
        assert entry["server_connections"]["total"] >= 0


def test_interval_has_a_documented_minimum() -> None:
    result = run_cli("--interval", "0.001", "--ops", "10")
    assert result.code == 2 and "--interval must be at least 0.1" in result.stderr


@pytest.mark.system
def test_a_slow_start_is_said_on_stderr(dsn: str) -> None:
    result = run_runner("--ops", "40", "--procs", "2", "--warmup", "3s", dsn=dsn)
    assert result.code == 0, result.stderr
    assert "starting workers:" in result.stderr and "of 2 ready" in result.stderr


@pytest.mark.system
def test_only_runs_the_ops_it_names(dsn: str) -> None:
    result = run_runner("--only", "read", "--ops", "100", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    assert result.doc is not None and list(result.doc["totals"]["by_op"]) == ["read"] and result.doc["totals"]["ok"] == 100
    assert result.doc["config"]["only"] == ["read"] and result.doc["database"]["rows"] == result.doc["database"]["expected_rows"]
