"""The `runner` logger: the supervisor's and the workers' transitions at DEBUG, shown with --debug.

Nothing logs on an op's path: only the steps a run goes through (start, warm-up, ready, release,
stop, grace, kill, each worker's end), so that a run that hangs or ends early says where.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "runner: debug: %(asctime)s.%(msecs)03d %(name)s: %(message)s"
# The loggers that log transitions. Not the whole `runner` tree: SQLAlchemy names a pool class's
# logger after its module (runner.worker.anatomy.TimedAsyncQueuePool) and, at DEBUG, logs every
# checkout and return: lines per op, on the op's path.
TRANSITIONS = ("runner.transport.supervisor", "runner.worker.body")


def configure(debug: bool) -> None:
    """In the parent and in each worker process: the `runner` logger's DEBUG lines on stderr."""
    if not debug:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger("runner")
    root.handlers[:] = [handler]
    root.propagate = False
    for name in TRANSITIONS:
        logging.getLogger(name).setLevel(logging.DEBUG)
