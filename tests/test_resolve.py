"""Options -> resolve -> RunSpec: every valid combination resolves to a fixed point, survives the
wire to a worker, and can be changed and resolved again (runner.resolve, runner.spec).

Before the resolve step the options rewrote themselves while being built: `replace(config,
quiet=True)` of a config built with --stages raised, and a rate config could not be replaced back
to a closed mode."""

from __future__ import annotations

import dataclasses
import pickle
import textwrap
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from runner.concurrency import MODES, MODULES
from runner.errors import UsageError
from runner.resolve import resolve, spec
from runner.spec import Options, RunSpec
from runner.transport.plan import make_plans
from runner.transport.pools import plan_pools

STAGES = {
    "rate": ((("ramp", 2.0, 50.0), ("hold", 2.0, 50.0)), "rate"),
    "concurrency": ((("hold", 2.0, 4.0),), "concurrency"),
    "none": ((), None),
}

@st.composite
def options(draw: st.DrawFn) -> Options:
    """Option combinations, mostly valid ones (the rules refuse the rest, and those are skipped)."""
    stages, stage_kind = draw(st.sampled_from(list(STAGES.values())))
    mode = draw(st.sampled_from(list(MODES)))
    rate = draw(st.sampled_from([None, 40.0])) if mode in ("chunked", "open") and not stages else None
    mode = "open" if mode == "open" and rate is None and not stages else mode
    bound = {} if stages else draw(st.sampled_from([{"ops": 100}, {"ops": 4}, {"duration_s": 2.0}, {}]))
    is_async = MODES["open" if rate else mode].is_async
    return Options(
        procs=draw(st.integers(1, 4)),
        chunk=draw(st.integers(1, 50)),
        threads=draw(st.integers(1, 8)),
        mode="chunked" if stages else mode,
        rate_per_s=rate,
        stages=stages,
        stage_kind=stage_kind,
        max_inflight=draw(st.sampled_from([None, 10])) if rate else None,
        layer=draw(st.sampled_from(["orm", "core", "raw"])),
        driver=draw(st.sampled_from([None, *(["asyncpg", "psycopg"] if is_async else ["psycopg2", "psycopg"])])),
        prepare=draw(st.sampled_from(["auto", "never", "always"])),
        statement_cache=draw(st.booleans()),
        think_s=draw(st.sampled_from([0.0, 0.01])),
        keys=draw(st.sampled_from(["uniform", "zipf", "hot:0.1:0.9"])),
        seed=draw(st.sampled_from([None, 7])),
        quiet=draw(st.booleans()),
        warmup_ops=draw(st.sampled_from([0, 8])),
        exemplars=draw(st.sampled_from([0, 2])),
        retries=draw(st.sampled_from([0, 2])),
        checks=draw(st.sampled_from([(), ("read.p99 < 50ms",)])),
        **bound,
    )


def _resolved(o: Options) -> RunSpec:
    try:
        return resolve(o)
    except UsageError:
        assume(False)
        raise


@settings(max_examples=150, deadline=None)
@given(options())
def test_resolving_a_spec_again_gives_the_same_spec(o: Options) -> None:
    resolved = _resolved(o)
    assert resolve(resolved) == resolved
    assert resolved.replace() == resolved  # resolved again from what was asked, seed kept
    assert resolved.asked == o and not isinstance(resolved.asked, RunSpec)
    assert resolved.seed is not None and resolved.ops is not None or resolved.duration_s is not None


@settings(max_examples=150, deadline=None)
@given(options())
def test_every_spec_can_be_changed_and_resolved_again(o: Options) -> None:
    resolved = _resolved(o)
    quiet = resolved.replace(quiet=not resolved.quiet)
    assert quiet.quiet is not resolved.quiet
    assert dataclasses.replace(quiet, quiet=resolved.quiet) == resolved  # a field no rule reads
    if not resolved.stages:  # a capacity step: the open loop at a rate, for a while (capacity sets these)
        step = resolved.replace(rate_per_s=80.0, duration_s=1.0, ops=None, warmup_ops=0, mode="chunked", think_s=0.0, driver=None)
        assert MODES[step.mode].takes_rate and step.rate_per_s == 80.0 and step.seed == resolved.seed


