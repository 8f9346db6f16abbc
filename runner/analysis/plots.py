"""`runner report`: a folder of PNG plots and a Markdown summary for any set of results.

matplotlib is an optional extra (`pip install '.[plot]'`); it is imported only here.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.analysis.advice_plots import write_advice
from runner.analysis.figure import finish
from runner.analysis.report import scenario_name
from runner.analysis.results import is_advice, is_capacity
from runner.concurrency import MODES
from runner.errors import UsageError
from runner.result import QUANTILES, Result
from runner.settings import SETTINGS
from runner.spec import Options


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UsageError("runner report needs matplotlib: pip install '.[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    return plt


def _p99(result: Result) -> float:
    """The worst op type's p99."""
    return max((result.figure(f"{op}.p99") or 0.0 for op in result.ops), default=0.0)


def _ops_per_s(result: Result) -> float:
    return result.figure("ops_per_s") or 0.0


def _label(result: Result) -> str:
    name = result.name
    return f"{scenario_name(result.doc['config'])} ({Path(name.split(':')[0]).name}{':' + name.split(':')[1] if ':' in name else ''})"


# Options that say nothing about how a run was loaded: never an axis.
NOT_AXES = frozenset({"seed", "output", "dsn", "quiet", "jsonl", "debug", "checks", "prometheus_port", "repeat", "exemplars"})


def width(result: Result) -> int:
    """Ops in flight per worker as the run's mode counts them: --threads (sync), else --chunk."""
    options = result.options
    return options.threads if MODES.get(options.mode) is not None and MODES[options.mode].width == "threads" else options.chunk


def varied(results: list[Result]) -> list[str]:
    """The options that differ between the runs (a sweep's axes), "width" for the ops in flight
    per worker whichever option set them."""
    names = ["width"] if len({width(r) for r in results}) > 1 else []
    for field in dataclasses.fields(Options):
        if field.name in NOT_AXES or field.name in ("chunk", "threads"):
            continue
        if len({repr(getattr(r.options, field.name)) for r in results}) > 1:
            names.append(field.name)
    return names


def axis(results: list[Result]) -> tuple[str, str, Callable[[Result], float]]:
    """The x axis of a sweep's plots: the first numeric option that varied (ops in flight per
    worker first), else the run's place in the files. (option, label, value)."""
    for name in varied(results):
        if name == "width":
            return name, "ops in flight per worker (--chunk, or --threads in sync mode)", lambda r: float(width(r))
        if all(isinstance(getattr(r.options, name), int | float) and not isinstance(getattr(r.options, name), bool) for r in results):
            flag = next((setting.flag for setting in SETTINGS if name in setting.fields), name)
            return name, f"{flag} ({name})", lambda r, n=name: float(getattr(r.options, n))
    return "run", "run (in the order given)", lambda r: float(results.index(r) + 1)


def _by_axis(plt: Any, results: list[Result], value: Callable[[Result], float], ylabel: str, path: Path) -> None:
    """One line per combination of the other varied options: the value against the sweep's axis,
    with --repeat's min-max as an error bar."""
    name, xlabel, x = axis(results)
    others = [n for n in varied(results) if n != name]
    lines: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    for result in results:
        label = _varied_text(result, others, "all runs")
        y = value(result)
        spread = result.spread("ops_per_s") if value is _ops_per_s else None
        low, high = (y - spread.min, spread.max - y) if spread else (0.0, 0.0)
        lines[label].append((x(result), y, low, high))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in sorted(lines.items()):
        points.sort()
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[[p[2] for p in points], [p[3] for p in points]], marker="o", capsize=3, label=label)
    finish(plt, fig, ax, path, xlabel, ylabel, legend=None)


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


def _over_time(plt: Any, results: list[Result], points: Any, ylabel: str, title: str, path: Path) -> None:
    """Every run on one graph over time (the seed's DBeaver picture)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    boundaries: set[float] = set()
    for result in results:
        xy = points(result.doc)
        ax.plot([p[0] for p in xy], [p[1] for p in xy], label=_label(result))
        boundaries.update(stage_boundaries(result.doc))
    for x in sorted(boundaries):  # --stages: where each step begins
        ax.axvline(x, color="grey", linestyle=":", linewidth=1)
    finish(plt, fig, ax, path, "seconds since the start barrier", ylabel, title)


def _summary(results: list[Result], pictures: list[str]) -> str:
    lines = [
        "# runner report",
        "",
        f"{len(results)} run(s). Figures are defined in the runner's README.",
        "",
        "| source | scenario | varied | layer | workload | ops | wall s | ops/s | p99 ms (worst op) | peak server connections | errors | complete |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    axes = varied(results)
    for result in results:
        config = result.doc["config"]
        figure = result.figure
        lines.append(
            f"| {result.name} | {scenario_name(config)} | {_varied_text(result, axes)} | {config.get('layer', 'orm')} | {config['workload']} | {figure('ops'):.0f} "
            f"| {figure('wall_s'):.2f} | {_ops_per_s(result):.1f} | {_p99(result):.2f} "
            f"| {figure('connections.peak'):.0f} | {figure('errors'):.0f} | {result.complete} |"
        )
    best = max(results, key=_ops_per_s)
    lines += ["", f"Best ops/s: {_ops_per_s(best):.1f} ({scenario_name(best.doc['config'])}, {best.name}).", ""]
    lines += [f"![{p}]({p})" for p in pictures]
    return "\n".join(lines) + "\n"


def _varied_text(result: Result, axes: list[str], none: str = "-") -> str:
    """The run's value of each varied option: `width=8, driver=psycopg`."""
    return ", ".join(f"{n}={width(result) if n == 'width' else getattr(result.options, n)}" for n in axes) or none


