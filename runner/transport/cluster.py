"""Which transport carries a run's workers: local processes, or a Ray cluster (--cluster)."""

from __future__ import annotations

import importlib.util
from typing import Protocol

from runner.errors import UsageError
from runner.spec import RunSpec
from runner.transport import Transport
from runner.transport.local import LocalTransport


class Cluster(Protocol):
    """Where workers run, opened once per invocation (every --repeat run uses it)."""

    private: bool  # the runner started it and stops it

    def all_on_this_host(self) -> bool:
        """Whether every worker would run on this machine (the embedded server is reachable)."""

    def transport(self) -> Transport:
        """A fresh transport for one run."""

    def close(self) -> None:
        """Stop what open_cluster started; leave a joined cluster running."""


class LocalCluster:
    private = True

    def all_on_this_host(self) -> bool:
        return True

    def transport(self) -> Transport:
        return LocalTransport()

    def close(self) -> None:
        pass


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


def open_cluster(config: RunSpec) -> Cluster:
    """Local processes, or Ray: a private instance (`ray`) or a running cluster it joins."""
    if config.cluster == "local":
        return LocalCluster()
    if not ray_available():
        raise UsageError("--cluster ray needs Ray, an optional extra: pip install 'runner[ray]'")
    from runner.transport.ray import RayCluster

    cluster = RayCluster(config)
    if config.dsn is None and not cluster.all_on_this_host():
        cluster.close()
        raise UsageError(
            "the embedded server listens on 127.0.0.1 only, which workers on other hosts cannot reach: "
            "pass --dsn with a server every Ray node can connect to"
        )
    return cluster
