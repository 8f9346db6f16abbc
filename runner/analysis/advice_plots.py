"""`runner report advice.json`: the pictures and summary of a `runner advise` document.

Three plots: throughput against ops in flight per family and process count, the points measured
and the Universal Scalability Law fitted to them (the band is the fit's root-mean-square relative
residual around the curve: how far the points stray from it); p99 against throughput for every
step, with the Pareto front (no other step both faster and quicker); and the connections each
step held against its throughput, with --max-connections.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from runner.advise.usl import Fit
from runner.analysis.figure import finish

CURVE_POINTS = 80


def _law(entry: dict[str, Any]) -> Fit | None:
    if entry.get("lambda_per_s") is None:
        return None
    return Fit(float(entry["lambda_per_s"]), float(entry["sigma"]), float(entry["kappa"]))


def residual(law: Fit, points: list[tuple[float, float]]) -> float:
    """The root-mean-square of (measured - predicted) / predicted over the points."""
    errors = [(x - law.throughput(n)) / law.throughput(n) for n, x in points if law.throughput(n) > 0]
    return math.sqrt(sum(e * e for e in errors) / len(errors)) if errors else 0.0


def _recommended(doc: dict[str, Any]) -> tuple[str, int, float] | None:
    rec = doc.get("recommendation") or {}
    if rec.get("family") is None:
        return None
    return str(rec["family"]), int(rec["procs"]), float(rec["width"] * rec["procs"])


def _throughput(plt: Any, doc: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    chosen = _recommended(doc)
    for entry in doc["fits"]:
        points = [(float(p["concurrency"]), float(p["ops_per_s"])) for p in entry["points"]]
        if not points:
            continue
        label = f"{entry['family']}, procs={entry['procs']}"
        marks = ax.plot([p[0] for p in points], [p[1] for p in points], "o", label=label)[0]
        law = _law(entry)
        if law is not None:
            top = max(n for n, _ in points) * 1.5
            xs = [1 + (top - 1) * i / (CURVE_POINTS - 1) for i in range(CURVE_POINTS)]
            ys = [law.throughput(n) for n in xs]
            band = residual(law, points)
            ax.plot(xs, ys, "-", color=marks.get_color(), linewidth=1)
            ax.fill_between(xs, [y * (1 - band) for y in ys], [y * (1 + band) for y in ys], color=marks.get_color(), alpha=0.12)
        if chosen is not None and chosen[:2] == (entry["family"], entry["procs"]):
            x = chosen[2]
            y = max((p[1] for p in points if p[0] == x), default=None)
            if y is not None:
                ax.plot([x], [y], "*", color="black", markersize=14, label="recommended", zorder=4)
    finish(plt, fig, ax, path, "ops in flight in all (width x procs)", "ops/s", "Throughput by concurrency: measured points, USL fit (band: its RMS residual)")


def pareto(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps no other step beats on both throughput (higher) and p99 (lower), by throughput."""
    usable = [s for s in steps if s.get("ops_per_s") and s.get("p99_ms") is not None]

    def beaten(step: dict[str, Any]) -> bool:
        return any(
            o["ops_per_s"] >= step["ops_per_s"] and o["p99_ms"] <= step["p99_ms"] and (o["ops_per_s"], o["p99_ms"]) != (step["ops_per_s"], step["p99_ms"])
            for o in usable
        )

    return sorted((s for s in usable if not beaten(s)), key=lambda s: s["ops_per_s"])


def _families(steps: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        groups.setdefault(f"{step['family']}, procs={step['procs']}", []).append(step)
    return groups


def _pareto_plot(plt: Any, doc: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for label, steps in sorted(_families(doc["steps"]).items()):
        shown = [s for s in steps if s.get("ops_per_s") and s.get("p99_ms") is not None]
        ax.scatter([s["ops_per_s"] for s in shown], [s["p99_ms"] for s in shown], label=label, alpha=0.7)
    front = pareto(doc["steps"])
    if front:
        ax.step([s["ops_per_s"] for s in front], [s["p99_ms"] for s in front], where="post", color="black", linewidth=1, label="Pareto front")
    slos = (doc.get("constraints") or {}).get("slos") or []
    ax.set_yscale("log")
    finish(plt, fig, ax, path, "ops/s", "p99 latency, worst op (ms)", "p99 by throughput, every step" + (f" (SLOs: {', '.join(slos)})" if slos else ""))


def _connections_plot(plt: Any, doc: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for label, steps in sorted(_families(doc["steps"]).items()):
        shown = [s for s in steps if s.get("ops_per_s") and s.get("connections") is not None]
        ax.scatter([s["ops_per_s"] for s in shown], [s["connections"] for s in shown], label=label, alpha=0.7)
    budget = (doc.get("constraints") or {}).get("max_connections")
    if budget is not None:
        ax.axhline(budget, color="red", linestyle="--", linewidth=1, label=f"--max-connections {budget}")
    finish(plt, fig, ax, path, "ops/s", "connections held", "Connections each step held, by throughput")


def _summary(name: str, doc: dict[str, Any], pictures: list[str]) -> list[str]:
    rec = doc.get("recommendation") or {}
    lines = [f"## Advice: {name}", "", f"**{rec.get('verdict') or 'no recommendation'}**", ""]
    if doc.get("comparisons"):
        lines += ["| A | B | rounds | ratio B/A | 95 % interval | decided | verdict |", "|---|---|---|---|---|---|---|"]
        for c in doc["comparisons"]:
            ratio = "n/a" if c["ratio"] is None else f"{c['ratio']:.3f}"
            interval = "n/a" if c["low"] is None else f"[{c['low']:.3f}, {c['high']:.3f}]"
            lines.append(f"| {c['a']} | {c['b']} | {c['rounds']} | {ratio} | {interval} | {c['decided']} | {c['verdict']} |")
        lines.append("")
    lines += ["| family | procs | points | λ ops/s | σ | κ | N* | peak ops/s | RMS residual |", "|---|---|---|---|---|---|---|---|---|"]
    for entry in doc["fits"]:
        law = _law(entry)
        points = [(float(p["concurrency"]), float(p["ops_per_s"])) for p in entry["points"]]
        rms = f"{residual(law, points):.1%}" if law is not None else "n/a"
        lines.append(
            f"| {entry['family']} | {entry['procs']} | {len(points)} | {entry['lambda_per_s']} | {entry['sigma']} | {entry['kappa']} "
            f"| {entry['peak_concurrency']} | {entry['peak_ops_per_s']} | {rms} |"
        )
    return [*lines, "", *(f"![{p}]({p})" for p in pictures), ""]


def write_advice(plt: Any, name: str, doc: dict[str, Any], out_dir: Path, suffix: str = "") -> tuple[list[Path], list[str]]:
    """The three pictures of one advice document, and its part of summary.md."""
    pictures = {
        f"advice_throughput{suffix}.png": _throughput,
        f"advice_pareto{suffix}.png": _pareto_plot,
        f"advice_connections{suffix}.png": _connections_plot,
    }
    for filename, draw in pictures.items():
        draw(plt, doc, out_dir / filename)
    return [out_dir / f for f in pictures], _summary(name, doc, list(pictures))
