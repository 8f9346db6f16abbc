"""A password in the DSN, in the user part or as `?password=`, appears in nothing a run writes:
stdout, stderr, --output, the exemplars, /metrics while it runs, or a report made from it. Every
mode and every driver, since each has its own connection path (the Ray job table is
tests/transport/test_ray.py's)."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from runner.dsn import child_env, mask_dsn
from runner.server.embedded import EmbeddedServer
from tests.conftest import REPO, run_cli

# (options, where the password goes): every mode, every driver of each, every layer, both forms.
CASES = [
    (["--mode", "chunked", "--driver", "asyncpg"], "query"),
    (["--mode", "window", "--driver", "psycopg", "--layer", "core"], "query"),
    (["--mode", "async", "--driver", "asyncpg", "--layer", "raw"], "user"),
    (["--mode", "sync", "--driver", "psycopg2"], "query"),
    (["--mode", "sync", "--driver", "psycopg", "--layer", "raw"], "query"),
    (["--mode", "sync", "--threads", "2", "--driver", "psycopg2", "--layer", "core"], "user"),
    (["--rate", "200", "--driver", "asyncpg", "--layer", "raw"], "query"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _secret_dsn(server: EmbeddedServer, where: str) -> str:
    base = f"postgresql://postgres{{}}@127.0.0.1:{server.port}/postgres{{}}"
    return base.format(f":{server.password}", "") if where == "user" else base.format("", f"?password={server.password}")


@pytest.mark.system
@pytest.mark.parametrize(("options", "where"), CASES, ids=[" ".join(o) + f" ({w})" for o, w in CASES])
def test_the_password_is_in_nothing_a_run_writes(server: EmbeddedServer, tmp_path: Path, options: list[str], where: str) -> None:
    secret = server.password
    dsn = _secret_dsn(server, where)
    out, port = tmp_path / "run.json", _free_port()
    length = ["--ops", "60"] if "async" in options else ["--duration", "1.5"]  # mode async has no --duration
    raw = "raw" in options  # the raw layer keeps no statements (no exemplars)
    exemplars = [] if raw else ["--exemplars", "1"]
    run = subprocess.Popen(
        [sys.executable, "-m", "runner", *options, *length, *exemplars, "--output", str(out), "--prometheus-port", str(port)],
        cwd=REPO, env=child_env(dsn), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    scraped = []
    while run.poll() is None:
        try:
            scraped.append(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode())
        except (OSError, http.client.HTTPException):
            pass  # not serving yet, or already gone (the run ended mid-response: IncompleteRead, seen once)
        time.sleep(0.05)  # as a scraper polls: without a pause this loop took a core from the run it watches
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    doc = json.loads(stdout)
    assert doc["config"]["dsn"] == mask_dsn(dsn) and "***" in doc["config"]["dsn"]
    assert raw or any(kept for kept in doc["exemplars"].values())  # the statements and parameters are there to leak
    report = tmp_path / "report"
    made = run_cli("report", str(out), "-o", str(report))
    assert made.code == 0, made.stderr
    written = {p.name: p.read_bytes() for p in report.rglob("*") if p.is_file()}
    assert written
    outputs = {"stdout": stdout, "stderr": stderr, "--output": out.read_text(), "report stdout": made.stdout + made.stderr,
               **{f"report {name}": data.decode(errors="replace") for name, data in written.items()}}
    if "async" not in options:  # a 60-op async run may end before the first scrape; the rest run 1.5 s
        assert scraped, "/metrics was never scraped"
    outputs.update({f"/metrics #{i}": text for i, text in enumerate(scraped)})
    assert [name for name, text in outputs.items() if secret in text] == []
