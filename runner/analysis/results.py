"""Read results back: a run's JSON document, a --jsonl stream, a sweep's JSON lines, or documents
appended one after another (`python -m runner ... >> results.json`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.errors import UsageError


def _is_result(obj: Any) -> bool:
    """A run's document, a capacity search's (`kind: capacity`) or an advice (`kind: advice`)."""
    return isinstance(obj, dict) and "schema_version" in obj and ("totals" in obj or obj.get("kind") in ("capacity", "advice"))


def is_capacity(doc: dict[str, Any]) -> bool:
    """A document of many steps (a capacity search or an advice): no run's figures of its own."""
    return doc.get("kind") in ("capacity", "advice")


def is_advice(doc: dict[str, Any]) -> bool:
    return doc.get("kind") == "advice"


def _documents(text: str) -> list[tuple[int, Any]]:
    """Every JSON value in `text`, one after another (pretty documents appended with `>>`, JSON
    lines, or one document), each with the line it starts on; ValueError at the first non-JSON."""
    decoder = json.JSONDecoder()
    values: list[tuple[int, Any]] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index == len(text):
            return values
        value, end = decoder.raw_decode(text, index)
        values.append((text.count("\n", 0, index) + 1, value))
        index = end


def load(paths: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Every result document in the files, named `file` (one document) or `file:line`; interval
    lines skipped."""
    results: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"{path} is not text: not a runner result file") from None
        try:
            values = _documents(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{exc.lineno} is not JSON: not a runner result file") from None
        found = [(number, value) for number, value in values if _is_result(value)]
        if not found:
            raise UsageError(f"{path} holds no runner result")
        if len(values) == 1:
            results.append((path, found[0][1]))
        else:
            results.extend((f"{path}:{number}", value) for number, value in found)
    return results
