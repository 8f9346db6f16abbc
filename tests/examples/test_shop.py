"""The README's walkthrough: examples/shop benchmarked end to end, in every mode it implements."""

from __future__ import annotations

import pytest

from tests.conftest import query, run_runner

SHOP = ("--workload", "examples.shop.bench", "--scale", "2000", "--quiet")


@pytest.mark.parametrize(
    "args",
    [
        ("--keys", "zipf", "--procs", "2", "--ops", "600"),
        ("--mode", "window", "--chunk", "8", "--ops", "300"),
        ("--mode", "sync", "--threads", "4", "--ops", "300"),
        ("--mode", "sync", "--driver", "psycopg", "--ops", "200"),
        ("--mode", "async", "--driver", "psycopg", "--ops", "200"),
        ("--rate", "150", "--duration", "2"),
    ],
)
@pytest.mark.system
def test_the_shop_runs_and_leaves_the_rows_its_checkouts_made(dsn: str, args: tuple[str, ...]) -> None:
    result = run_runner(*SHOP, *args, dsn=dsn)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None and doc["complete"] and doc["totals"]["errors"] == 0
    assert set(doc["totals"]["by_op"]) == {"product_page", "recent_orders", "recent_orders_lazy", "checkout"}
    checkouts = doc["totals"]["by_op"]["checkout"]["ok"]
    assert doc["database"]["rows"] == {"users": 2000, "products": 2000, "orders": 2000 + checkouts, "order_lines": 2000 + 2 * checkouts}
    assert query(dsn, "SELECT count(*) FROM runner.order_lines") == 2000 + 2 * checkouts
    assert query(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'shop'") == 0


@pytest.mark.system
def test_the_walkthrough_shows_the_n_plus_one(dsn: str) -> None:
    result = run_runner(*SHOP[:-1], "--ops", "400", dsn=dsn)
    assert result.code == 0, result.stderr
    doc = result.doc
    assert doc is not None
    lazy = doc["totals"]["by_op"]["recent_orders_lazy"]["anatomy"]
    eager = doc["totals"]["by_op"]["recent_orders"]["anatomy"]
    assert lazy["statements_per_op"] == 21.0 and eager["statements_per_op"] == 2.0
    assert "recent_orders_lazy sends one statement 20.0 times per op" in result.stderr
    assert "recent_orders sends" not in result.stderr
