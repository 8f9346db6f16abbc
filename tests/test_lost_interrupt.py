"""A Ctrl-C that lands inside a callback Python calls for itself is kept and acted on, never
printed as "Exception ignored ... KeyboardInterrupt" and then forgotten (seen in CI: a Ctrl-C at
0.2 s, inside an import's module-lock weakref callback, printed a traceback and the run went on)."""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
import weakref
from collections.abc import Iterator

import pytest

from runner import lost_interrupt
from runner.run import _signals


class _Target:
    pass


def _interrupt_in_a_callback() -> None:
    """What SIGINT does when it lands in a weakref callback: the exception cannot propagate."""

    def callback(_ref: object) -> None:
        raise KeyboardInterrupt

    target = _Target()
    ref = weakref.ref(target, callback)
    del target
    gc.collect()
    assert ref() is None


@pytest.fixture
def hook() -> Iterator[None]:
    previous = sys.unraisablehook
    lost_interrupt.install()
    lost_interrupt.take()
    yield
    sys.unraisablehook = previous
    lost_interrupt.take()


def test_a_lost_interrupt_is_kept_and_not_printed(hook: None, capsys: pytest.CaptureFixture[str]) -> None:
    _interrupt_in_a_callback()
    assert capsys.readouterr().err == ""
    assert lost_interrupt.take() is True
    assert lost_interrupt.take() is False  # taken once


def test_other_unraisable_exceptions_still_reach_the_previous_hook(hook: None) -> None:
    seen: list[type[BaseException]] = []
    lost_interrupt._previous = lambda unraisable: seen.append(unraisable.exc_type)

    def callback(_ref: object) -> None:
        raise ValueError("not an interrupt")

    target = _Target()
    ref = weakref.ref(target, callback)
    del target
    gc.collect()
    assert ref() is None and seen == [ValueError]
    assert lost_interrupt.take() is False


def test_the_run_takes_a_lost_interrupt_as_a_sigint(hook: None) -> None:
    _interrupt_in_a_callback()
    with _signals() as signals:
        assert signals.received == [signal.SIGINT]


@pytest.mark.system
def test_a_command_that_never_looked_exits_as_interrupted() -> None:
    program = (
        "import gc, weakref\n"
        "from runner import lost_interrupt\n"
        "lost_interrupt.install()\n"
        "class T: pass\n"
        "def cb(_): raise KeyboardInterrupt\n"
        "t = T(); r = weakref.ref(t, cb); del t; gc.collect()\n"
        "from runner.cli import main\n"
        "main(['--version'])\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr
    assert done.stderr.strip().endswith("runner: error: interrupted")
