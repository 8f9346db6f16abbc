"""Bad input: one line on stderr, exit code 2 (or 3 for the database), never a traceback."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli, run_runner


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--procs", "0"], "--procs"),
        (["--chunk", "0"], "--chunk"),
        (["--ops", "-5"], "--ops"),
        (["--ops", "0"], "--ops"),
        (["--threads", "0"], "--threads"),
        (["--read-ratio", "1.5"], "--read-ratio"),
        (["--mode", "turbo"], "unknown --mode"),
        (["--workload", "nope"], "unknown --workload"),
        (["--procs", "many"], "--procs"),
        (["--bogus-option"], "--bogus-option"),
        (["--dsn", "not a dsn"], "malformed DSN"),
        (["--dsn", "mysql://u:p@localhost/db"], "PostgreSQL only"),
        (["--dsn", "postgresql+odbc://u:p@localhost/db"], "driver 'odbc' is unknown"),
        (["--output", "/nonexistent-dir/out.json"], "--output"),
        (["--mode", "window", "--threads", "4"], "--threads is the sync mode's concurrency; --mode window has none"),
        (["--mode", "sync", "--chunk", "10"], "--chunk is the async modes' concurrency; --mode sync has none"),
        (["--workload", "noop", "--dsn", "postgresql://u@/db?host=/tmp&port=5x"], "port='5x' is not a port number"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    result = run_cli(*args, "--ops" if "--ops" not in args else "--quiet", *([] if "--ops" in args else ["10"]))
    assert result.code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.system
def test_a_closed_stdout_is_one_line_and_exit_6() -> None:
    """`runner ... >&-`: "internal error: AttributeError" (sys.stdout is None), exit 1."""
    import subprocess
    import sys

    from tests.conftest import REPO

    done = subprocess.run(f"{sys.executable} -m runner --workload noop --ops 10 >&-", shell=True, cwd=REPO, capture_output=False,
                          stderr=subprocess.PIPE, text=True, timeout=60)
    assert done.returncode == 6 and done.stderr.strip() == "runner: error: stdout is closed: the results have nowhere to go (redirect it, e.g. > run.json)"


@pytest.mark.system
@pytest.mark.parametrize(("content", "needle"), [(b"\x89PNG\x00\xff", "is not text"), (b'{"schema_version": 1, "totals": {}}', "lacks a figure")])
def test_garbage_or_a_wrong_shaped_document_is_one_line(tmp_path: object, content: bytes, needle: str) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "doc.json"
    path.write_bytes(content)
    for args in (["report", str(path), "-o", str(Path(str(tmp_path)) / "r")], ["compare", str(path), str(path)]):
        result = run_runner(*args)
        assert result.code == 2 and result.stderr.count("\n") == 1 and needle in result.stderr, (args, result.stderr)


@pytest.mark.system
def test_connection_refused_is_one_line_exit_3_without_password() -> None:
    result = run_runner("--ops", "10", dsn="postgresql://bench:s3cretpw@127.0.0.1:1/bench")
    assert result.code == 3
    assert result.stderr.strip().count("\n") == 0
    assert "connection refused" in result.stderr
    assert "s3cretpw" not in result.stderr + result.stdout


@pytest.mark.system
def test_database_that_does_not_exist(dsn: str) -> None:
    result = run_runner("--ops", "10", dsn=dsn.rsplit("/", 1)[0] + "/no_such_db")
    assert result.code == 3
    assert "does not exist" in result.stderr and result.stderr.strip().count("\n") == 0


@pytest.mark.system
def test_help_has_examples_and_version_prints() -> None:
    helped = run_runner("--help")
    assert helped.code == 0 and "Examples:" in helped.stdout and "--procs" in helped.stdout
    version = run_runner("--version")
    assert version.code == 0 and "runner" in version.stdout


@pytest.mark.system
def test_sweep_script_runs_a_grid_resumes_and_reports(dsn: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import os
    import shutil
    import subprocess
    import sys

    from tests.conftest import REPO

    if shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    out = tmp_path / "sweep.jsonl"
    argv = ["scripts/sweep.sh", "-p", "1 2", "-g", "layer=orm raw", "-o", str(out), "--", "--ops", "40", "--dsn", dsn]
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((d["config"]["procs"], d["config"]["layer"]) for d in lines) == [
        (1, "orm"), (1, "raw"), (2, "orm"), (2, "raw")
    ]
    assert all(d["totals"]["ok"] == 40 for d in lines)
    assert (tmp_path / "sweep-report" / "summary.md").exists()
    again = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0 and again.stderr.count("skip") == 4
    assert len(out.read_text().splitlines()) == 4  # resumed: nothing ran twice


@pytest.mark.system
def test_seed_experiment_script_prints_the_table_and_the_picture(dsn: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import shutil
    import subprocess
    import sys

    from tests.conftest import REPO

    if shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    out = tmp_path / "seed"
    proc = subprocess.run(
        ["scripts/seed_experiment.sh", "-n", "120", "-o", str(out), "--", "--dsn", dsn],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHON": sys.executable},
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("sync ", "async "))]
    assert [r.split("|")[0].strip() for r in rows] == ["sync", "async", "async chunked 40"]
    assert rows[0].split("|")[1].strip() == "202"  # the post's figure, next to ours
    assert (out / "report" / "connections_over_time.png").stat().st_size > 5_000
