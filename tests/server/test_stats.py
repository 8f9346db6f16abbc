"""The pure parts of the server-side telemetry: statement deltas and the summary's insights."""

from __future__ import annotations

from runner.server.stats import _top_statements, insights


def test_top_statements_are_deltas_ranked_by_time() -> None:
    before = {1: ("SELECT a", 10, 100.0), 2: ("SELECT b", 5, 50.0)}
    after = {1: ("SELECT a", 12, 110.0), 2: ("SELECT b", 9, 250.0), 3: ("INSERT c", 4, 20.0)}
    top = _top_statements(before, after)
    assert [(s["query"], s["calls"], s["total_ms"]) for s in top] == [
        ("SELECT b", 4, 200.0),
        ("INSERT c", 4, 20.0),
        ("SELECT a", 2, 10.0),
    ]


def test_insights_name_seq_scans_deadlocks_and_temp_files() -> None:
    stats = {
        "tables": {
            "a": {"seq_scan": 3, "seq_tup_read": 30, "idx_scan": 900, "n_tup_ins": 0},
            "b": {"seq_scan": 17_500, "seq_tup_read": 700_000_000, "idx_scan": 0, "n_tup_ins": 0},
        },
        "database": {"deadlocks": 2, "temp_bytes": 4096},
    }
    lines = insights(stats)
    assert lines[0].startswith("b was seq-scanned 17,500 times")
    assert not any(line.startswith("a was") for line in lines)  # mostly index scans: nothing to say
    assert "2 deadlocks" in lines and any("temp files" in line for line in lines)
