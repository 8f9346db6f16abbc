"""The workload API and registry.

A workload is a set of tables (SQLAlchemy `MetaData`, in any schema: the runner maps every one
of them into its own schema, so an app's models are used unchanged) and a set of named ops, each
with a weight and a kind ("read" or "write"). `--read-ratio` picks the kind, the weights pick
the op within it.

Two ways to write one. The decorator form (`workloads.define`): a `workload(...)` object whose
`.read(weight=...)` and `.write(weight=...)` register op functions `fn(ctx)`, async or sync. The
form underneath: `Workload` with `Op`s, each with implementations per layer (`--layer`): `orm`
(required), `core` and `raw` (optional), each a pair (async, sync), either of which may be None.
Implementations are called as `impl(ctx, rng)`; `ctx` is the worker's `Handle` (its sessions,
engine or raw connections, RNG, key picker and id) and `rng` the same RNG as `ctx.rng`.

Built-ins register by name; `--workload` also takes a file (path/to/file.py) or an import path
(package.module or package.module:name), loaded by `workloads.loader`.
"""

from __future__ import annotations

import importlib

from workloads.core import (
    LAYERS,
    SCHEMA,
    WORKLOADS,
    AsyncImpl,
    ColumnFactory,
    Context,
    Data,
    Handle,
    Impl,
    Op,
    SyncImpl,
    Workload,
    WorkloadFileError,
    register,
)
from workloads.define import workload
from workloads.loader import is_path, resolve

BUILTIN_MODULES = ("workloads.seed", "workloads.noop", "workloads.point_select", "workloads.tpcb", "workloads.sleep")

__all__ = [
    "SCHEMA", "LAYERS", "WORKLOADS", "AsyncImpl", "ColumnFactory", "Context", "Data", "Handle", "Impl", "Op", "SyncImpl", "Workload", "WorkloadFileError",
    "BUILTINS", "is_path", "register", "resolve", "workload",
]

for _module in BUILTIN_MODULES:
    importlib.import_module(_module)
BUILTINS: tuple[str, ...] = tuple(WORKLOADS)  # the built-ins' names: what the help lists, whatever registers later
