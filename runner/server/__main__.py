"""`python -m runner.server --dsn-file PATH`: one embedded server for several runs.

scripts/sweep.sh starts it when a sweep loads data (--scale) without a server of its own, so that
every run of the sweep clones one load (--keep-load) instead of loading again on a server of its
own. The DSN holds the server's password: it is written to PATH (mode 0600, in a directory the
caller made private), never to argv or a terminal. The server is removed on SIGTERM or SIGINT,
when the process that started this one ends (checked every second), or by the reaper if this
process is killed outright.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from runner.errors import RunnerError
from runner.server.embedded import start_embedded

PARENT_CHECK_S = 1.0
STOPS = {signal.SIGTERM, signal.SIGINT}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.server", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dsn-file", required=True, help="Write the server's DSN here (0600) once it accepts connections.")
    args = parser.parse_args(argv)
    parent = os.getppid()
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)  # taken by sigtimedwait below, not by a handler mid-start
    try:
        server = start_embedded()
    except RunnerError as exc:
        print(f"runner.server: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    try:
        path = Path(args.dsn_file)
        descriptor = os.open(path.with_name(path.name + ".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(server.dsn + "\n")
        os.replace(path.with_name(path.name + ".tmp"), path)  # whole, or not there: the caller polls for it
        while os.getppid() == parent and signal.sigtimedwait(STOPS, PARENT_CHECK_S) is None:
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
