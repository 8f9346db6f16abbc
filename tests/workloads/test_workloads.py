"""Every workload and layer against the real server; the README's example workload runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO, query, run_cli, run_runner


@pytest.mark.system
@pytest.mark.parametrize("workload", ["seed", "seed-indexed", "point-select", "tpcb"])
@pytest.mark.parametrize("layer", ["orm", "core", "raw"])
def test_every_layer_leaves_the_rows_its_ops_committed(dsn: str, workload: str, layer: str) -> None:
    result = run_runner("--workload", workload, "--layer", layer, "--ops", "120", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None and doc["totals"]["ok"] == 120
    assert doc["database"]["rows"] == doc["database"]["expected_rows"]
    for table, rows in doc["database"]["rows"].items():
        assert query(dsn, f"SELECT count(*) FROM runner.{table}") == rows


@pytest.mark.system
def test_the_index_is_what_seed_indexed_adds(dsn: str) -> None:
    plain = run_runner("--workload", "seed", "--ops", "200", "--quiet", dsn=dsn).doc
    indexed = run_runner("--workload", "seed-indexed", "--ops", "200", "--quiet", dsn=dsn).doc
    assert plain is not None and indexed is not None
    assert plain["server"]["stats"]["tables"]["b"]["idx_scan"] == 0
    assert indexed["server"]["stats"]["tables"]["b"]["idx_scan"] > 0


@pytest.mark.system
@pytest.mark.parametrize(("mode", "layer"), [("chunked", "orm"), ("sync", "orm"), ("sync", "raw"), ("window", "raw")])
def test_psycopg3_driver(dsn: str, mode: str, layer: str) -> None:
    result = run_runner("--driver", "psycopg", "--mode", mode, "--layer", layer, "--ops", "100", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    assert result.doc is not None and result.doc["totals"]["ok"] == 100
    assert result.doc["config"]["driver"] == "psycopg" and result.doc["environment"]["psycopg"]


@pytest.mark.system
def test_the_readme_example_workload_runs(dsn: str, tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    example = re.search(r"```python\n# counter.py\n(.*?)```", readme, re.S)
    assert example is not None
    path = tmp_path / "counter.py"
    path.write_text(example.group(1))
    result = run_runner("--workload", str(path), "--ops", "200", "--procs", "2", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None and doc["totals"]["ok"] == 200
    assert doc["database"]["rows"]["note"] == doc["totals"]["by_op"]["add"]["ok"]
    assert query(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'app'") == 0
    sync = run_runner("--workload", str(path), "--mode", "sync", "--ops", "10", dsn=dsn)
    assert sync.code == 2 and "op 'add' of workload 'counter' has no sync orm implementation" in sync.stderr


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        (None, "does not exist"),
        ("import no_such_module_anywhere\n", "does not import: ModuleNotFoundError"),
        ("x = 1\n", "must hold exactly one workload"),
    ],
)
def test_a_bad_workload_file_is_one_line(tmp_path: Path, source: str | None, needle: str) -> None:
    path = tmp_path / "bad.py"
    if source is not None:
        path.write_text(source)
    result = run_cli("--workload", str(path), "--ops", "10")
    assert result.code == 2 and needle in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--layer", "assembly"], "unknown --layer"),
        (["--driver", "psycopg2"], "does not run the async modes"),
        (["--driver", "asyncpg", "--mode", "sync"], "does not run the sync modes"),
    ],
)
def test_bad_layer_and_driver(args: list[str], needle: str) -> None:
    result = run_cli(*args, "--ops", "10")
    assert result.code == 2 and needle in result.stderr


@pytest.mark.system
@pytest.mark.parametrize(("keys", "hot_only"), [("hotspot:0.01:1", True), ("uniform", False)])
def test_tpcb_picks_its_accounts_by_keys(dsn: str, keys: str, hot_only: bool) -> None:
    result = run_runner("--workload", "tpcb", "--keys", keys, "--ops", "200", "--quiet", dsn=dsn)
    assert result.code == 0, result.stderr
    assert result.doc is not None and result.doc["config"]["keys"] == keys
    touched_cold = query(dsn, "SELECT count(*) FROM runner.history WHERE aid > 1000")  # the hot 1 %: accounts 1-1000
    assert (touched_cold == 0) is hot_only


def test_tpcb_sends_the_same_statements_with_positional_parameters(dsn: str) -> None:
    # The DB-API raw op passes its arguments by position (psycopg2 parses named ones on every
    # call); what reaches the server must be what the named form, written from STATEMENTS, sends.
    import psycopg2

    from workloads import tpcb

    names = "|".join(tpcb.ORDER)  # not ::text
    named = [re.sub(rf":({names})\b", r"%(\1)s", statement) for statement in tpcb.STATEMENTS]
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            for params in ({"aid": 1, "tid": 2, "bid": 1, "delta": -3}, {"aid": 99_999, "tid": 10, "bid": 1, "delta": 5000}):
                sent = [cur.mogrify(sql, arguments(params)) for sql, arguments in tpcb.FORMAT_CALLS]
                assert sent == [cur.mogrify(sql, params) for sql in named]
    finally:
        conn.close()
