"""bench/cluster.py's in-process parts still run against today's wire (a bench that stopped running
once hid a 9x cost for a session: #35): a smoke size, asserting only that they run and say something."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.system
def test_the_collector_feeds_run_and_emit_their_json() -> None:
    result = subprocess.run(
        [sys.executable, "bench/cluster.py", "--skip-transports", "--collector-workers", "20", "--collector-seconds", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    collector = json.loads(result.stdout)["collector"]
    assert collector["records"] == 40 and collector["share_of_one_core"].endswith("%")


def test_the_merged_feed_runs_through_the_aggregators_merge() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import cluster  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(REPO / "bench"))
    out = cluster.collector_merged(workers=5, nodes=3, seconds=2)
    assert out["workers"] == 15 and out["merged_records"] == 6 and out["collector_share_of_one_core"].endswith("%")
