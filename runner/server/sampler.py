"""The parent's view of server connections: pg_stat_activity sampled on its own thread.

This is the seed's DBeaver connection graph as data. The parent's own connections (the sampler
and the statistics probe) are excluded.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from runner.measure.sample import Sample

SAMPLE_PERIOD_S = 0.1
# pg_stat_activity's own function, not the view: the view joins pg_database and pg_authid, and
# planning that join was most of a sample's cost to the server (320-420 us of CPU against 190 us,
# ten times a second beside the run; BENCHMARKS.md, "Every layer at its own speed"). Same rows: the view is this
# function joined for names, and its datname is the database whose oid this compares.
STATES_SQL = """
    SELECT count(*),
           count(*) FILTER (WHERE state = 'active'),
           count(*) FILTER (WHERE state = 'idle'),
           count(*) FILTER (WHERE state LIKE 'idle in transaction%')
    FROM pg_stat_get_activity(NULL) AS activity
    WHERE activity.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND activity.backend_type = 'client backend'
      AND activity.application_name NOT LIKE 'runner-parent%'  -- the sampler and the parent's other probes
    """


def read_states(cursor: Any) -> tuple[int, int, int, int]:
    """One sample on a DB-API cursor of an autocommit connection (in a transaction, the server
    would answer every sample from the transaction's first snapshot): total, active, idle, idle
    in transaction. The cursor itself, not SQLAlchemy's Connection.execute, whose execution
    context made a sample cost 75 µs of the parent's CPU against the cursor's 29 (BENCHMARKS.md,
    "Every layer at its own speed"), ten times a second beside the workers. No parameters, so the `%` in the text
    goes as it is."""
    cursor.execute(STATES_SQL)
    total, active, idle, in_tx = cursor.fetchone()
    return int(total), int(active), int(idle), int(in_tx)


@dataclass
class ConnectionSampler:
    engine: Engine
    period_s: float = SAMPLE_PERIOD_S
    samples: list[Sample] = field(default_factory=list)
    failed_samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def peak(self) -> int:
        return max((s.total for s in self.samples), default=0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="connection-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                    while not self._stop.is_set():
                        total, active, idle, in_tx = read_states(cursor)
                        self.samples.append(Sample(time.perf_counter_ns(), total, active, idle, in_tx))
                        self._stop.wait(self.period_s)
            except (DBAPIError, self.engine.dialect.loaded_dbapi.Error):  # connecting (wrapped), or a sample (the driver's own)
                # The server restarted or killed us: count it and reconnect on the next period.
                self.failed_samples += 1
                self._stop.wait(self.period_s)
