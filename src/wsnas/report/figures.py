"""The figures of the insights report, drawn from the dict of :func:`analyse_insights`.

Every figure is a function ``figure(analysis, path) -> Path | None``: it writes one PNG at
``path`` and returns it, or returns None (writing nothing) when the study has no data for it
(e.g. no fine-tuning run, no dense evaluation). Figures are built as standalone
:class:`matplotlib.figure.Figure` objects rendered by the Agg canvas, never through pyplot, so
no global plotting state is created or shared between figures, and no display is needed.

* ``scatter.png`` -- supernet accuracy (final epoch) against ground-truth accuracy of every
  child, one colour per instance of the ``seeds`` group;
* ``gt_tau_epochs.png`` -- GT-Tau after every epoch, one line per instance, coloured by group;
* ``gt_tau_dense.png`` -- GT-Tau after each of the last k mini-batches, one line per instance;
* ``rank_heatmap.png`` -- rank of every child across the dense steps of one instance, with the
  child trained in each step marked (the interference pattern);
* ``finetune.png`` -- GT-Tau, T1R and T3R while every child is fine-tuned from a snapshot;
* ``interference_matrix.png`` -- mean change of each child's accuracy across the mini-batches
  that trained each other child (from the dense evaluations);
* ``sharing_compute.png`` -- GT-Tau-Mean-k against the number of groups (and compute) and
  against the shared prefix, for a sharing sweep;
* ``strategies.png`` -- for a strategy comparison: the supernet's gradient variance during
  training (mean over seeds) and GT-Tau of every seed, per strategy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from wsnas.analysis.insights import dense_window
from wsnas.core.files import atomic_write

__all__ = [
    "FIGURES",
    "GROUP_COLOURS",
    "GROUP_ORDER",
    "GROUP_STYLES",
    "finetune",
    "fmt",
    "pct",
    "gt_tau_dense",
    "gt_tau_epochs",
    "interference_matrix",
    "rank_heatmap",
    "sharing_compute",
    "scatter",
    "strategies",
    "write_figures",
]

#: The supernet groups in the order of the paper's tables.
GROUP_ORDER = ("seeds", "orders", "shuffle")
#: One fixed colour per group, the same in every figure.
GROUP_COLOURS = {"seeds": "#1f77b4", "orders": "#ff7f0e", "shuffle": "#2ca02c"}
#: One line style per group, so that instances of two groups that coincide stay visible.
GROUP_STYLES = {"seeds": "-", "orders": "--", "shuffle": ":"}
_EXTRA_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_DPI = 110

FigureFunction = Callable[[dict, "str | Path"], "Path | None"]


def fmt(value: object, digits: int = 3) -> str:
    """A number with ``digits`` decimals, or an en dash when it is missing or undefined (NaN)."""
    if value is None or isinstance(value, bool):
        return "–"
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(x) or math.isinf(x) else f"{x:.{digits}f}"


def pct(value: object, digits: int = 2) -> str:
    """A fraction as a percentage with ``digits`` decimals (``fmt`` of 100 x value), or an en dash."""
    return fmt(None if value is None or isinstance(value, bool) or fmt(value) == "–" else 100 * float(value),
               digits)


def _instance_label(inst: dict) -> str:
    """The instance number ``k``, the last part of its run id ``<experiment>/<group>/<k>``."""
    return inst["run_id"].rsplit("/", 1)[-1]


def _groups(analysis: dict) -> Iterator[tuple[str, dict, str]]:
    """(name, group, colour) of every group, the paper's groups first."""
    groups = analysis.get("groups") or {}
    names = [g for g in GROUP_ORDER if g in groups] + [g for g in groups if g not in GROUP_ORDER]
    extra = iter(_EXTRA_COLOURS)
    for name in names:
        yield name, groups[name], GROUP_COLOURS.get(name) or next(extra, "#000000")


def _ceiling_tau(analysis: dict) -> float | None:
    """GT-Tau of one ground-truth training against the mean of the others, if known."""
    ceiling = (analysis.get("truth") or {}).get("ceiling") or {}
    value = ceiling.get("gt_tau_leave_one_out")
    return None if fmt(value) == "–" else float(value)


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # no "Software" entry: the same analysis gives byte-identical files
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=_DPI, metadata={"Software": None})
    return path


