"""The report of a differentiable-search study: ``report.md``, a self-contained ``report.html``,
``figures/entropy.png`` and ``figures/argmax_truth.png``, from
:func:`wsnas.analysis.search.analyse_search_study`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wsnas.core.files import atomic_write
from wsnas.report.figures import fmt, new_figure, save_figure
from wsnas.report.render import CSS, VERDICTS, escape_html, escape_markdown, finding_line, png_data_uri
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


def write_search_report(store: Store, experiment: str, out_dir: str | Path) -> dict:
    from wsnas.analysis.search import analyse_search_study

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
    md = [f"# {escape_markdown(title)}", "", "## Setup", ""] + [f"- {escape_markdown(x)}" for x in setup]
    md += ["", "## Findings on this data", ""]
    md += [f"- {escape_markdown(finding_line(f))}" for f in a["findings"]] or ["- No finding could be checked."]
    md += ["", "## Comparison", "", "| " + " | ".join(escape_markdown(h) for h in header) + " |",
           "|" + "---|" * len(header)]
    md += ["| " + " | ".join(escape_markdown(c) for c in r) + " |" for r in rows]
    md += [""] + [f"- {escape_markdown(n)}" for n in notes]
    if fig:
        md += ["", "## Entropy during search", "", "![entropy](figures/entropy.png)"]
    if fig2:
        md += ["", "## The argmax's true accuracy during search", "", "![argmax](figures/argmax_truth.png)"]
    html = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{escape_html(title)}</title>",
            f"<style>{CSS}</style></head><body>", f"<h1>{escape_html(title)}</h1>", "<h2>Setup</h2><ul>"]
    html += [f"<li>{escape_html(x)}</li>" for x in setup] + ["</ul>", "<h2>Findings on this data</h2>",
                                                             '<ul class="findings">']
    for f in a["findings"]:
        verdict, css = VERDICTS[f.get("holds")]
        html.append(f'<li class="{css}"><span class="verdict">{escape_html(verdict)}</span>'
                    f'{escape_html(f["claim"])}.<br>'
                    f'<span class="evidence">Evidence: {escape_html(f["evidence"])}.</span></li>')
    html += ["</ul>", "<h2>Comparison</h2>", "<table><thead><tr>"] + [f"<th>{escape_html(h)}</th>" for h in header]
    html += ["</tr></thead><tbody>"] + ["<tr>" + "".join(f"<td>{escape_html(c)}</td>" for c in r) + "</tr>"
                                        for r in rows]
    html += ["</tbody></table>", '<ul class="notes">'] + [f"<li>{escape_html(n)}</li>" for n in notes] + ["</ul>"]
    if fig:
        html += ["<h2>Entropy during search</h2>", f'<img src="{png_data_uri(fig)}" alt="entropy">']
    if fig2:
        html += ["<h2>The argmax's true accuracy during search</h2>", f'<img src="{png_data_uri(fig2)}" alt="argmax">']
    html += ["</body></html>"]
    with atomic_write(out_dir / "report.md") as fh:
        fh.write("\n".join(md) + "\n")
    with atomic_write(out_dir / "report.html") as fh:
        fh.write("\n".join(html) + "\n")
    return {"html": str(out_dir / "report.html"), "md": str(out_dir / "report.md"),
            "findings": [finding_line(f) for f in a["findings"]]}


__all__ = ["argmax_truth_figure", "entropy_figure", "write_search_report"]
