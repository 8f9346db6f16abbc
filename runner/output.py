"""Where results go: stdout, kept for results only, and --output, written without harming anything.

stdout is the document's channel, so nothing else may write to it: the run claims the real stdout
on a private descriptor and points descriptor 1 at stderr, so a `print()` in a user's workload, a
library's chatter or a child process lands on stderr. A closed or full stdout is noticed, not
fatal: the run stops gracefully and the results still reach --output and the summary.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from runner.errors import ExitCode, UsageError


def dumps(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def result_line(doc: dict[str, Any]) -> bytes:
    """The document as the last line of a --jsonl stream."""
    return orjson.dumps({"kind": "result", **doc}) + b"\n"


class ResultStream:
    """The process's real stdout, written with errors caught (EPIPE, ENOSPC) instead of raised."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.error: str | None = None  # why stdout stopped taking data; None while it works

    @classmethod
    def claim_stdout(cls) -> ResultStream:
        """Keep stdout for results; from now on descriptor 1 (and every child's) is stderr. A
        stdout closed before the run began (`>&-`) is refused: the results would go nowhere."""
        try:
            fd = os.dup(1)  # not inherited by children (PEP 446)
        except OSError:
            raise UsageError("stdout is closed: the results have nowhere to go (redirect it, e.g. > run.json)", ExitCode.OUTPUT) from None
        if sys.stdout is not None:
            sys.stdout.flush()
        os.dup2(2, 1)
        return cls(fd)

    def write(self, data: bytes) -> bool:
        """Write all of `data`; False (and `error` set) once stdout is closed or full."""
        if self.error is not None:
            return False
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self.error = f"stdout failed: {exc.strerror or exc}"
            return False
        return True


def _target(path: str) -> Path:
    """What a path names once symlinks are followed: the file that must receive the data."""
    return Path(os.path.realpath(path))


def check_writable(path: str) -> None:
    """Refuse an --output that cannot be written before any work is done."""
    target = _target(path)
    if target.is_dir():
        raise UsageError(f"--output {path} is a directory: name a file")
    if not target.parent.is_dir():
        raise UsageError(f"--output {path}: directory {target.parent} does not exist")
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISSOCK(mode):
        raise UsageError(f"--output {path} is a socket: name a file, a device or a FIFO")
    writable = os.access(target, os.W_OK) if mode is not None else os.access(target.parent, os.W_OK)
    if not writable:
        raise UsageError(f"--output {path} is not writable: choose another path")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_output(path: str, data: bytes) -> None:
    """Write `data` to --output without replacing anything that is not a regular file.

    A regular file (or a new one) is replaced atomically: temp file in the same directory, fsync,
    rename, with the old file's mode (a new one's from the umask). A symlink is followed and its
    target replaced, the link kept. A device or FIFO is written in place: renaming over
    /dev/null would turn it into a file.
    """
    target = _target(path)
    try:
        existing = target.stat()
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with open(target, "wb") as handle:  # opens an existing node: no O_CREAT takes effect, no rename
            handle.write(data)
        return
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), stat.S_IMODE(existing.st_mode) if existing else 0o666 & ~_umask())
            if existing is not None and os.geteuid() == 0:
                with contextlib.suppress(OSError):  # root replacing someone's file keeps its owner
                    os.fchown(handle.fileno(), existing.st_uid, existing.st_gid)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
