"""Where results go: one JSON document on stdout, and atomically to --output."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from runner.errors import UsageError


def dumps(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def check_writable(path: str) -> None:
    """Refuse an --output that cannot be written before any work is done."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"--output {path} is a directory: name a file")
    if not parent.is_dir():
        raise UsageError(f"--output {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"--output {path} is not writable: choose another path")


def write_atomic(path: str, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename: a crash never leaves half a file."""
    target = Path(path)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def emit(doc: dict[str, Any], output: str | None, one_line: bool = False) -> None:
    """The document to --output (indented) and stdout (one line after --jsonl interval lines)."""
    data = dumps(doc)
    if output is not None:
        write_atomic(output, data)
    sys.stdout.buffer.write(orjson.dumps({"kind": "result", **doc}) + b"\n" if one_line else data)
    sys.stdout.flush()
