"""gevent: sync code on greenlets, --threads of them per worker (gevent-patched, psycopg2 made cooperative by psycogreen), as gunicorn's gevent workers run it."""

from __future__ import annotations

from collections.abc import Iterator

from runner.concurrency.mode import Knobs, Mode, SyncExecute
from workloads import Op


def issue(ops: Iterator[Op], execute: SyncExecute, knobs: Knobs) -> None:
    """--threads greenlets, each taking the next op of the shared stream as it finishes one. No
    lock around the stream: a greenlet only yields to another at I/O, never inside next()."""
    from gevent.pool import Pool

    def drain() -> None:
        for op in ops:
            execute(op)

    pool = Pool(knobs.width)
    for _ in range(knobs.width):
        pool.spawn(drain)
    pool.join(raise_error=True)


MODE = Mode(
    name="gevent",
    description=__doc__.split(":", 1)[1].strip(),
    is_async=False,
    issue=issue,
    width="threads",
    patched=True,
)
