"""A worker's status is one of a closed set, its own value in JSON and in messages."""

from __future__ import annotations

import json

import orjson
import pytest

from runner.measure.records import WIRE_VERSION, WireError, decode, encode
from runner.measure.status import WorkerStatus


def test_a_status_is_its_value_in_json_and_in_messages() -> None:
    assert json.dumps({"status": WorkerStatus.DONE}) == '{"status": "done"}'
    assert orjson.loads(orjson.dumps({"status": WorkerStatus.LOST})) == {"status": "lost"}
    assert f"worker 0 {WorkerStatus.FAILED}" == "worker 0 failed" and str(WorkerStatus.DIED) == "died"
    assert WorkerStatus.DONE == "done" and WorkerStatus("unresponsive") is WorkerStatus.UNRESPONSIVE


def test_the_kinds_of_end_partition_the_statuses() -> None:
    unfinished = {s for s in WorkerStatus if not s.finished}
    assert unfinished == {WorkerStatus.STARTING, WorkerStatus.READY}
    assert {s for s in WorkerStatus if s.vanished} == {WorkerStatus.DIED, WorkerStatus.LOST, WorkerStatus.UNRESPONSIVE}
    assert {s for s in WorkerStatus if s.ends_the_run} == {WorkerStatus.FAILED, WorkerStatus.DIED, WorkerStatus.LOST, WorkerStatus.UNRESPONSIVE}
    assert not (unfinished & {s for s in WorkerStatus if s.vanished or s.ends_the_run})


def _final(status: str) -> bytes:
    return encode({"v": WIRE_VERSION, "kind": "final", "worker": 0, "seq": 3, "status": status, "reason": None, "end_ns": 0,  # type: ignore[typeddict-item]
                   "cpu_user_s": 0.0, "cpu_sys_s": 0.0, "cpu_measured_s": 0.0, "max_rss_kb": 0, "exemplars": {}})


def test_a_worker_can_only_say_it_ended_in_its_own_ways() -> None:
    for status in ("done", "stopped", "failed", "refused"):
        assert decode(_final(status))["status"] == status
    for status in ("died", "lost", "ready", "finished"):  # the parent's to decide, or nothing at all
        with pytest.raises(WireError, match="unknown final status"):
            decode(_final(status))