# --------------------------------------------------------------------------------------------
# the figures


def scatter(analysis: dict, path: str | Path) -> Path | None:
    """Supernet accuracy (final epoch) against ground-truth accuracy, per ``seeds`` instance.

    Falls back to the first group with final accuracies when the study has no ``seeds`` group.
    """
    truth = analysis.get("truth") or {}
    true_acc = dict(zip(truth.get("archs") or [], truth.get("accuracy") or []))
    groups = analysis.get("groups") or {}
    with_final = [g for g in groups if any("final" in i for i in groups[g]["instances"])]
    name = "seeds" if "seeds" in with_final else next(iter(with_final), None)
    if name is None or not true_acc:
        return None
    instances = [i for i in groups[name]["instances"] if "final" in i]
    fig = new_figure(6.4, 4.8)
    ax = fig.add_subplot()
    colours = [f"C{j % 10}" for j in range(len(instances))]
    for inst, colour in zip(instances, colours):
        pairs = [(true_acc[a], s) for a, s in zip(inst["archs"], inst["final"]["accuracy"])
                 if a in true_acc]
        if not pairs:
            continue
        x, y = (100 * np.asarray(v, dtype=float) for v in zip(*pairs))
        ax.scatter(x, y, s=18, alpha=0.75, color=colour, edgecolors="none",
                   label=f"{name} instance {_instance_label(inst)}: "
                         f"GT-Tau {fmt(inst['final'].get('gt_tau'))}")
    title = groups[name].get("title", name)
    ax.set_title(f"Shared-weight vs ground-truth accuracy of every child ({title})", fontsize=10)
    ax.set_xlabel("ground-truth accuracy (%), child trained alone")
    ax.set_ylabel("supernet accuracy (%), shared weights, final epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, path)


def gt_tau_epochs(analysis: dict, path: str | Path) -> Path | None:
    """GT-Tau after every epoch, one line per instance, coloured by group."""
    series = [(name, group, colour, inst) for name, group, colour in _groups(analysis)
              for inst in group["instances"] if inst.get("epochs")]
    if not series:
        return None
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    labelled: set[str] = set()
    for name, group, colour, inst in series:
        label = None if name in labelled else group.get("title", name)
        labelled.add(name)
        ax.plot(inst["epochs"], np.asarray(inst["epoch_gt_tau"], dtype=float), color=colour,
                linestyle=GROUP_STYLES.get(name, "-"), marker="o", markersize=3, linewidth=1.4,
                alpha=0.85, label=label)
    ceiling = _ceiling_tau(analysis)
    if ceiling is not None:
        ax.axhline(ceiling, color="0.3", linestyle="--", linewidth=1,
                   label=f"one ground-truth training vs the others ({ceiling:.3f})")
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("GT-Tau (Kendall tau vs ground truth)")
    ax.set_title("GT-Tau of every supernet instance after each epoch", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, path)


def gt_tau_dense(analysis: dict, path: str | Path) -> Path | None:
    """GT-Tau after each of the last k mini-batches, one line per instance, mean marked."""
    series = [(name, group, colour, inst) for name, group, colour in _groups(analysis)
              for inst in group["instances"] if inst.get("dense", {}).get("steps")]
    if not series:
        return None
    fig = new_figure(7.2, 4.2)
    ax = fig.add_subplot()
    labelled: set[str] = set()
    values = []
    for name, group, colour, inst in series:
        dense = inst["dense"]
        label = None if name in labelled else group.get("title", name)
        labelled.add(name)
        taus = np.asarray(dense["gt_tau"], dtype=float)
        values.append(taus[int(dense.get("first", 0)):])  # the last k mini-batches
        ax.plot(dense["steps"], taus, color=colour, linestyle=GROUP_STYLES.get(name, "-"),
                marker=".", markersize=4, linewidth=1.3, alpha=0.8, label=label)
    pooled = np.concatenate(values)
    pooled = pooled[~np.isnan(pooled)]
    if pooled.size:
        ax.axhline(float(pooled.mean()), color="black", linestyle="--", linewidth=1.2,
                   label=f"mean over instances and steps ({pooled.mean():.3f})")
    # cycle boundaries: every child has been trained once since the previous line
    n_children = len(series[0][3].get("archs") or [])
    lo = min(min(s[3]["dense"]["steps"]) for s in series)
    hi = max(max(s[3]["dense"]["steps"]) for s in series)
    boundaries = (range(math.ceil(lo / n_children) * n_children, hi + 1, n_children)
                  if n_children else range(0))
    for b in boundaries:
        ax.axvline(b, color="0.6", linestyle=(0, (1, 3)), linewidth=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("global step (mini-batch)" + (
        f"; grey dotted lines: every {n_children} steps (one cycle over the children)"
        if len(boundaries) else ""))
    ax.set_ylabel("GT-Tau")
    k = analysis.get("k")
    every = (analysis.get("study") or {}).get("dense_every", 1)
    ax.set_title(f"GT-Tau after {dense_window(k, every)}", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, path)


def rank_heatmap(analysis: dict, path: str | Path) -> Path | None:
    """Rank (1 = best) of each child across the dense steps; the trained child marked."""
    inter = analysis.get("interference")
    if not inter or not inter.get("rank_matrix"):
        return None
    ranks = np.asarray(inter["rank_matrix"], dtype=float)  # child x step
    if ranks.ndim != 2 or 0 in ranks.shape:
        return None
    archs = inter.get("archs") or [str(i) for i in range(ranks.shape[0])]
    steps = list(inter["steps"])
    n_children, n_steps = ranks.shape
    fig = new_figure(min(14.0, max(6.0, 2.5 + 0.09 * n_steps)), max(4.0, 1.6 + 0.115 * n_children))
    ax = fig.add_subplot()
    image = ax.imshow(ranks, aspect="auto", interpolation="nearest", cmap="viridis_r",
                      vmin=1, vmax=n_children)
    column = {s: j for j, s in enumerate(steps)}
    marked = [(column[s], c) for s, c in zip(inter.get("trained_step") or steps,
                                             inter.get("trained_col") or []) if s in column]
    if marked:
        xs, ys = zip(*marked)
        ax.scatter(xs, ys, marker="s", s=40, facecolors="none", edgecolors="red", linewidths=1.5)
    label_every = max(1, math.ceil(n_children / 64))
    ax.set_yticks(range(0, n_children, label_every))
    ax.set_yticklabels([archs[i] for i in range(0, n_children, label_every)], fontsize=5)
    tick_every = max(1, math.ceil(n_steps / 16))
    ax.set_xticks(range(0, n_steps, tick_every))
    ax.set_xticklabels([str(steps[j]) for j in range(0, n_steps, tick_every)], fontsize=7)
    ax.set_xlabel("global step (after this mini-batch); red square: the child trained in it")
    ax.set_ylabel("child")
    every = inter.get("every", 1)
    ax.set_title(f"Rank of every child after {dense_window(n_steps * every, every)} "
                 f"({inter.get('run_id', '')})", fontsize=10)
    bar = fig.colorbar(image, ax=ax, label="rank (1 = best, at the top)", shrink=0.8)
    bar.ax.invert_yaxis()
    return save_figure(fig, path)


def finetune(analysis: dict, path: str | Path) -> Path | None:
    """GT-Tau (left axis) and T1R/T3R (right axis) against the fine-tuning step."""
    ft = analysis.get("finetune")
    if not ft or not ft.get("steps"):
        return None
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    steps = ft["steps"]
    lines = ax.plot(steps, np.asarray(ft["gt_tau"], dtype=float), color="C0", marker="o",
                    linewidth=1.6, label="GT-Tau (left axis)")
    ceiling = _ceiling_tau(analysis)
    if ceiling is not None:
        lines += [ax.axhline(ceiling, color="0.3", linestyle="--", linewidth=1,
                             label=f"one ground-truth training vs the others ({ceiling:.3f})")]
    ax.set_xlabel("fine-tuning step (0 = the supernet snapshot)")
    ax.set_ylabel("GT-Tau")
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    right = ax.twinx()
    for key, colour, marker in (("t1r", "C3", "s"), ("t3r", "C2", "^")):
        if ft.get(key):
            lines += right.plot(steps, np.asarray(ft[key], dtype=float), color=colour,
                                marker=marker, markersize=4, linestyle="--", linewidth=1,
                                label=f"{key.upper()} (right axis)")
    right.set_ylabel("best true rank among the top 1 / top 3 (lower is better)")
    right.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="best")
    ax.set_title("Ranking quality while every child is fine-tuned alone", fontsize=10)
    return save_figure(fig, path)


def interference_matrix(analysis: dict, path: str | Path) -> Path | None:
    """Mean change of every child's accuracy (column) across a mini-batch that trained A (row)."""
    inter = analysis.get("interference")
    if not inter or not inter.get("delta_matrix"):
        return None
    delta = np.array([[np.nan if v is None else v for v in row] for row in inter["delta_matrix"]], dtype=float)
    if delta.ndim != 2 or np.isnan(delta).all():
        return None
    n = delta.shape[0]
    archs = inter.get("archs") or [str(i) for i in range(n)]
    fig = new_figure(7.6, 6.6)
    ax = fig.add_subplot()
    bound = float(np.nanmax(np.abs(delta))) or 1.0
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="0.85")  # grey: A never trained in the window
    image = ax.imshow(100 * delta, interpolation="nearest", cmap=cmap, vmin=-100 * bound, vmax=100 * bound)
    every = max(1, math.ceil(n / 32))
    ax.set_xticks(range(0, n, every))
    ax.set_xticklabels([archs[i] for i in range(0, n, every)], fontsize=5, rotation=90)
    ax.set_yticks(range(0, n, every))
    ax.set_yticklabels([archs[i] for i in range(0, n, every)], fontsize=5)
    ax.set_xlabel("child B (evaluated)")
    ax.set_ylabel("child A (trained in the mini-batch)")
    ax.set_title(f"Interference: change of B's validation accuracy when A is trained "
                 f"({inter.get('run_id', '')})", fontsize=9)
    fig.colorbar(image, ax=ax, label="mean change of accuracy (percentage points)", shrink=0.8)
    return save_figure(fig, path)


