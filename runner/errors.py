"""Exit codes and the expected errors that end a run with one line on stderr."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Every exit code the runner uses; the README's table lists the same."""

    OK = 0
    INTERNAL = 1  # a bug: an unexpected exception (traceback only with --debug)
    USAGE = 2  # bad option, bad DSN, unknown workload, unwritable --output
    DATABASE = 3  # cannot connect, not PostgreSQL, schema not ours, pool does not fit
    INCOMPLETE = 4  # a worker died or the run was cut short: partial results printed
    OP_ERRORS = 5  # the run finished but some ops failed (counted per class in the output)
    OUTPUT = 6  # the results could not be written: stdout closed or full, or --output failed
    CHECKS = 7  # the run completed but a --check failed
    INTERRUPTED = 130  # SIGINT (Ctrl-C): partial results printed
    TERMINATED = 143  # SIGTERM: partial results printed


class RunnerError(Exception):
    """An expected failure: its message is the one line the user sees."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(RunnerError):
    exit_code = ExitCode.USAGE


class DatabaseError(RunnerError):
    exit_code = ExitCode.DATABASE
