"""A Ctrl-C that Python could not deliver, kept for the run to act on.

Until the run's own handlers are set, SIGINT raises KeyboardInterrupt wherever the main thread
is. When that is inside a callback Python calls for itself (a weakref callback of an import's
module lock, a __del__), the exception cannot propagate: Python prints "Exception ignored in"
with a traceback and drops it, and the run goes on as if no Ctrl-C had come. This hook keeps
such an interrupt instead: the run's signal handling takes it as a SIGINT received (run._signals),
and a command that ends without having looked exits as interrupted (cli.main).
"""

from __future__ import annotations

import sys
from typing import Any

_lost: list[BaseException] = []
_previous: Any = None


def _hook(unraisable: Any) -> None:
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        _lost.append(unraisable.exc_value)  # no printing: it is delivered later, as a signal
        return
    _previous(unraisable)


def install() -> None:
    """From the process entry point, before anything slow is imported."""
    global _previous
    if sys.unraisablehook is not _hook:
        _previous = sys.unraisablehook
        sys.unraisablehook = _hook


def take() -> bool:
    """Whether a Ctrl-C was lost since the last call (and forget it)."""
    lost = bool(_lost)
    _lost.clear()
    return lost
