"""The report of one supernet run (``wsnas supernet``): ``report.html``, ``report.md`` and
``figures/training.png``, from :func:`wsnas.analysis.supernet.analyse_supernet`.

It shows the run's settings, the children its shared weights rank highest (with their true
accuracy and rank when a ground truth is known), the training curve per epoch and, against a
ground truth, GT-Tau after every epoch and GT-Tau, Spearman, T1R and T3R after the last.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from wsnas.analysis.insights import ordinal
from wsnas.report.figures import fmt, new_figure, pct, save_figure
from wsnas.report.render import RunReport, write_run_report
from wsnas.report.templating import Templates
from wsnas.store import Store

__all__ = ["supernet_report", "training_figure", "write_supernet_report"]

FIGURE = "figures/training.png"


def _values(values: list) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def training_figure(a: dict, path: str | Path) -> Path | None:
    """Training loss, accuracies and (with a ground truth) GT-Tau per epoch; None without epochs."""
    curve = a["curve"]
    if not curve["epochs"]:
        return None
    truth = a.get("against_truth")
    panels = 3 if truth else 2
    fig = new_figure(4.2 * panels, 3.8)
    epochs = np.asarray(curve["epochs"])
    ax = fig.add_subplot(1, panels, 1)
    ax.plot(epochs, _values(curve["train_loss"]), marker="o", color="C0")
    ax.set_ylabel("training loss")
    ax = fig.add_subplot(1, panels, 2)
    ax.plot(epochs, 100 * _values(curve["train_acc"]), marker="o", color="C0", label="training (sampled children)")
    ax.plot(epochs, 100 * _values(curve["mean_child_acc"]), marker="s", color="C1",
            label="validation, mean over children")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8, loc="best")
    if truth:
        ax = fig.add_subplot(1, panels, 3)
        ax.plot(truth["epochs"], _values(truth["epoch_gt_tau"]), marker="o", color="C2")
        ax.axhline(0, color="0.5", lw=0.8, ls=":")
        ax.set_ylabel(f"GT-Tau against {a['truth']['source']}")
    for ax in fig.axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.suptitle(f"{a['run_id']}: training", fontsize=10)
    return save_figure(fig, path)


def _describe(d: dict | None, skip: tuple[str, ...] = ()) -> str:
    """``name (key=value, ...)`` of a stored description (space, data, strategy)."""
    if not d:
        return "–"
    keys = ("name", "space", "strategy")
    name = next((str(d[k]) for k in keys if isinstance(d.get(k), str)), "")
    rest = ", ".join(f"{k}={v}" for k, v in d.items()
                     if k not in (*keys, *skip) and v is not None and not isinstance(v, (dict, list)))
    return f"{name} ({rest})" if rest else str(name)


def supernet_report(a: dict) -> RunReport:
    """The content of the report of :func:`~wsnas.analysis.supernet.analyse_supernet`'s ``a``."""
    cfg = a["config"]
    train = (cfg.get("supernet") or {}).get("train") or {}
    data = cfg.get("data") or {}
    sizes = data.get("sizes") or {}
    setup = [
        ("run", f"{a['run_id']} (status {a['status']})"),
        ("space", _describe(cfg.get("space"))),
        ("data", str(data.get("name", "–")) + (f": train {sizes.get('train')}, valid {sizes.get('valid')}, "
                                               f"test {sizes.get('test')} images" if sizes else "")),
        ("strategy", _describe(cfg.get("strategy"))),
        ("sharing", (cfg.get("sharing") or {}).get("label", "full")),
        ("training", f"{a['epochs_done']} of {train.get('epochs', '–')} epochs, batch {train.get('batch_size', '–')}, "
                     f"learning rate {train.get('lr', '–')}, seed {a['seed']}"),
        ("children ranked", str(a["children"])),
        ("ground truth", "none given (GT-Tau, T1R and T3R need `wsnas report --truth`)" if a["truth"] is None
         else f"{a['truth']['source']} ({a['truth']['n']} architectures)"),
    ]
    summary, warnings = [], []
    if not a["ranking"]:
        warnings.append("The run has no evaluation after an epoch yet: nothing is ranked.")
    else:
        best = a["ranking"][0]
        summary.append(f"The shared weights rank {best['arch']} first ({pct(best['accuracy'])}% "
                       "validation accuracy)." if best["accuracy"] is not None else f"The top child is {best['arch']}.")
    m = a.get("against_truth")
    if m:
        summary.append(f"Against {a['truth']['source']}: GT-Tau {fmt(m['gt_tau'])}, Spearman {fmt(m['spearman'])}, "
                       f"T1R {m['t1r']}, T3R {m['t3r']} (true rank of the top 1 / best true rank among the top 3; "
                       "1 = the truly best).")
        if m.get("dense"):
            d = m["dense"]
            summary.append(f"Over the last {d['k']} mini-batches"
                           + (f" (every {ordinal(d['every'])} evaluated)" if d.get("every", 1) > 1 else "")
                           + f": GT-Tau-Mean-{d['k']} {fmt(d['mean'])} ± Std-{d['k']} {fmt(d['std'])}.")
    with_truth = a["truth"] is not None
    ranking = ("Children ranked by their shared-weight accuracy",
               ["rank", "child", "validation accuracy (%)",
                *(["true accuracy (%)", "true rank"] if with_truth else [])],
               [[str(r["rank"]), r["arch"], pct(r["accuracy"]),
                 *([pct(r["truth"]), str(r["truth_rank"])]
                   if with_truth else [])] for r in a["ranking"]],
               [f"The top {len(a['ranking'])} of {a['children']} children after the last epoch"
                + (f"; true rank 1 = the best of {a['truth']['n']} in {a['truth']['source']}." if with_truth else ".")])
    c = a["curve"]
    gt_tau = dict(zip(m["epochs"], m["epoch_gt_tau"])) if m else {}
    curve = ("Training per epoch",
             ["epoch", "training loss", "training accuracy (%)", "mean child validation accuracy (%)",
              *(["GT-Tau"] if m else []), "seconds"],
             [[str(e), fmt(c["train_loss"][i], 4), pct(c["train_acc"][i]),
               pct(c["mean_child_acc"][i]),
               *([fmt(gt_tau.get(e))] if m else []), fmt(c["epoch_seconds"][i], 1)]
              for i, e in enumerate(c["epochs"])],
             ["Training accuracy: of the children the strategy sampled, on the training batches; mean child "
              "validation accuracy: over every ranked child, with the shared weights."])
    return RunReport(title=f"Supernet run {a['run_id']}", setup=setup, summary=summary,
                     tables=[ranking, curve] if a["ranking"] or c["epochs"] else [], warnings=warnings)


def write_supernet_report(store: Store, run_id: str, out_dir: str | Path, *, truth: str | None = None,
                          truth_config: str | None = None, templates: Templates | str | Path | None = None) -> dict:
    """Write the report of supernet run ``run_id`` of ``store`` into ``out_dir`` (``truth``: a
    ``--truth`` spec); returns :func:`~wsnas.report.render.write_run_report`'s dict."""
    from wsnas.analysis.supernet import analyse_supernet

    a = analyse_supernet(store, run_id, truth=truth, truth_config=truth_config)
    report = supernet_report(a)
    out_dir = Path(out_dir)
    figure = training_figure(a, out_dir / FIGURE)
    figures = {}
    if figure is not None:
        figures[FIGURE] = figure
        report.figures.append((FIGURE, "Training", "Left: the training loss per epoch; middle: the accuracy of the "
                               "sampled children on their training batches and the mean validation accuracy of "
                               "every ranked child with the shared weights"
                               + ("; right: GT-Tau of the ranking after every epoch, which should climb as the "
                                  "shared weights learn to rank." if a["against_truth"] else ".")))
    return write_run_report(report, figures, out_dir, "supernet", templates=templates, analysis=a)
