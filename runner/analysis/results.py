"""Read results back: a run's JSON document, a --jsonl stream, or a sweep's JSON lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.errors import UsageError


def _is_result(obj: Any) -> bool:
    return isinstance(obj, dict) and "schema_version" in obj and "totals" in obj


def load(paths: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Every result document in the files, named `file` or `file:line`; interval lines skipped."""
    results: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
        try:
            whole = json.loads(text)
        except ValueError:
            whole = None
        if _is_result(whole):
            results.append((path, whole))
            continue
        found = 0
        for number, line in enumerate(text.splitlines(), 1):
            try:
                obj = json.loads(line)
            except ValueError:
                raise UsageError(f"{path}:{number} is not JSON: not a runner result file") from None
            if _is_result(obj):
                results.append((f"{path}:{number}", obj))
                found += 1
        if not found:
            raise UsageError(f"{path} holds no runner result")
    return results
