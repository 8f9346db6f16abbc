from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.measure.records import WIRE_VERSION, WireError, decode, encode


@given(
    worker=st.integers(0, 512),
    seq=st.integers(0, 10**6),
    ok=st.integers(0, 10**9),
    errors=st.dictionaries(st.text(min_size=1, max_size=20), st.integers(0, 10**6), max_size=3),
)
def test_interval_round_trips(worker: int, seq: int, ok: int, errors: dict[str, int]) -> None:
    record = {
        "v": WIRE_VERSION,
        "kind": "interval",
        "worker": worker,
        "seq": seq,
        "phase": "measure",
        "t_ns": 123,
        "ops": {"read": {"ok": ok, "errors": errors, "hist": {}}},
        "pool_checked_out": 3,
    }
    line = encode(record)  # type: ignore[arg-type]
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode(line) == record


@pytest.mark.parametrize(
    "line",
    [b"not json", b"[]", b'{"v": 999, "kind": "start"}', b'{"v": %d, "kind": "nope"}' % WIRE_VERSION],
)
def test_decode_rejects_what_is_not_a_record(line: bytes) -> None:
    with pytest.raises(WireError):
        decode(line)
