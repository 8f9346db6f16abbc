"""The worker process's entry for --mode gevent (runner.concurrency.greenlets): gevent's monkey
patches and psycogreen's wait callback before anything of the worker is loaded, so the sockets,
locks, sleeps and the pool's conditions the worker makes are cooperative, and a greenlet waiting
on PostgreSQL lets the others run.

The plan arrives pickled, as bytes: unpickling a WorkerPlan imports the runner (SQLAlchemy
among it), which the patches must come before. Nothing but the standard library is imported here.
"""

from __future__ import annotations

import pickle
from typing import Any


def worker_main(plan: bytes, conn: Any, go: Any) -> None:
    """The spawn target: patch, then the local worker's own entry."""
    from gevent import monkey

    monkey.patch_all()
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()  # psycopg2 waits through gevent's hub instead of blocking the thread
    from runner.worker.process import worker_main as local_main

    local_main(pickle.loads(plan), conn, go)
