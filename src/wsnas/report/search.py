"""The report of a differentiable-search study: ``report.md``, a self-contained ``report.html``
(templates ``search_study.md`` and ``search_study.html``), ``figures/entropy.png`` and
``figures/argmax_truth.png``, from :func:`wsnas.analysis.search.analyse_search_study`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wsnas.report.figures import fmt, new_figure, save_figure
from wsnas.report.render import Finding, finding_line, write_documents
from wsnas.report.templating import Templates, templates_from
from wsnas.selection import selection_label
from wsnas.store import Store

_COLOURS = {"darts": "C0", "gdas": "C1", "pcdarts": "C2", "fixed": "C7"}


def _per_search_figure(a: dict, path: str | Path, key: str, *, scale: float, reference: float, reference_label: str,
                       ylabel: str, title: str) -> Path | None:
    """One line per search of ``curves[*][key]`` against the epoch (dashed: GAEA), a dotted reference."""
    curves = [c for c in a["curves"] if any(v is not None for v in c.get(key) or [])]
    if not curves:
        return None
    fig = new_figure(7.0, 4.2)
    ax = fig.add_subplot()
    seen = set()
    for c in curves:
        family = c["label"].split("-")[0]
        label = c["label"] if c["label"] not in seen else None
        seen.add(c["label"])
        values = np.array([np.nan if v is None else v for v in c[key]], dtype=float)
        ax.plot(np.asarray(c["epochs"]), scale * values, color=_COLOURS.get(family, "C3"),
                linestyle="--" if c["label"].endswith("gaea") else "-", linewidth=1.2, label=label)
    ax.axhline(scale * reference, color="0.4", linewidth=0.8, linestyle=":", label=reference_label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return save_figure(fig, path)


def entropy_figure(a: dict, path: str | Path) -> Path | None:
    """Mean entropy of the op distributions per epoch, one line per search (dashed: GAEA)."""
    return _per_search_figure(a, path, "entropy", scale=1.0, reference=a["truth"]["max_entropy"],
                              reference_label="uniform", ylabel="mean entropy of the edges' op distributions (nats)",
                              title="Sparsity of the architecture weights during search (dashed: GAEA)")


def argmax_truth_figure(a: dict, path: str | Path) -> Path | None:
    """Ground-truth accuracy of the architecture the weights' argmax picks, after every epoch."""
    return _per_search_figure(a, path, "argmax_truth", scale=100.0, reference=a["truth"]["best"],
                              reference_label="best child", ylabel="ground-truth test accuracy of the argmax (%)",
                              title="What magnitude selection would pick after each epoch (dashed: GAEA)")


def _rows(a: dict) -> tuple[list[str], list[list[str]]]:
    """The comparison table: the mean true rank of every selection method of the study (in the
    order they run), the mean true accuracy of the last one (the one that changes the supernet:
    PT, whose published results are accuracies), then the search's own numbers."""
    methods = a["methods"]
    header = ["setting", "searches", *(f"{selection_label(m)}: mean true rank (best)" for m in methods),
              *(f"{selection_label(m)}: mean true accuracy" for m in methods[-1:]),
              "final entropy", "parameter-free ops in the argmax", "search time"]
    rows = []
    for label in sorted(a["settings"], key=lambda k: (k == "fixed-alpha", k)):
        s = a["settings"][label]
        cell = {}
        for m in methods:
            x = s.get(m) or {}
            cell[m] = "–" if x.get("rank") is None else f"{x['rank']:.1f} ({x['best_rank']})"
        rows.append([label, str(len(s["runs"])), *(cell[m] for m in methods),
                     *(fmt((s.get(m) or {}).get("accuracy")) for m in methods[-1:]),
                     fmt(s.get("entropy")), fmt(s.get("param_free_ops"), 1), f"{s['search_seconds']:.0f} s"])
    return header, rows


def write_search_report(store: Store, experiment: str, out_dir: str | Path, *,
                        templates: Templates | str | Path | None = None) -> dict:
    """Write the report of search study ``experiment`` of ``store`` into ``out_dir`` (``templates``: a
    :class:`~wsnas.report.templating.Templates` or a user's folder of templates); returns
    ``{"html": path, "md": path, "figures": [paths], "findings": [lines]}``."""
    from wsnas.analysis.search import analyse_search_study

    templates = templates_from(templates)
    a = analyse_search_study(store, experiment)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = entropy_figure(a, out_dir / "figures" / "entropy.png")
    fig2 = argmax_truth_figure(a, out_dir / "figures" / "argmax_truth.png")
    header, rows = _rows(a)
    cfg = a["config"]
    study = cfg["study"]
    fixed = next((r["select"] for r in cfg["runs"] if r["label"] == "fixed-alpha"), [])
    title = f"Differentiable search on {cfg['space']['space']} / {cfg['data']['name']}: {experiment}"
    setup = [
        f"Experiment {experiment} (status: {a['status']}); {a['truth']['n']} children, every one trained from "
        f"scratch for {study['gt_seeds']} seeds (the ground truth the ranks are taken from; rank 1 = best, "
        f"chance {a['truth']['random_rank']:.1f}).",
        f"Searches: {study['seeds']} seeds of each of {', '.join(study['strategies'])} x "
        f"{', '.join(study['params'])}, bilevel, {study['search']['epochs']} epochs at batch "
        f"{study['search']['batch_size']}; selection by "
        + " and by ".join(selection_label(m) + (f" (tuning {study['pt']['interval']} epochs between decisions)"
                                                if m == "pt" else "") for m in a["methods"])
        + (f"; plus a fixed-alpha DARTS supernet with {' and '.join(selection_label(m) for m in fixed)}."
           if study["fixed_alpha"] and fixed else "."),
        "Published: GAEA reports much lower entropy than softmax; DARTS-PT on NB201 CIFAR-10 reaches 88.11% "
        "(DARTS+PT) and 93.80% (fixed alpha + PT) against 54.30% for DARTS.",
    ]
    notes = ["Mean true rank: the ground-truth rank of the selected child, averaged over seeds (best in "
             "brackets). Final entropy: mean Shannon entropy of the edges' op distributions after the last epoch "
             f"(uniform: {a['truth']['max_entropy']:.3f}). Search time: training only, measured here."]
    figures = [(p.name, t, p) for p, t in ((fig, "Entropy during search"),
                                           (fig2, "The argmax's true accuracy during search")) if p]
    variables = {"title": title, "setup": setup, "findings": [Finding.of(f) for f in a["findings"]],
                 "header": header, "rows": rows, "notes": notes,
                 "figures": figures, "images": len(figures)}
    html_path, md_path = write_documents(out_dir, templates.render("search_study.html", **variables),
                                         templates.render("search_study.md", **variables))
    return {"html": str(html_path), "md": str(md_path), "figures": [str(p) for _, _, p in figures],
            "findings": [finding_line(f) for f in a["findings"]]}


__all__ = ["argmax_truth_figure", "entropy_figure", "write_search_report"]
