"""--workload NAME: a built-in, a file (path/to/file.py) or an import path (package.module or
package.module:name), loaded the same way in the parent and in every worker.

Every way this can fail is a WorkloadFileError with one line (the CLI turns it into exit 2).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType

from workloads.core import WORKLOADS, Workload, WorkloadFileError
from workloads.define import WorkloadDefinition

IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?$")


def is_path(name: str) -> bool:
    return name.endswith(".py") or "/" in name


def resolve(name: str) -> Workload:
    """A registered workload by name, or the one a file or module holds (loaded once per process)."""
    if name in WORKLOADS:
        return WORKLOADS[name]
    if is_path(name):
        key = f"file:{Path(name).resolve()}"
        if key not in WORKLOADS:
            WORKLOADS[key] = _load_file(Path(name).resolve())
        return WORKLOADS[key]
    key = f"import:{name}"
    if key not in WORKLOADS:
        WORKLOADS[key] = _import(name)
    return WORKLOADS[key]


def _builtins() -> str:
    return ", ".join(n for n in WORKLOADS if ":" not in n)


def _as_workload(value: object) -> Workload | None:
    """A module attribute as a workload: a Workload, or a decorator-form definition built now."""
    if isinstance(value, WorkloadDefinition):
        return value.build()
    return value if isinstance(value, Workload) else None


def _found(module: ModuleType, registered: list[Workload], known: set[int], where: str) -> Workload:
    """The one workload a module defines: registered while it ran, or a module attribute (one it
    imported from elsewhere, a built-in say, was known before and does not count)."""
    found: dict[int, Workload] = {id(w): w for w in registered}
    for value in list(vars(module).values()):
        workload = _as_workload(value)
        if workload is not None and id(workload) not in known:
            found.setdefault(id(workload), workload)
    if len(found) != 1:
        raise WorkloadFileError(
            f"{where} must hold exactly one workload, it holds {len(found)}"
            + (": name one with module:attribute" if len(found) > 1 else " (a workload(...) object or a registered Workload)")
        )
    return next(iter(found.values()))


def _run_module(run: object, where: str) -> tuple[ModuleType, list[Workload], set[int]]:
    """Import (run() returns the module), noting what it registers and what was known before;
    any error is one line."""
    before = dict(WORKLOADS)
    try:
        module = run()  # type: ignore[operator]
    except WorkloadFileError:
        raise
    except Exception as exc:  # the user's code: any error means "does not import"
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise WorkloadFileError(f"{where} does not import: {type(exc).__name__}: {first}") from None
    registered = [w for n, w in WORKLOADS.items() if before.get(n) is not w]
    return module, registered, {id(w) for w in before.values()}


def _working_directory_importable() -> None:
    """Modules of the working directory import, as under `python -m runner`: the `runner` console
    script's sys.path starts with its own bin directory instead. Appended, so nothing of the
    working directory shadows an installed package. (Spawned workers inherit sys.path.)"""
    here = os.getcwd()
    if "" not in sys.path and here not in sys.path:
        sys.path.append(here)


def _load_file(path: Path) -> Workload:
    where = f"workload file {path}"
    if not path.is_file():
        raise WorkloadFileError(f"{where} does not exist")
    module_name = f"runner_user_workload_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise WorkloadFileError(f"{where} is not a Python module")
    loader = spec.loader

    def run() -> ModuleType:
        _working_directory_importable()  # the file's own imports of its package
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        loader.exec_module(module)
        return module

    module, registered, known = _run_module(run, where)
    return _found(module, registered, known, where)


def _import(name: str) -> Workload:
    if not IMPORT_PATH.match(name):
        raise WorkloadFileError(f"unknown --workload {name!r}: choose one of {_builtins()}, a path to a .py file, or package.module[:name]")
    module_name, _, attribute = name.partition(":")
    where = f"--workload {name}"

    def run() -> ModuleType:
        _working_directory_importable()
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):  # the path itself, not an import inside it
                hint = f"not a built-in ({_builtins()})" if "." not in name and ":" not in name else "check the import path and sys.path"
                raise WorkloadFileError(f"unknown --workload {name!r}: no module named {exc.name!r}; {hint}") from None
            raise

    module, registered, known = _run_module(run, where)
    if not attribute:
        return _found(module, registered, known, f"module {module_name}")
    if not hasattr(module, attribute):
        raise WorkloadFileError(f"{where}: module {module_name} has no attribute {attribute!r}")
    value = getattr(module, attribute)
    workload = _as_workload(value)
    if workload is None:
        raise WorkloadFileError(f"{where}: {attribute} is a {type(value).__name__}, not a workload (workloads.workload(...) or Workload)")
    return workload