@settings(max_examples=100, deadline=None)
@given(options())
def test_every_spec_round_trips_through_the_wire_to_a_worker(o: Options) -> None:
    resolved = _resolved(o)
    plans = make_plans(resolved, "postgresql://u:secret@h/db", [1] * resolved.procs, {"statement_timeout": "5"}, {"a": 10})
    for plan in plans:
        assert pickle.loads(pickle.dumps(plan)) == plan  # the spawn start method pickles the plan
        assert pickle.loads(pickle.dumps(plan)).config.asked == o


def test_resolving_is_a_function_of_its_arguments() -> None:
    asked = Options(procs=2, ops=10)
    assert resolve(asked, draw=lambda: 42) == resolve(asked, draw=lambda: 42)
    assert resolve(asked, draw=lambda: 42).seed == 42
    assert resolve(asked, draw=lambda: 42) != resolve(asked, draw=lambda: 43)
    assert asked.seed is None and asked.ops == 10  # building and resolving change nothing asked


def test_a_staged_spec_can_be_replaced() -> None:
    staged = spec(stages=(("hold", 2.0, 50.0),), stage_kind="rate")
    assert (staged.mode, staged.duration_s, staged.rate_per_s) == ("open", 2.0, 50.0)
    quiet = staged.replace(quiet=True)
    assert quiet.quiet and (quiet.mode, quiet.duration_s, quiet.rate_per_s) == ("open", 2.0, 50.0)
    assert staged.asked is not None and staged.asked.duration_s is None  # what was asked is kept apart


def test_a_rate_spec_can_be_replaced_back_to_a_closed_mode() -> None:
    open_loop = spec(rate_per_s=100.0, duration_s=2.0)
    assert open_loop.mode == "open" and open_loop.inflight_cap > 0
    closed = open_loop.replace(rate_per_s=None)
    assert closed.mode == "chunked" and closed.rate_per_s is None and closed.inflight_cap == 0
    assert closed.seed == open_loop.seed


def test_contradictions_are_still_refused_by_name() -> None:
    with pytest.raises(UsageError, match="--stages sets the run's length"):
        spec(stages=(("hold", 2.0, 50.0),), stage_kind="rate", duration_s=3.0)
    with pytest.raises(UsageError, match="--rate runs its own open-loop schedule"):
        spec(rate_per_s=10.0, mode="window")
    assert spec(rate_per_s=10.0, mode="sync").mode == "sync-open"  # the sync open loop
    assert spec(stages=(("hold", 2.0, 50.0),), stage_kind="rate", mode="sync").mode == "sync-open"
    with pytest.raises(UsageError, match="--duration needs a mode that issues ops as it goes"):
        spec(mode="async", duration_s=2.0)
    with pytest.raises(UsageError, match="--think pauses a lane"):
        spec(mode="async", think_s=0.1)


def test_a_new_mode_is_one_module_and_one_registry_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What adding a mode takes: its module (a MODE) and its line in MODULES. The rules, the pools
    and the report ask its capabilities; no list of mode names elsewhere needs it."""
    (tmp_path / "lockstep.py").write_text(textwrap.dedent('''
        """lockstep: chunks of --chunk, like chunked (a mode made for this test)."""
        from runner.concurrency.chunked import issue
        from runner.concurrency.mode import Mode

        MODE = Mode(name="lockstep", description="chunks of --chunk", is_async=True, issue=issue, width="chunk")
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(MODULES, "lockstep", "lockstep")
    resolved = spec(mode="lockstep", chunk=3, procs=2, ops=10, think_s=0.01)
    assert resolved.mode == "lockstep" and resolved.worker_driver == "asyncpg" and "lockstep" in MODES
    assert plan_pools(resolved, budget=100).sizes == [3, 3]
    with pytest.raises(UsageError, match="--rate runs its own open-loop schedule"):
        spec(mode="lockstep", rate_per_s=10.0)
    from runner.analysis.report import scenario_name

    assert scenario_name(resolved.to_report()) == "lockstep K=3 procs=2"


def test_only_runs_the_ops_named_and_refuses_an_unknown_one() -> None:
    resolved = spec(workload="seed", only=("read",))
    assert [op.name for op in resolved.workload_ops.ops] == ["read"]
    with pytest.raises(UsageError, match="--only: workload 'seed' has no op 'feed' \\(its ops: read, write\\)"):
        spec(workload="seed", only=("feed",))
