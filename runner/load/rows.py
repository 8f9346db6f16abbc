"""How many rows each table gets: --scale's unit times the workload's proportions, or a table's
rows given on the command line (`--scale 1000,posts=50000`)."""

from __future__ import annotations

from runner.errors import UsageError
from workloads import Workload


def parse_scale(text: str | None) -> tuple[int | None, tuple[tuple[str, int], ...]]:
    """`N`, `table=rows,...`, or both (`1000,posts=50000`) -> (the unit, the tables given)."""
    if text is None:
        return None, ()
    unit: int | None = None
    tables: list[tuple[str, int]] = []
    for item in (part.strip() for part in text.split(",")):
        name, equals, number = item.rpartition("=")
        try:
            rows = int(number.replace("_", ""))
        except ValueError:
            raise UsageError(f"--scale: {item!r} is not N or table=N (e.g. --scale 1000 or --scale 1000,posts=50000)") from None
        if rows < 1:
            raise UsageError(f"--scale must be at least 1, got {item!r}")
        if not equals:
            if unit is not None:
                raise UsageError(f"--scale: two units ({unit} and {rows}); give N once, and table=N for the rest")
            unit = rows
        elif not name or name in dict(tables):
            raise UsageError(f"--scale: {item!r}: {'no table named' if not name else 'table given twice'}")
        else:
            tables.append((name, rows))
    return unit, tuple(tables)


def table_rows(workload: Workload, unit: int | None, given: tuple[tuple[str, int], ...] = ()) -> tuple[int, dict[str, int]]:
    """The unit and each table's rows. Without a unit, the first table given sets it (its rows over
    its proportion). A table's rows: as given, or its proportion of the unit (at least 1)."""
    proportions = workload.data.proportions
    names = [str(t.name) for t in workload.metadata.sorted_tables]
    for name, _ in given:
        if name not in names:
            raise UsageError(f"--scale: workload {workload.name!r} has no table {name!r} (its tables: {', '.join(names)})")
    if unit is None:
        if not given:
            raise UsageError("--scale: no unit and no table given")
        name, rows = given[0]
        unit = max(1, round(rows / proportions.get(name, 1.0)))
    rows_given = dict(given)
    return unit, {name: rows_given.get(name, max(1, round(unit * proportions.get(name, 1.0)))) for name in names}