def _capacity_plot(plt: Any, name: str, doc: dict[str, Any], path: Path) -> None:
    """p99 per op type against the offered rate, one point per step (hollow: the step failed),
    each latency SLO as a horizontal line and the capacity found as a vertical one."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    steps = sorted(doc["steps"], key=lambda s: s["rate_per_s"])
    for op in sorted({op for s in steps for op in s["latency_ms"]}):
        points = [(s["rate_per_s"], s["latency_ms"][op]["p99"], s["pass"]) for s in steps if op in s["latency_ms"]]
        line = ax.plot([p[0] for p in points], [p[1] for p in points], label=f"{op} p99")[0]
        failed = [p for p in points if not p[2]]
        ax.scatter([p[0] for p in failed], [p[1] for p in failed], facecolors="none", edgecolors=line.get_color(), zorder=3)
        ax.scatter([p[0] for p in points if p[2]], [p[1] for p in points if p[2]], color=line.get_color(), zorder=3)
    for check in steps[0]["checks"] if steps else []:
        if check["figure"].rpartition(".")[2] in QUANTILES:
            ax.axhline(check["threshold"], color="red", linestyle="--", linewidth=1, label=f"SLO {check['check']}")
    if doc["capacity_per_s"] is not None:
        ax.axvline(doc["capacity_per_s"], color="green", linestyle=":", label=f"capacity {doc['capacity_per_s']:g}/s")
    ax.set_yscale("log")
    finish(plt, fig, ax, path, "offered rate (ops/s across all workers)", "p99 latency (ms)", f"Capacity search ({Path(name).name}): filled = step met every SLO")


def _capacity_summary(name: str, doc: dict[str, Any], picture: str) -> list[str]:
    answer = "none met the SLOs" if doc["capacity_per_s"] is None else f"{doc['capacity_per_s']:g} ops/s"
    lines = [
        f"## Capacity search: {name}",
        "",
        f"SLOs: {', '.join(doc['slos'])}. Capacity: {answer}; first failing rate: "
        f"{'none' if doc['first_failing_per_s'] is None else format(doc['first_failing_per_s'], 'g')} "
        f"({'; '.join(doc['broken']) or 'nothing broke'}).",
        "",
        "| step | offered ops/s | achieved ops/s | p99 ms (worst op) | errors | dropped | pass | what broke |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, step in enumerate(doc["steps"], 1):
        p99 = max((lat["p99"] for lat in step["latency_ms"].values()), default=0.0)
        lines.append(
            f"| {number} | {step['rate_per_s']:g} | {step['ops_per_s']:g} | {p99:.2f} | {step['errors']} | {step['dropped']} "
            f"| {step['pass']} | {'; '.join(step['broken'])} |"
        )
    return lines + ["", f"![{picture}]({picture})", ""]


def write_report(results: list[tuple[str, dict[str, Any]]], out_dir: Path) -> list[Path]:
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    searches = [(name, doc) for name, doc in results if is_capacity(doc) and not is_advice(doc)]
    advices = [(name, doc) for name, doc in results if is_advice(doc)]
    runs = [Result(doc, name) for name, doc in results if not is_capacity(doc)]
    written, text = _write_runs(plt, runs, out_dir) if runs else ([], "# runner report\n\n")
    for index, (name, doc) in enumerate(advices):
        pictures, lines = write_advice(plt, name, doc, out_dir, "" if len(advices) == 1 else f"_{index + 1}")
        written += pictures
        text += "\n".join(lines)
    for index, (name, doc) in enumerate(searches):
        picture = "capacity.png" if len(searches) == 1 else f"capacity_{index + 1}.png"
        _capacity_plot(plt, name, doc, out_dir / picture)
        written.append(out_dir / picture)
        text += "\n".join(_capacity_summary(name, doc, picture))
    summary = out_dir / "summary.md"
    summary.write_text(text)
    return [summary, *written]


def _write_runs(plt: Any, results: list[Result], out_dir: Path) -> tuple[list[Path], str]:
    pictures = {
        # The names are kept from when the axis was always --chunk: now it is whatever the sweep varied.
        "ops_per_s_vs_chunk.png": lambda p: _by_axis(plt, results, _ops_per_s, "ops/s", p),
        "p99_vs_chunk.png": lambda p: _by_axis(plt, results, _p99, "p99 latency, worst op (ms)", p),
        "connections_over_time.png": lambda p: _over_time(plt, results, _connection_points, "server connections", "Server connections over time", p),
        "ops_per_s_over_time.png": lambda p: _over_time(plt, results, lambda d: _timeline_points(d, lambda e: e["ops_per_s"]), "ops/s", "Throughput over time", p),
    }
    written = []
    for filename, draw in pictures.items():
        draw(out_dir / filename)
        written.append(out_dir / filename)
    return written, _summary(results, list(pictures))
