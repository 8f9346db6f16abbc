"""What the runner changes about Ray's defaults, in one place: each is a public-API gap that it
fills through Ray's internals, and each has a test against a real cluster, so a Ray release that
moves one fails a test instead of leaking a secret or noise.

- the job's entrypoint (the driver's command line, kept by the cluster) with every DSN masked;
- the raylet's published errors (log dumps) and the token-auth notice kept off the driver's stderr;
- a private instance's session directory removed with it;
- a head that does not answer, and a node that died, told within seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ray

from runner.dsn import mask_command_line
from runner.errors import UsageError

HEAD_CONNECT_TIMEOUT_S = 5.0
NODE_CONNECT_TIMEOUT_S = 1.0


@contextlib.contextmanager
def masked_entrypoint() -> Iterator[None]:
    """Ray records the driver's whole command line as the job's entrypoint, which the cluster keeps
    after the job ends (`ray list jobs`, the dashboard): a `--dsn` on it would leave its password
    there. ray.init reads it from `ray._private.utils.get_entrypoint_name` (no public setting), so
    the command line is handed over with every DSN in it masked. A test reads the job table of a
    real cluster, so a Ray that moves the function fails it instead of leaking."""
    import ray._private.utils as ray_utils

    original = ray_utils.get_entrypoint_name
    ray_utils.get_entrypoint_name = lambda: mask_command_line(sys.orig_argv)
    try:
        yield
    finally:
        ray_utils.get_entrypoint_name = original


def reachable(address: str) -> None:
    """One line, within seconds, for a head nobody answers at: ray.init retries an unreachable GCS
    for about ten minutes (590 s and 45 lines of warnings for ray:127.0.0.1:1)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--cluster ray:{address}: give the head's HOST:PORT (e.g. ray:10.0.0.5:6379), or ray:auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=HEAD_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UsageError(f"cannot join the Ray cluster at {address}: {exc.strerror or exc} (is `ray start --head` running there?)") from None


def quiet_raylet_errors() -> None:
    """Ray's driver prints every error the cluster publishes on its stderr, as raw "(raylet)" log
    lines: on a node loss, the dying raylet's last 2 x 22 lines of [state-dump]. The run reports
    the lost worker itself (its reason and node, in .workers[] and the summary), so those lines are
    dropped: ray.init(log_to_driver=False) keeps the workers' own lines out, but not these, and
    Ray's listener looks up print_to_stdstream at each message (no public setting)."""
    worker_module = ray._private.worker
    printer = getattr(worker_module, "print_to_stdstream", None)
    if printer is None or getattr(printer, "quiet_raylet", False):
        return

    def quiet(data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        if data.get("pid") != "raylet":
            printer(data, *args, **kwargs)

    quiet.quiet_raylet = True  # type: ignore[attr-defined]
    worker_module.print_to_stdstream = quiet


def quiet_auth_notice() -> None:
    """Ray 2.59+ enables token authentication for a new local instance (good: no other local user
    can run code on it) and says so on stderr at every start: not the run's to print."""
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)


def session_dir() -> Path | None:
    """The session directory of the instance this process started (no public way to ask)."""
    node = getattr(ray._private.worker, "_global_node", None)
    return Path(node.get_session_dir_path()) if node is not None else None


def remove_session(session: Path) -> None:
    """Remove a private instance's session directory (each run left one in Ray's temp dir), and
    Ray's `session_latest` link when it points there."""
    shutil.rmtree(session, ignore_errors=True)
    latest = session.parent / "session_latest"
    with contextlib.suppress(OSError):
        if latest.is_symlink() and Path(os.readlink(latest)).name == session.name:
            latest.unlink()


def node_up(node: dict[str, Any] | None) -> bool:
    """Whether a node is up at the end of the run: alive to the GCS, and its raylet answering (the
    GCS takes its health checks' ~15 s to notice a node that died, longer than a run takes to stop)."""
    if node is None or not node.get("Alive"):
        return False
    try:
        socket.create_connection((node["NodeManagerAddress"], int(node["NodeManagerPort"])), timeout=NODE_CONNECT_TIMEOUT_S).close()
    except (OSError, KeyError, ValueError):
        return False
    return True
