"""`python -m runner`: hand over to the CLI, without a traceback for a Ctrl-C during imports."""

from __future__ import annotations

import signal
import sys
from types import FrameType


def entry() -> None:
    """The process entry point (also the `runner` console script)."""
    interrupted: list[int] = []

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        interrupted.append(signum)
        raise KeyboardInterrupt

    # Only where a Ctrl-C would raise anyway: an inherited SIG_IGN stays as it is.
    watching = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if watching:
        signal.signal(signal.SIGINT, on_interrupt)
    try:
        from runner import lost_interrupt

        lost_interrupt.install()  # a Ctrl-C raised where Python cannot pass it on is kept, not printed
        from runner.cli import main  # the imports take ~0.4 s: a Ctrl-C may land in them
    except KeyboardInterrupt:
        _interrupted()
    except Exception:
        if not interrupted:
            raise
        # A Ctrl-C inside a C extension's module init can surface as another error: seen in CI,
        # "TypeError: expected a message argument" from `import _ssl`. The import failed because
        # of it: an interrupt, not an internal error.
        _interrupted()
    finally:
        if watching:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    main()


def _interrupted() -> None:
    print("runner: error: interrupted", file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":
    entry()
