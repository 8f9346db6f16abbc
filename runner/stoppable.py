"""Where the setup thread may be stopped from outside: only while it runs Python that can loop for
long and that no statement cancel reaches (a workload's populate, the generic filler's rows).

A signal during setup cancels the setup's statements on the server; a thread busy in Python is
stopped by raising SetupStopped into it (PyThreadState_SetAsyncExc). Anywhere else, an exception
from outside could land inside an import and leave its module lock held, and the process could
then hang on its way out: so outside these windows the thread is only waited for.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_open: set[int] = set()  # idents of the threads inside a stoppable window
_lock = threading.Lock()


class SetupStopped(BaseException):
    """Raised inside the setup thread on a signal: a BaseException, so that a workload's populate
    catching Exception does not swallow it."""


@contextmanager
def stoppable() -> Iterator[None]:
    """The current thread may be stopped while inside this block."""
    ident = threading.get_ident()
    with _lock:
        _open.add(ident)
    try:
        yield
    finally:
        with _lock:
            _open.discard(ident)


def stop(thread: threading.Thread) -> bool:
    """Raise SetupStopped in `thread` at its next bytecode if it is inside a stoppable window;
    whether it was."""
    with _lock:
        if thread.ident not in _open:
            return False
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(SetupStopped))
        return True
