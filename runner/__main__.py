"""`python -m runner`: hand over to the CLI, without a traceback for a Ctrl-C during imports."""

from __future__ import annotations

import sys


def entry() -> None:
    """The process entry point (also the `runner` console script)."""
    try:
        from runner import lost_interrupt

        lost_interrupt.install()  # a Ctrl-C raised where Python cannot pass it on is kept, not printed
        from runner.cli import main  # the imports take ~0.4 s: a Ctrl-C may land in them
    except KeyboardInterrupt:
        print("runner: error: interrupted", file=sys.stderr)
        sys.exit(130)
    main()


if __name__ == "__main__":
    entry()
