"""docker-compose.yml, read statically (no Docker engine here): the cluster profile is what the
README's "Past one machine" section says it is."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.conftest import REPO

COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _flag(command: list[str], name: str) -> str | None:
    return next((arg.split("=", 1)[1] for arg in command if arg.startswith(f"--{name}=")), None)


def test_the_cluster_profile_has_a_head_without_slots_and_workers_with_them() -> None:
    services = COMPOSE["services"]
    cluster = {name: s for name, s in services.items() if "cluster" in s.get("profiles", [])}
    assert set(cluster) == {"ray-head", "ray-worker-1", "ray-worker-2"}
    head = cluster["ray-head"]["command"]
    assert "--head" in head and _flag(head, "num-cpus") == "0" and _flag(head, "resources") is None
    for name in ("ray-worker-1", "ray-worker-2"):
        command = cluster[name]["command"]
        assert _flag(command, "address") == "ray-head:6379"
        assert json.loads(_flag(command, "resources") or "{}") == {"runner": 2}
    assert all("'.[ray]'" in s["build"]["dockerfile_inline"] for s in cluster.values())
    assert "postgres" in services and "profiles" not in services["postgres"]  # the plain `up` is unchanged


def test_the_readme_shows_the_profile() -> None:
    readme = (REPO / "README.md").read_text()
    assert "docker compose --profile cluster up -d" in readme
    assert "--cluster ray:auto --procs 4 --dsn postgresql://bench:bench@postgres:5432/bench" in readme
