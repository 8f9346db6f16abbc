"""--stages: the open loop's rate and window mode's ops in flight follow steps, reported per step."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.concurrency.stages import next_arrival, offered_ops, parse_stages, target_at
from runner.errors import UsageError
from tests.conftest import run_runner

NAPPER = """
from sqlalchemy import MetaData, text
from workloads import SCHEMA, Op, Workload, register

async def nap(handle, rng):
    async with handle.engine.connect() as conn:
        await conn.execute(text("SELECT pg_sleep(0.02)"))

def nap_sync(handle, rng):
    with handle.engine.connect() as conn:
        conn.execute(text("SELECT pg_sleep(0.02)"))

register(Workload("napper", "each op sleeps 20 ms on the server", MetaData(schema=SCHEMA), (Op("nap", "read", 1.0, (nap, nap_sync)),)))
"""


def test_steps_parse_and_ramps_are_linear() -> None:
    kind, stages = parse_stages("30s:100/s,ramp:1m:400/s,500ms:100/s")
    assert kind == "rate" and stages == (("hold", 30.0, 100.0), ("ramp", 60.0, 400.0), ("hold", 0.5, 100.0))
    assert target_at(stages, 10) == 100 and target_at(stages, 60) == 250 and target_at(stages, 90.2) == 100
    assert offered_ops(stages) == 3000 + 15000 + 50
    assert parse_stages("30s:10,30s:40") == ("concurrency", (("hold", 30.0, 10.0), ("hold", 30.0, 40.0)))


def test_arrivals_follow_the_area_under_the_rate() -> None:
    _, ramp = parse_stages("ramp:2s:100/s")
    t, count = 0.0, 0
    while (following := next_arrival(ramp, t, 1.0, 1.0)) is not None:
        t, count = following, count + 1
    assert count == 100  # the area under a ramp from 0 to 100/s over 2 s
    assert next_arrival(ramp, 0.0, 1.0, 1.0) == pytest.approx((2 / 50) ** 0.5)  # 25 t^2 = 1
    _, hold = parse_stages("1s:10/s")
    assert next_arrival(hold, 0.25, 1.0, 0.5) == pytest.approx(0.45)  # half the rate: a 0.2 s gap


@pytest.mark.parametrize(
    ("text", "message"),
    [("30:100/s", "is not a step"), ("30s:100/s,30s:10", "not both"), ("30s:2.5", "whole number"), ("30s:0/s", "above 0/s"),
     ("0s:10", "lasts no time")],
)
def test_a_bad_step_is_named(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_stages(text)


@pytest.mark.system
def test_the_open_loop_follows_rate_steps_and_ramps(dsn: str) -> None:
    result = run_runner("--stages", "1.5s:40/s,ramp:1s:200/s,1.5s:160/s", "--procs", "2", "--interval", "0.5", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None and doc["config"]["mode"] == "open" and doc["config"]["duration_s"] == 4.0
    assert doc["totals"]["schedule"]["offered_ops"] == 60 + 120 + 240
    stages = doc["stages"]
    assert [s["target"] for s in stages] == [40, 200, 160] and [s["kind"] for s in stages] == ["hold", "ramp", "hold"]
    assert stages[0]["ops_per_s"] == pytest.approx(40, rel=0.3)
    assert stages[2]["ops_per_s"] == pytest.approx(160, rel=0.3)
    assert stages[1]["ops"] == pytest.approx(120, rel=0.35)  # the area under 40 -> 200/s over 1 s
    assert {e["stage"] for e in doc["timeline"]} == {0, 1, 2}
    assert sum(s["ops"] for s in stages) == doc["totals"]["ops"]


@pytest.mark.system
def test_window_mode_follows_ops_in_flight(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "napper.py"
    path.write_text(NAPPER)
    result = run_runner("--workload", str(path), "--stages", "1.5s:1,1.5s:4", "--interval", "0.5", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None and doc["config"]["mode"] == "window" and doc["config"]["chunk"] == 4
    one, four = doc["stages"]
    assert four["ops_per_s"] / one["ops_per_s"] == pytest.approx(4, rel=0.3)  # each op sleeps 20 ms: rate follows width
    # Checked out at each interval's end: 1 inside the first step, 4 in the second.
    first = [e["pool_checked_out"] for e in doc["timeline"] if e["ops"] and e["elapsed_s"] < 1.4]
    second = [e["pool_checked_out"] for e in doc["timeline"] if e["stage"] == 1]
    assert first and max(first) <= 1 and max(second) >= 3


@pytest.mark.system
def test_stages_set_the_length_themselves(dsn: str) -> None:
    result = run_runner("--stages", "1s:10/s", "--duration", "5", dsn=dsn)
    assert result.code == 2 and "--stages sets the run's length" in result.stderr


def test_the_plots_mark_where_steps_begin() -> None:
    from runner.analysis.plots import stage_boundaries

    doc = {"stages": [{"start_s": 0.0}, {"start_s": 30.0}, {"start_s": 90.0}]}
    assert stage_boundaries(doc) == [30.0, 90.0] and stage_boundaries({"stages": None}) == []