def sharing_compute(analysis: dict, path: str | Path) -> Path | None:
    """GT-Tau-Mean-k ± Std-k against M (group sharing, by partition) and against K (prefix)."""
    sweep = analysis.get("sharing")
    rows = [r for r in (sweep or {}).get("rows") or [] if fmt(r.get("gt_tau_mean_k")) != "–"]
    if not rows:
        return None
    fig = new_figure(10.0, 4.2)
    left, right = fig.subplots(1, 2)
    series = sweep.get("findings_input") or {}
    compute = {(1 if r["kind"] == "full" else r.get("groups")): r["compute"] for r in rows if r["kind"] != "prefix"}
    for (name, points), colour in zip(series.items(), ("C0", "C3")):
        if not points:
            continue
        ms, means, stds = (np.asarray(v, dtype=float) for v in zip(*points))
        left.errorbar(ms, means, yerr=stds, color=colour, marker="o", capsize=3, linewidth=1.4,
                      label=f"{name} partition")
    published = {r.get("groups"): r["published"] for r in rows if r["kind"] in ("full", "group")
                 and r.get("published") is not None and r.get("partition") in (None, "similarity")}
    if published:
        ms = sorted(published)
        left.plot(ms, [published[m] for m in ms], color="0.5", linestyle="--", marker="x",
                  label="paper, similarity (CIFAR-10)")
    left.set_xscale("log", base=2)
    ticks = sorted(compute)
    left.set_xticks(ticks)
    left.set_xticklabels([f"{m}\n({compute[m]:g}x)" for m in ticks], fontsize=7)
    left.set_xlabel("groups M (training compute, in supernets)")
    left.set_ylabel("GT-Tau-Mean-k (bars: Std-k)")
    left.set_title("Group sharing", fontsize=10)
    left.grid(alpha=0.3)
    left.legend(fontsize=7, loc="best")
    prefix = sorted((r["prefix"], r["gt_tau_mean_k"], r["gt_tau_std_k"], r.get("published"))
                    for r in rows if r["kind"] == "prefix")
    if prefix:
        ks, means, stds, pub = zip(*prefix)
        right.errorbar(ks, np.asarray(means, dtype=float), yerr=np.asarray(stds, dtype=float), color="C2",
                       marker="o", capsize=3, label="this data")
        if any(p is not None for p in pub):
            right.plot([k for k, p in zip(ks, pub) if p is not None], [p for p in pub if p is not None],
                       color="0.5", linestyle="--", marker="x", label="paper (CIFAR-10, 2000 epochs)")
        right.legend(fontsize=7, loc="best")
    prefix_compute = sorted({r["compute"] for r in rows if r["kind"] == "prefix"})
    right.set_xlabel("shared cells K (stem always shared; "
                     + "/".join(f"{c:g}x" for c in prefix_compute) + " compute)")
    right.set_title("Prefix sharing", fontsize=10)
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.grid(alpha=0.3)
    return save_figure(fig, path)


