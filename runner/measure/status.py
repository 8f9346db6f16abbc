"""A worker's status, as the parent knows it: `.workers[].status` in the result document.

    starting -> ready -> done | stopped | failed | refused   (the worker's own final record says)
                       | died | lost | unresponsive           (no final record: the parent decided)
"""

from __future__ import annotations

from enum import Enum


class WorkerStatus(str, Enum):
    """A str, so that it is its own value in JSON and equal to it (`status == "done"`)."""

    STARTING = "starting"  # spawned, not ready yet
    READY = "ready"  # connected, warmed up, waiting at the start barrier
    DONE = "done"  # its share or the duration ran out
    STOPPED = "stopped"  # asked to stop (Ctrl-C, another worker's end, --max-errors)
    FAILED = "failed"  # an error outside any op; what it measured is reported
    REFUSED = "refused"  # could not start (its preflight failed): the run ends before it starts
    DIED = "died"  # its process ended without a final record
    LOST = "lost"  # the transport lost it (its actor or its host died)
    UNRESPONSIVE = "unresponsive"  # silent for too long in the measured part; killed

    def __str__(self) -> str:  # in messages: "failed", not "WorkerStatus.FAILED" (Python 3.12's mixin str)
        return self.value

    @property
    def finished(self) -> bool:
        return self not in (WorkerStatus.STARTING, WorkerStatus.READY)

    @property
    def vanished(self) -> bool:
        """Ended without a final record: its unreported ops are unknown, not unstarted."""
        return self in (WorkerStatus.DIED, WorkerStatus.LOST, WorkerStatus.UNRESPONSIVE)

    @property
    def ends_the_run(self) -> bool:
        """Its end stops every other worker: a failure or a loss (a refusal ends it before it starts)."""
        return self in (WorkerStatus.FAILED, WorkerStatus.DIED, WorkerStatus.LOST, WorkerStatus.UNRESPONSIVE)
