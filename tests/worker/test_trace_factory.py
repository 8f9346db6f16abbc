"""What each op is traced with, per layer: the raw layer's light trace reads like a full one."""

from __future__ import annotations

from runner.measure.anatomy import Anatomy
from runner.resolve import spec
from runner.worker.anatomy import CURRENT, NO_OP, UNWAITED, OpCell, OpTrace, PoolTrace, pool_wait, trace_factory


def test_a_raw_op_gets_a_pool_only_trace_that_anatomy_reads_as_no_statements() -> None:
    new_trace = trace_factory(spec(layer="raw"))
    unwaited = new_trace()
    assert unwaited is UNWAITED and new_trace() is UNWAITED  # shared until an op waits
    cell = OpCell()
    token = CURRENT.set(cell)
    try:
        assert pool_wait(lambda: "conn") == "conn"  # between ops: nothing to add it to
        cell.trace = new_trace()
        assert pool_wait(lambda: "conn") == "conn"
        trace = cell.trace
        assert pool_wait(lambda: "conn") == "conn"  # a second wait in the same op: added to it
    finally:
        CURRENT.reset(token)
    assert type(trace) is PoolTrace and trace is cell.trace and trace is not UNWAITED
    assert trace.pool_wait_ns > 0 and UNWAITED.pool_wait_ns == 0 and NO_OP.trace is None
    anatomy = Anatomy()
    anatomy.record(trace, 5_000_000)
    assert (anatomy.ops, anatomy.statements, anatomy.rows, anatomy.db_timed) == (1, 0, 0, False)
    assert anatomy.hists["pool_wait"].count == 1


def test_other_layers_keep_the_full_trace() -> None:
    core = trace_factory(spec(layer="core"))()
    assert type(core) is OpTrace and core.texts == {} and core.calls is None
    kept = trace_factory(spec(layer="orm", exemplars=3))()
    assert type(kept) is OpTrace and kept.texts == {} and kept.calls == []
    assert trace_factory(spec(layer="raw", anatomy=False))() is None
