"""A baseline store, as pytest-benchmark keeps one (`--benchmark-autosave`, `--benchmark-compare`):
a run's document saved by name and machine in the project, and a later run compared with it.

    .runner/baselines/<machine>/<name>.json

The machine is pytest-benchmark's key (system, architecture, interpreter, version) with the core
count: timings saved on one machine say little about another. A name saved only on another machine
is still read, with a warning, because counts (statements per op, rows per op) do not depend on it.
"""

from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import UsageError
from runner.result import Result

DEFAULT_DIR = ".runner/baselines"  # relative to the directory the command runs in: the project's
ENVVAR = "RUNNER_BASELINE_DIR"
NAME = re.compile(r"^[A-Za-z0-9_][\w.\-]*(?:/[A-Za-z0-9_][\w.\-]*)*$")  # "main", "pr-12", "nightly/test_feed"


def machine_id() -> str:
    """This machine's key: `Linux-x86_64-CPython-3.12-2cpu`."""
    version = ".".join(platform.python_version_tuple()[:2])
    return f"{platform.system()}-{platform.machine()}-{platform.python_implementation()}-{version}-{os.cpu_count() or 1}cpu"


def check_name(name: str, option: str) -> str:
    """A name the store can hold as a file: letters, digits, `_.-`, `/` between parts."""
    if not NAME.match(name):
        raise UsageError(f"{option} {name!r}: a baseline's name is letters, digits and _.- (parts joined by /), e.g. 'main' or 'pr-12'")
    return name


@dataclass(frozen=True)
class Baseline:
    """A stored run, as read back for a comparison."""

    name: str
    machine: str
    path: Path
    result: Result
    warning: str | None  # saved on another machine, or incomplete: said beside the comparison

    def section(self, rows: list[dict[str, Any]], judged: list[dict[str, Any]]) -> dict[str, Any]:
        """`.baseline`: which stored run this one was compared with, the rows and the --fail-if verdicts."""
        return {
            "name": self.name,
            "machine": self.machine,
            "file": str(self.path),
            "warnings": [self.warning] if self.warning else [],
            "rows": rows,
            "fail_if": judged,
        }


@dataclass(frozen=True)
class Store:
    root: Path

    @classmethod
    def at(cls, directory: str | None) -> Store:
        """--baseline-dir, else $RUNNER_BASELINE_DIR, else .runner/baselines here."""
        return cls(Path(directory or os.environ.get(ENVVAR) or DEFAULT_DIR))

    def path(self, name: str, machine: str | None = None) -> Path:
        return self.root / (machine or machine_id()) / f"{name}.json"

    def save(self, name: str, doc: dict[str, Any]) -> Path:
        """The document under this machine's key; written whole or not at all (a rename over the old one)."""
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            partial.write_text(json.dumps(doc, indent=2) + "\n")
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return path

    def machines(self, name: str) -> list[str]:
        """The machines that saved this name."""
        if not self.root.is_dir():
            return []
        return sorted(entry.name for entry in self.root.iterdir() if (entry / f"{name}.json").is_file())

    def names(self) -> list[str]:
        """Every name saved on this machine, for the line that says a name is missing."""
        own = self.root / machine_id()
        return sorted(str(p.relative_to(own).with_suffix("")) for p in own.rglob("*.json")) if own.is_dir() else []

    def load(self, name: str) -> Baseline:
        """This machine's run of that name, else the one other machine's (with a warning); a name
        nowhere, or on several other machines, is one line (exit 2)."""
        here = machine_id()
        machines = self.machines(name)
        if here in machines:
            machine, warning = here, None
        elif len(machines) == 1:
            machine = machines[0]
            warning = f"baseline {name!r} was saved on {machine}, this is {here}: its timings compare poorly here (its counts do not depend on the machine)"
        elif machines:
            where = ", ".join(machines)
            raise UsageError(f"--baseline {name!r}: not saved on this machine ({here}) but on {where}: copy the one to compare with under {self.root / here}")
        else:
            saved = self.names()
            listed = f"; saved here: {', '.join(saved)}" if saved else f"; nothing is saved in {self.root} (save one with --save-baseline NAME)"
            raise UsageError(f"--baseline {name!r}: no such baseline{listed}")
        path = self.path(name, machine)
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"--baseline {name!r}: {path} cannot be read ({exc})") from None
        result = Result.from_dict(doc, str(path))
        if not result.complete:
            incomplete = f"baseline {name!r} is an incomplete run ({doc.get('stop_reason')})"
            warning = f"{warning}; {incomplete}" if warning else incomplete
        return Baseline(name, machine, path, result, warning)


def verdict_lines(doc: dict[str, Any]) -> list[str]:
    """What stderr says of `.baseline`: its warnings, then each --fail-if that failed, or that all held."""
    section = doc.get("baseline")
    if not section:
        return []
    failed = failed_lines(doc)
    held = f"--baseline {section['name']!r}: every --fail-if held ({len(section['fail_if'])} judged)"
    return [f"warning: {warning}" for warning in section["warnings"]] + (failed or ([held] if section["fail_if"] else []))


def failed_lines(doc: dict[str, Any]) -> list[str]:
    """Each --fail-if against `.baseline` that failed (A is the baseline, B this run), or why the
    comparison could not be made; none when the gate held or there was none."""
    from runner.analysis.compare import fail_line

    section = doc.get("baseline")
    if not section:
        return []
    where = f"--baseline {section['name']!r}"
    if section.get("error"):
        return [f"{where} failed: {section['error']}"]
    return [f"{where} failed (A: the baseline, B: this run): {fail_line(rule)}" for rule in section["fail_if"] if rule["fail"]]


def save(doc: dict[str, Any], name: str, directory: str | None) -> tuple[str, bool]:
    """--save-baseline: the line that says where the run was kept, or why it was not (an
    incomplete run is no baseline); the flag is False when writing it failed."""
    if not doc["complete"]:
        return f"warning: --save-baseline {name!r}: not saved: the run is incomplete ({doc['stop_reason']})", True
    store = Store.at(directory)
    try:
        path = store.save(name, doc)
    except OSError as exc:
        return f"error: --save-baseline {name!r}: {store.path(name)}: {exc.strerror or exc}: the baseline was not saved", False
    return f"baseline {name!r} saved: {path}", True
