"""The connection sampler against the real server: what it counts, and what it leaves out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg2
from sqlalchemy import text

from runner.server.control import control_engine
from runner.server.sampler import ConnectionSampler, read_states

# The view's form, as the sampler asked before it read the function itself: the reference.
VIEW_QUERY = text(
    """
    SELECT count(*),
           count(*) FILTER (WHERE state = 'active'),
           count(*) FILTER (WHERE state = 'idle'),
           count(*) FILTER (WHERE state LIKE 'idle in transaction%')
    FROM pg_stat_activity
    WHERE datname = current_database()
      AND backend_type = 'client backend'
      AND application_name NOT LIKE 'runner-parent%'
    """
)


def _sample(dsn: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(the sampler's counts, the view's) from one connection in one snapshot of the activity."""
    with control_engine(dsn, "sampler").connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        ours = read_states(conn.connection.dbapi_connection.cursor())  # type: ignore[union-attr]
        view = tuple(conn.execute(VIEW_QUERY).one())  # same connection and transaction: the same snapshot
        return ours, view


@contextmanager
def _connections(dsn: str, idle: int, in_transaction: int, **options: Any) -> Iterator[None]:
    with ExitStack() as stack:
        for _ in range(idle):
            stack.callback(psycopg2.connect(dsn, **options).close)
        for _ in range(in_transaction):
            conn = psycopg2.connect(dsn, **options)
            stack.callback(conn.close)
            conn.cursor().execute("SELECT 1")  # psycopg2 opens a transaction and leaves it open
        yield


def test_sampler_counts_this_database_s_clients_by_state_and_not_the_parent_s(dsn: str) -> None:
    other_db = dsn.rsplit("/", 1)[0] + "/template1"
    with (
        _connections(dsn, idle=3, in_transaction=2, application_name="runner-worker-test"),
        _connections(dsn, idle=2, in_transaction=1, application_name="runner-parent-test"),  # the parent's own
        _connections(other_db, idle=2, in_transaction=1),  # another database
    ):
        ours, view = _sample(dsn)
    # Against the view in the same snapshot, not against a count taken earlier: another test's
    # backends may still be ending. The excluded ones above would each make the two differ.
    assert ours == view
    total, _active, idle, in_transaction = ours
    assert idle >= 3 and in_transaction >= 2 and total >= 5


def test_each_sample_sees_the_server_as_it_is_then(dsn: str) -> None:
    """Every sample is a fresh look: in one transaction the server would repeat its first
    snapshot of the activity for every sample, and the series would be flat."""
    sampler = ConnectionSampler(control_engine(dsn, "sampler"), period_s=0.02)
    sampler.start()
    try:
        deadline = time.monotonic() + 10
        while not sampler.samples and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sampler.samples, "no sample within 10 s"
        before = sampler.samples[-1].idle_in_transaction
        # Three more in a transaction. Waiting for any rise, not for exactly three more: a backend
        # of the test above (two in a transaction) may still be ending, and leave the count then.
        with _connections(dsn, idle=0, in_transaction=3, application_name="runner-worker-test"):
            seen = before
            while seen <= before and time.monotonic() < deadline:
                time.sleep(0.02)
                seen = sampler.samples[-1].idle_in_transaction
    finally:
        sampler.stop()
    assert seen > before, (before, seen)
    assert sampler.failed_samples == 0