def strategies(analysis: dict, path: str | Path) -> Path | None:
    """Gradient variance against the training step (mean over seeds, log scale) and GT-Tau of
    every seed, one colour per strategy of a comparison."""
    rows = ((analysis.get("comparison") or {}).get("rows")) or []
    if not rows:
        return None
    fig = new_figure(10.0, 4.2)
    left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    drawn = False
    key = "gt_tau_mean_k" if all(fmt(r.get("gt_tau_mean_k")) != "–" for r in rows) else "gt_tau"
    for j, r in enumerate(rows):
        colour = f"C{j % 10}"
        series = [dict((int(s), v) for s, v in seed["grad_series"]) for seed in r["seeds"] if seed["grad_series"]]
        if series:
            steps = sorted(set.intersection(*(set(s) for s in series)))
            if steps:
                left.plot(steps, [np.mean([s[t] for s in series]) for t in steps], color=colour,
                          linewidth=1.3, label=r["title"])
                drawn = True
        values = [seed[key] for seed in r["seeds"] if fmt(seed.get(key)) != "–"]
        if values:
            right.scatter([j] * len(values), values, color=colour, s=18, zorder=3)
            right.hlines(np.mean(values), j - 0.3, j + 0.3, color=colour, linewidth=2)
    if drawn:
        left.set_yscale("log")
        left.legend(fontsize=7, loc="best")
    else:
        left.text(0.5, 0.5, "no gradient-variance windows recorded", ha="center", va="center",
                  transform=left.transAxes, fontsize=8, color="0.4")
    window = (analysis.get("comparison") or {}).get("grad_window")
    left.set_xlabel("training step")
    left.set_ylabel(f"gradient variance per window of {window} steps" if window else "gradient variance")
    left.set_title("Supernet gradient variance (mean over seeds)", fontsize=10)
    left.grid(alpha=0.3)
    k = analysis.get("k")
    right.set_xticks(range(len(rows)))
    right.set_xticklabels([r["strategy"] for r in rows], fontsize=8, rotation=20)
    right.set_ylabel(f"GT-Tau-Mean-{k} (dots: seeds, bar: mean)" if key == "gt_tau_mean_k"
                     else "final GT-Tau (dots: seeds, bar: mean)")
    right.set_title("Ranking quality", fontsize=10)
    right.grid(alpha=0.3, axis="y")
    return save_figure(fig, path)


#: File name -> figure function, in the order the report shows them.
FIGURES: dict[str, FigureFunction] = {
    "scatter.png": scatter,
    "gt_tau_epochs.png": gt_tau_epochs,
    "gt_tau_dense.png": gt_tau_dense,
    "rank_heatmap.png": rank_heatmap,
    "finetune.png": finetune,
    "interference_matrix.png": interference_matrix,
    "sharing_compute.png": sharing_compute,
    "strategies.png": strategies,
}


def write_figures(analysis: dict, out_dir: str | Path) -> dict[str, Path]:
    """Draw every figure that has data into ``out_dir``; returns file name -> path.

    A figure without data is skipped, and a stale file of that name (from an earlier report
    of the same directory) is removed so that the directory matches the report.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, draw in FIGURES.items():
        path = draw(analysis, out_dir / name)
        if path is None:
            (out_dir / name).unlink(missing_ok=True)
        else:
            written[name] = path
    return written
