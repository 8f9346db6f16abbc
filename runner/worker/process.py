"""The local transport's worker process: signals, the record pipe, and the orphan watch around the
shared worker body.

Started with the spawn method by runner.transport.local. Ctrl-C reaches the whole process group,
so SIGINT is ignored here (the parent decides what it means and sends SIGTERM: stop). A worker
whose parent died (SIGKILL) stops, gives in-flight ops the grace period, and exits even if an op
is stuck in the driver: nothing is left holding connections.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event

from runner.worker.body import run_worker
from runner.worker.channel import Channel
from runner.worker.plan import WorkerPlan

ORPHAN_POLL_S = 0.5
ORPHAN_MARGIN_S = 5.0  # beyond --grace: time to cancel in-flight ops and close the pool
ORPHAN_EXIT_CODE = 3


def _watch_parent(plan: WorkerPlan, stop: threading.Event) -> None:
    """Once the parent is gone: stop, and if the worker has not ended by grace + margin, end it."""
    while os.getppid() == plan.parent_pid:
        time.sleep(ORPHAN_POLL_S)
    stop.set()
    time.sleep(plan.config.grace_s + ORPHAN_MARGIN_S)
    os._exit(ORPHAN_EXIT_CODE)  # an op stuck in C code (sync mode) cannot be cancelled: the kernel closes its sockets


def worker_main(plan: WorkerPlan, conn: Connection, go: Event) -> None:
    """The process entry point (spawn start method)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    threading.Thread(target=_watch_parent, args=(plan, stop), name="orphan-watch", daemon=True).start()
    try:
        run_worker(plan, Channel(conn.send_bytes, plan.worker_id), go, stop)
    finally:
        conn.close()
