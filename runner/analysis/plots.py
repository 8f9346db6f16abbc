"""`runner report`: a folder of PNG plots and a Markdown summary for any set of results.

matplotlib is an optional extra (`pip install '.[plot]'`); it is imported only here.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from runner.analysis.report import scenario_name
from runner.errors import UsageError

PNG_DPI = 110


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UsageError("runner report needs matplotlib: pip install '.[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    return plt


def _p99(doc: dict[str, Any]) -> float:
    return max((op["latency_ms"]["p99"] for op in doc["totals"]["by_op"].values()), default=0.0)


def _label(name: str, doc: dict[str, Any]) -> str:
    return f"{scenario_name(doc['config'])} ({Path(name.split(':')[0]).name}{':' + name.split(':')[1] if ':' in name else ''})"


def _by_chunk(plt: Any, results: list[tuple[str, dict[str, Any]]], value: Any, ylabel: str, path: Path) -> None:
    """One line per (mode, procs): the value against --chunk."""
    lines: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for _, doc in results:
        config = doc["config"]
        lines[f"{config['mode']}, procs={config['procs']}"].append((config["chunk"], value(doc)))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in sorted(lines.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.set_xlabel("--chunk (ops in flight per worker)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=PNG_DPI)
    plt.close(fig)


def _timeline_points(doc: dict[str, Any], value: Any) -> list[tuple[float, float]]:
    return [(0.0, 0.0)] + [(e["elapsed_s"], value(e)) for e in doc.get("timeline") or []]


def _connection_points(doc: dict[str, Any]) -> list[tuple[float, float]]:
    """The sampler's own series (every 0.1 s) where the document has it, else the timeline's."""
    series = doc["totals"]["connections"].get("series")
    if series:
        return [(t, total) for t, total in series]
    return _timeline_points(doc, lambda e: e["server_connections"]["total"])


def stage_boundaries(doc: dict[str, Any]) -> list[float]:
    """The start of every --stages step after the first (seconds since the start barrier)."""
    return [stage["start_s"] for stage in (doc.get("stages") or [])[1:]]


def _over_time(plt: Any, results: list[tuple[str, dict[str, Any]]], points: Any, ylabel: str, title: str, path: Path) -> None:
    """Every run on one graph over time (the seed's DBeaver picture)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    boundaries: set[float] = set()
    for name, doc in results:
        xy = points(doc)
        ax.plot([p[0] for p in xy], [p[1] for p in xy], label=_label(name, doc))
        boundaries.update(stage_boundaries(doc))
    for x in sorted(boundaries):  # --stages: where each step begins
        ax.axvline(x, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("seconds since the start barrier")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=PNG_DPI)
    plt.close(fig)


def _summary(results: list[tuple[str, dict[str, Any]]], pictures: list[str]) -> str:
    lines = [
        "# runner report",
        "",
        f"{len(results)} run(s). Figures are defined in the runner's README.",
        "",
        "| source | scenario | layer | workload | ops | wall s | ops/s | p99 ms (worst op) | peak server connections | errors | complete |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, doc in results:
        totals, config = doc["totals"], doc["config"]
        lines.append(
            f"| {name} | {scenario_name(config)} | {config.get('layer', 'orm')} | {config['workload']} | {totals['ops']} "
            f"| {totals['wall_s']:.2f} | {totals['ops_per_s']:.1f} | {_p99(doc):.2f} "
            f"| {totals['connections']['server_peak']} | {totals['errors']} | {doc['complete']} |"
        )
    best_name, best = max(results, key=lambda r: r[1]["totals"]["ops_per_s"])
    lines += ["", f"Best ops/s: {best['totals']['ops_per_s']:.1f} ({scenario_name(best['config'])}, {best_name}).", ""]
    lines += [f"![{p}]({p})" for p in pictures]
    return "\n".join(lines) + "\n"


def write_report(results: list[tuple[str, dict[str, Any]]], out_dir: Path) -> list[Path]:
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    pictures = {
        "ops_per_s_vs_chunk.png": lambda p: _by_chunk(plt, results, lambda d: d["totals"]["ops_per_s"], "ops/s", p),
        "p99_vs_chunk.png": lambda p: _by_chunk(plt, results, _p99, "p99 latency, worst op (ms)", p),
        "connections_over_time.png": lambda p: _over_time(
            plt, results, _connection_points, "server connections", "Server connections over time", p
        ),
        "ops_per_s_over_time.png": lambda p: _over_time(
            plt, results, lambda d: _timeline_points(d, lambda e: e["ops_per_s"]), "ops/s", "Throughput over time", p
        ),
    }
    written = []
    for filename, draw in pictures.items():
        draw(out_dir / filename)
        written.append(out_dir / filename)
    summary = out_dir / "summary.md"
    summary.write_text(_summary(results, list(pictures)))
    return [summary, *written]
