"""Figures and tables of ``wsnas evolve``: a search's candidates with its Pareto front, and the
validation of evolution against random search on a ground truth (:mod:`wsnas.analysis.evolve`).

* :func:`candidates_figure` -- every evaluated candidate, coloured by generation, with the front
  marked: score against each cost objective (one panel each), or, with accuracy as the only
  objective, score against the order of evaluation with the best so far;
* :func:`validation_figure` -- the true rank of the architecture found against the number of
  evaluations, mean and range over seeds per method, with the best true rank among the
  candidates (dotted) and the exhaustive supernet ranking's top-1 (dashed) where known;
* :func:`write_validation` -- that figure, ``validation.md`` (the table) and ``validation.csv``.

Figures are standalone matplotlib figures on the Agg canvas (:mod:`wsnas.report.figures`).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from wsnas.core.files import atomic_write
from wsnas.report.figures import fmt, new_figure, save_figure

#: Objective -> (the candidate's field, the axis label).
_AXES = {"params": ("params", "parameters"), "mflops": ("mflops", "MFLOPs"),
         "latency": ("latency_ms", "latency (ms, batch 1)")}
_METHOD_COLOURS = {"evolution": "#d62728", "random": "#1f77b4"}


def candidates_figure(candidates: Sequence[Mapping], objectives: Sequence[str], path: str | Path, *,
                      title: str = "") -> Path | None:
    """Every candidate (``score``, its costs, ``generation``, ``on_front``, in evaluation order)
    with the front marked; None (nothing written) without candidates."""
    if not candidates:
        return None
    costs = [o for o in objectives if o != "acc"]
    score = 100 * np.asarray([c["score"] for c in candidates], dtype=float)
    gen = np.asarray([c["generation"] for c in candidates], dtype=float)
    front = np.asarray([bool(c["on_front"]) for c in candidates])
    panels = costs or [None]
    fig = new_figure(5.2 * len(panels) + 0.8, 4.4)
    axes = [fig.add_subplot(1, len(panels), k + 1) for k in range(len(panels))]
    for ax, objective in zip(axes, panels):
        if objective is None:
            x = np.arange(1, len(candidates) + 1)
            ax.plot(x, np.maximum.accumulate(score), color="black", lw=1, label="best so far")
            ax.set_xlabel("evaluation")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            key, label = _AXES[objective]
            x = np.asarray([c[key] for c in candidates], dtype=float)
            ax.set_xlabel(label)
            order = np.argsort(x[front], kind="stable")
            if len(costs) == 1:
                ax.step(x[front][order], score[front][order], where="post", color="#d62728", lw=1, alpha=0.6)
        points = ax.scatter(x, score, c=gen, cmap="viridis", s=14, alpha=0.8, edgecolors="none")
        ax.scatter(x[front], score[front], s=60, facecolors="none", edgecolors="#d62728", linewidths=1.4,
                   label="Pareto front" if costs else "best")
        ax.set_ylabel("accuracy with shared weights (%)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    bar = fig.colorbar(points, ax=axes, label="generation")
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def validation_figure(analysis: Mapping, path: str | Path) -> Path:
    """The true rank of the architecture found against the number of evaluations (log scale)."""
    fig = new_figure(6.8, 4.6)
    ax = fig.add_subplot()
    budget = analysis["budget"]
    x = np.arange(1, budget + 1)
    for m in analysis["methods"]:
        colour = _METHOD_COLOURS.get(m, "#2ca02c")
        found = analysis["curves"][m]["found"].astype(float)
        seeds = len(found)
        ax.fill_between(x, found.min(axis=0), found.max(axis=0), color=colour, alpha=0.15, lw=0)
        ax.plot(x, found.mean(axis=0), color=colour, lw=1.6, label=f"{m}: found (mean of {seeds} seeds, range)")
        ax.plot(x, analysis["curves"][m]["best_evaluated"].mean(axis=0), color=colour, lw=1, ls=":",
                label=f"{m}: truly best candidate")
    ref = analysis.get("exhaustive")
    if ref:
        ax.axhline(ref["rank"], color="black", ls="--", lw=1,
                   label=f"supernet's top-1 of all {ref['evaluations']} (exhaustive)")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("evaluations")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"true rank of the architecture found (1 = best of {analysis['space_size']})")
    ax.set_title(f"against {analysis['truth']}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="best")
    return save_figure(fig, path)


def validation_markdown(analysis: Mapping) -> str:
    """The validation table in Markdown."""
    methods = analysis["methods"]
    head = ["evaluations"]
    for m in methods:
        head += [f"{m}: found rank, mean ± SD (min–max)", f"{m}: its true acc (%)", f"{m}: its score (%)",
                 f"{m}: best candidate's rank"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in analysis["rows"]:
        cells = [str(row["evaluations"])]
        for m in methods:
            cells += [f"{fmt(row[f'{m}_mean'], 1)} ± {fmt(row[f'{m}_sd'], 1)} ({row[f'{m}_min']}–{row[f'{m}_max']})",
                      fmt(100 * row[f"{m}_acc"], 2), fmt(100 * row[f"{m}_score"], 2),
                      fmt(row[f"{m}_evaluated_best"], 1)]
        lines.append("| " + " | ".join(cells) + " |")
    seeds = ", ".join(f"{m} {len(analysis['seeds'][m])}" for m in methods)
    text = [f"True rank (1 = best of {analysis['space_size']} in {analysis['truth']}) of the architecture each "
            f"search returns (its best score with shared weights) after n evaluations, its true accuracy and its "
            f"score, means over seeds ({seeds}); and the best true rank among the candidates.", "", *lines]
    ref = analysis.get("exhaustive")
    if ref:
        text += ["", f"Exhaustive: the supernet's top-1 over all {ref['evaluations']} architectures (score "
                 f"{fmt(100 * ref['score'], 2)}%) has true rank {ref['rank']} "
                 f"(true accuracy {fmt(100 * ref['acc'], 2)}%)."]
    return "\n".join(text) + "\n"


def write_validation(analysis: Mapping, out_dir: str | Path) -> dict[str, str]:
    """``validation.png``, ``validation.md`` and ``validation.csv`` in ``out_dir``; their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure = validation_figure(analysis, out / "validation.png")
    md = out / "validation.md"
    with atomic_write(md, "w") as f:
        f.write(validation_markdown(analysis))
    table = out / "validation.csv"
    rows = analysis["rows"]
    with atomic_write(table, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(list(rows[0]))
        for row in rows:
            w.writerow([repr(v) if isinstance(v, float) else v for v in row.values()])
    return {"figure": str(figure), "md": str(md), "csv": str(table)}


__all__ = ["candidates_figure", "validation_figure", "validation_markdown", "write_validation"]
