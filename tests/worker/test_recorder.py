"""The recorder keeps one message per error class, shortened and without the password."""

from __future__ import annotations

from runner.worker.recorder import SAMPLE_CHARS, Recorder


def test_error_samples_keep_the_first_message_without_the_password() -> None:
    recorder = Recorder(secrets=("hunter22",))
    recorder.record("read", 1, ConnectionError("password authentication failed: hunter22 rejected"))
    recorder.record("read", 1, ConnectionError("a second message of the same class"))
    recorder.record("read", 1, TimeoutError("x" * 1000))
    delta = recorder.take()["read"]
    assert delta["errors"] == {"ConnectionError": 2, "TimeoutError": 1}
    assert delta["error_samples"]["ConnectionError"] == "password authentication failed: *** rejected"
    assert len(delta["error_samples"]["TimeoutError"]) == SAMPLE_CHARS
    assert recorder.take() == {}  # an interval's deltas are taken once


def test_unfinished_ops_are_counted_apart() -> None:
    recorder = Recorder()
    recorder.unfinished("write")
    recorder.record("write", 5, None)
    delta = recorder.take()["write"]
    assert (delta["ok"], delta["unfinished"], delta["errors"]) == (1, 1, {})
