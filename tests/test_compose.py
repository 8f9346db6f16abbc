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


def test_the_cluster_profile_has_a_head_without_runner_resources_and_workers_with_them() -> None:
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


def test_the_pooler_profile_is_pgbouncer_in_transaction_mode() -> None:
    bouncer = COMPOSE["services"]["pgbouncer"]
    assert bouncer["profiles"] == ["pooler"]
    env = bouncer["environment"]
    assert env["POOL_MODE"] == "transaction" and env["DATABASE_URL"].endswith("@postgres:5432/bench")
    assert "extra_float_digits" in env["IGNORE_STARTUP_PARAMETERS"]  # what asyncpg and psycopg send at startup
    assert bouncer["ports"] == ["127.0.0.1:6432:5432"]
    assert bouncer["depends_on"]["postgres"]["condition"] == "service_healthy"
    readme = (REPO / "README.md").read_text()
    assert "docker compose --profile pooler up -d" in readme
    assert "--dsn postgresql://bench:bench@127.0.0.1:6432/bench --statement-cache off" in readme


def test_postgres_preloads_and_creates_pg_stat_statements() -> None:
    postgres = COMPOSE["services"]["postgres"]
    assert "shared_preload_libraries=pg_stat_statements" in postgres["command"]
    (config,) = postgres["configs"]
    assert config["target"].startswith("/docker-entrypoint-initdb.d/") and config["target"].endswith(".sql")
    assert "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" in COMPOSE["configs"][config["source"]]["content"]
