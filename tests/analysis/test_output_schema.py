"""The documented schema: real runs validate against it, and the README defines every field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from tests.conftest import REPO, run_runner

SCHEMA = json.loads((REPO / "docs" / "output.schema.json").read_text())
CAPACITY_SCHEMA = json.loads((REPO / "docs" / "capacity.schema.json").read_text())
README = (REPO / "README.md").read_text()


def _property_names(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            yield key
            yield from _property_names(value)
        for key in ("items", "additionalProperties"):
            yield from _property_names(node.get(key))
        for value in node.get("$defs", {}).values():
            yield from _property_names(value)


@pytest.mark.parametrize("schema", [SCHEMA, CAPACITY_SCHEMA], ids=["run", "capacity"])
def test_readme_defines_every_field_of_the_schema(schema: dict[str, Any]) -> None:
    missing = sorted({name for name in _property_names(schema) if name not in README})
    assert missing == []


@pytest.mark.parametrize(
    "args",
    [
        ["--ops", "200", "--procs", "2", "--warmup", "20"],
        ["--duration", "1.5", "--mode", "sync", "--threads", "2"],
    ],
)
@pytest.mark.system
def test_real_runs_validate_against_the_schema(dsn: str, args: list[str]) -> None:
    result = run_runner(*args, "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    jsonschema.validate(result.doc, SCHEMA)


@pytest.mark.system
def test_the_schema_rejects_an_undocumented_field(dsn: str) -> None:
    result = run_runner("--ops", "40", "--quiet", dsn=dsn)
    assert result.doc is not None
    result.doc["totals"]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(result.doc, SCHEMA)
