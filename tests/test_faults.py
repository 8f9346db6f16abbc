"""Faults in the middle of a run: nothing lost, nothing hangs, documented exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psutil
import pytest

from tests.conftest import REPO, query, wait_for_workers

LONG_RUN = ["--ops", "1000000", "--quiet"]


def _start(dsn: str, *args: str) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    parent = subprocess.Popen(
        [sys.executable, "-m", "runner", *args, "--dsn", dsn],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    procs = int(args[args.index("--procs") + 1]) if "--procs" in args else 1
    workers = wait_for_workers(parent.pid, procs)
    time.sleep(2.0)  # measuring by now
    return parent, workers


def _finish(parent: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    stdout, stderr = parent.communicate(timeout=60)
    return parent.returncode, json.loads(stdout), stderr


def _nothing_lost(doc: dict[str, Any], dsn: str) -> None:
    totals = doc["totals"]
    assert totals["ok"] + totals["errors"] + totals["not_started"] + totals["unknown"] == totals["planned_ops"]
    writes = totals["by_op"].get("write", {}).get("ok", 0)
    assert writes > 0
    rows_a = query(dsn, "SELECT count(*) FROM runner.a")
    assert doc["database"]["rows"]["a"] == rows_a
    if totals["unknown"] == 0:  # every worker reported everything it did
        assert rows_a == 3 * writes
        assert doc["database"]["rows"] == doc["database"]["expected_rows"]
    else:  # a killed worker committed writes it could not report: whole writes, no more than it had
        unreported = doc["database"]["unreported_rows"]
        assert unreported["a"] % 3 == 0 and unreported["b"] == unreported["a"] // 3 * 5
        assert 0 <= unreported["a"] // 3 <= totals["unknown"]


def test_a_killed_worker_ends_the_run_with_partial_results(dsn: str) -> None:
    parent, workers = _start(dsn, "--procs", "2", *LONG_RUN)
    os.kill(workers[0].pid, signal.SIGKILL)
    code, doc, stderr = _finish(parent)
    assert code == 4, stderr
    assert doc["complete"] is False
    statuses = sorted(w["status"] for w in doc["workers"])
    assert statuses == ["died", "stopped"]
    assert "INCOMPLETE" in stderr and "Traceback" not in stderr
    _nothing_lost(doc, dsn)


@pytest.mark.parametrize(("signum", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_to_the_parent_prints_partial_results(dsn: str, signum: int, expected: int) -> None:
    parent, workers = _start(dsn, "--procs", "2", *LONG_RUN)
    os.kill(parent.pid, signum)
    code, doc, stderr = _finish(parent)
    assert code == expected, stderr
    assert doc["complete"] is False
    assert signal.Signals(signum).name in doc["stop_reason"]
    assert all(w["status"] == "stopped" for w in doc["workers"])
    _nothing_lost(doc, dsn)
    psutil.wait_procs(workers, timeout=10)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
