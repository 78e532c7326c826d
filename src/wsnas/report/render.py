"""``report.md`` and a self-contained ``report.html`` of an insights study.

Both documents are rendered from the same content, built from the dict of
:func:`wsnas.analysis.insights.analyse_insights`:

1. a title and the study's setup (space, dataset and its sizes, budgets, ground truth, status);
2. the findings, each stated plainly as holding or not *on this data*, with its evidence;
3. a table in the layout of the paper's Tables 1 and 2, every value beside the published
   CIFAR-10 one;
4. the figures, each with a one-sentence caption saying what to look for.

Missing values (no ceiling, no fine-tuning, one instance so no S-Tau, an undefined tau) are
shown as an en dash.

Both are rendered from templates (:mod:`wsnas.report.templating`: ``insights.md`` and
``insights.html``, which extends ``base.html``), given the :class:`Report` as ``report``. The
HTML needs nothing outside itself: inline CSS (``report.css``), every figure embedded as a
base64 PNG, every piece of text escaped (autoescaping). It carries exactly one script
(``images.js``), a few inline lines that set ``data-images-loaded`` on ``<body>`` to the
number of images the browser has decoded (and ``data-images-total`` is written with the page);
the tests load the page in a headless browser and compare the two. The script changes nothing
that is displayed.

The report of one run (a supernet run, a search of one, a validation) is a :class:`RunReport`,
written by :func:`write_run_report` with the templates of its kind, which extend ``run.html`` and
``run.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsnas import metrics
from wsnas.analysis.insights import dense_window, ordinal
from wsnas.core.files import atomic_write
from wsnas.report.comparison import comparison_table
from wsnas.report.figures import FIGURES, GROUP_ORDER, fmt
from wsnas.report.templating import Templates, templates_from

__all__ = ["FIGURE_TEXT", "Finding", "Report", "RunReport", "Table", "build_report", "finding_line", "to_html",
           "to_markdown", "write_documents", "write_report", "write_run_report"]

#: Figure file name -> (title, caption saying what to look for).
FIGURE_TEXT: dict[str, tuple[str, str]] = {
    "scatter.png": (
        "Supernet accuracy vs ground-truth accuracy",
        "Each point is one child: if the shared weights ranked children as training them alone "
        "does, each instance's points would rise from left to right, so look for a shapeless "
        "cloud, or instances that rank the same children differently."),
    "gt_tau_epochs.png": (
        "GT-Tau across epochs",
        "Look for whether GT-Tau climbs towards the dashed ground-truth line as training goes "
        "on, and how far lines of one colour (one setting, different instances) jump from one "
        "epoch to the next."),
    "gt_tau_dense.png": (
        "GT-Tau after each of the last mini-batches",
        "Look at how much GT-Tau moves from one mini-batch to the next: a ranking that swings "
        "with every step depends on which child was trained last rather than on the "
        "architectures (the dashed line is the mean, GT-Tau-Mean-k)."),
    "rank_heatmap.png": (
        "Rank of every child across the last mini-batches",
        "Each column is the ranking after one mini-batch (bright = ranked high); if the red "
        "squares, the child trained in that mini-batch, sit in bright cells, the latest update "
        "favours its own child, the interference the paper reports as a period-64 pattern "
        "under round-robin."),
    "finetune.png": (
        "Fine-tuning every child from a supernet snapshot",
        "Look for GT-Tau rising, and T1R/T3R falling, within the first few steps of training "
        "each child alone from the shared weights; the paper reaches about 0.8 within ~5 steps "
        "on CIFAR-10."),
    "interference_matrix.png": (
        "Interference matrix",
        "Row A, column B: how B's validation accuracy changed, on average, across a mini-batch "
        "that trained A. A red diagonal on a blue field means each step helps its own child and "
        "hurts the others, the interference that makes shared-weight rankings follow the last "
        "update; blocks of colour show which children share enough to help each other."),
    "sharing_compute.png": (
        "GT-Tau against the amount of sharing and its compute",
        "Left: group sharing, GT-Tau-Mean-k (error bars: Std-k, the variance of the ranking) "
        "against the number of groups M, with the compute of each setting in supernets; look "
        "for GT-Tau rising and the bars shrinking as M grows, as the paper found. Right: prefix "
        "sharing with the stem and K cells shared."),
    "strategies.png": (
        "Training strategies: gradient variance and ranking quality",
        "Left: the supernet's gradient variance over windows of training steps, mean over the "
        "seeds, per strategy (log scale); PA&DA's claim is that its curve lies below SPOS's. "
        "Right: GT-Tau of every seed (dots) and their mean (bar)."),
}

VERDICTS = {True: ("HOLDS", "holds"), False: ("DOES NOT HOLD", "fails"),
             None: ("UNDECIDED", "undecided")}

@dataclass
class Finding:
    """One claim of the paper with its verdict on this data (None: cannot be decided)."""

    claim: str
    holds: bool | None
    evidence: str

    @property
    def verdict(self) -> str:
        return VERDICTS[self.holds][0]

    @property
    def css(self) -> str:
        """The HTML class of its verdict: ``holds``, ``fails`` or ``undecided``."""
        return VERDICTS[self.holds][1]

    @classmethod
    def of(cls, f: dict | Finding) -> Finding:
        """A finding of an analysis (a dict with ``claim``, ``holds``, ``evidence``) as a Finding."""
        return f if isinstance(f, Finding) else cls(f["claim"], f.get("holds"), f.get("evidence", ""))


@dataclass
class Report:
    """Everything both documents show, as plain text."""

    title: str
    setup: list[tuple[str, str]]
    warnings: list[str]
    findings: list[Finding]
    not_checked: list[str]
    header: list[str]
    rows: list[list[tuple[str, str]]]  # per cell: (ours, paper); paper "" for plain cells
    table_notes: list[str]
    figures: list[tuple[str, str, str]] = field(default_factory=list)  # (file, title, caption)
    # further tables: (title, header, rows, notes), rows as in ``rows``
    tables: list[tuple[str, list[str], list[list[tuple[str, str]]], list[str]]] = field(default_factory=list)


#: One table of a report: (title, header, rows, notes); a cell is a string or an (ours, paper) pair.
Table = tuple[str, list[str], list[list], list[str]]


@dataclass
class RunReport:
    """What the report of one run shows (a supernet run, an ``evolve`` search or validation), as plain
    text: rendered by the templates ``supernet``, ``evolve`` and ``evolve_validation`` (``.html``,
    ``.md``), which extend ``run.html`` / ``run.md``."""

    title: str
    setup: list[tuple[str, str]]
    summary: list[str]  # the results, one sentence each
    tables: list[Table]
    figures: list[tuple[str, str, str]] = field(default_factory=list)  # (file relative to the report, title, caption)
    warnings: list[str] = field(default_factory=list)


def write_run_report(report: RunReport, figures: dict[str, Path], out_dir: str | Path, template: str, *,
                     templates: Templates | str | Path | None = None, analysis: dict | None = None) -> dict:
    """Render ``report`` with ``template``.html and ``template``.md into ``out_dir`` (``figures``: file
    -> PNG path, embedded in the HTML; ``analysis``: the numbers, for a user's template); returns
    ``{"html": path, "md": path, "figures": [paths], "summary": [lines]}``."""
    templates = templates_from(templates)
    variables = {"report": report, "title": report.title, "figures": figures, "images": len(report.figures),
                 "analysis": analysis or {}}
    html_path, md_path = write_documents(out_dir, templates.render(f"{template}.html", **variables),
                                         templates.render(f"{template}.md", **variables))
    return {"html": str(html_path), "md": str(md_path), "figures": [str(figures[f]) for f, _, _ in report.figures],
            "summary": list(report.summary)}


def finding_line(f: dict | Finding) -> str:
    """``HOLDS: claim (evidence)`` / ``DOES NOT HOLD: ...`` / ``UNDECIDED: ...``."""
    f = Finding.of(f)
    return f"{f.verdict}: {f.claim} ({f.evidence})"


# --------------------------------------------------------------------------------------------
# content


def _paper(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def _s_tau_text(s_tau: dict | None) -> str:
    if not s_tau or fmt(s_tau.get("mean")) == "–":
        return "–"
    text = fmt(s_tau["mean"])
    if s_tau.get("n_pairs", 0) > 1:
        text += f" [min {fmt(s_tau.get('min'))}, max {fmt(s_tau.get('max'))}]"
    return text


def _pm(mean: float | None, std: float | None) -> str:
    return "–" if fmt(mean) == "–" else f"{fmt(mean)} ± {fmt(std)}"


def expected_random_tnr(truth_accuracy: list[float], n: int) -> float | None:
    """Expected TnR of a random ranking: the mean best true rank among n random children.

    Exact: with the true ranks sorted ``r_1 <= ... <= r_N``, the best of a random n-subset is
    ``r_i`` with probability ``C(N - i, n - 1) / C(N, n)``. Without ties this is (N+1)/(n+1).
    """
    acc = np.asarray(truth_accuracy, dtype=float)
    if acc.size == 0 or np.isnan(acc).any():
        return None
    ranks = np.sort(metrics.truth_ranks(acc))
    size, n = acc.size, min(n, acc.size)
    total = math.comb(size, n)
    return float(sum(math.comb(size - 1 - i, n - 1) * r for i, r in enumerate(ranks)) / total)


def _plural(n: object, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s") if n is not None else f"– {word}s"


def _short_run_warning(a: dict) -> list[str]:
    """A warning when a supernet trains fewer mini-batches than there are children."""
    study, data = a.get("study") or {}, a.get("data") or {}
    sn = study.get("supernet") or {}
    n_train = (data.get("sizes") or {}).get("train")
    n_children = (a.get("truth") or {}).get("n")
    try:
        steps = math.ceil(int(n_train) / int(sn["batch_size"])) * int(sn["epochs"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return []
    if not n_children or steps >= n_children:
        return []
    return [f"Each supernet trains only {steps} mini-batches, fewer than the {n_children} "
            "children: some children were never trained with shared weights (they score at "
            "chance), and the instances reshuffled every cycle never reached a reshuffle, so "
            "they follow one fixed order like the 'different orders' instances."]


def _setup(a: dict) -> tuple[list[tuple[str, str]], list[str]]:
    study, data, space = a.get("study") or {}, a.get("data") or {}, a.get("space") or {}
    truth = a.get("truth") or {}
    warnings = []
    status = a.get("status") or "unknown"
    items = [("Experiment", f"{a.get('experiment', '–')} (status: {status})")]
    if status != "done":
        warnings.append(f"The study has status {status!r}, not 'done': the numbers below cover "
                        "only what was finished when this report was written.")
    options = ", ".join(f"{k}={v}" for k, v in space.items() if k != "space")
    items.append(("Search space", f"{space.get('space', '–')}, {truth.get('n', '–')} children"
                                  + (f" ({options})" if options else "")))
    sizes = data.get("sizes") or {}
    size = data.get("image_size")
    shape = f"{size}×{size}×{data.get('in_channels', '?')}" if size else "–"
    items.append(("Dataset", f"{data.get('name', '–')} ({data.get('source') or 'unknown source'}"
                             f"; {data.get('num_classes', '–')} classes, images {shape}); "
                             f"train {sizes.get('train', '–')}, valid {sizes.get('valid', '–')}, "
                             f"test {sizes.get('test', '–')} images; split seed "
                             f"{data.get('split_seed', '–')}; augmentation "
                             f"{data.get('augment') or 'none'}"))
    items.append(("Ground truth", f"{truth.get('source') or '–'} ({truth.get('dataset', '–')}, "
                                  f"{truth.get('n', '–')} children)"))
    if truth.get("dataset") and data.get("name") and truth["dataset"] != data["name"]:
        warnings.append(f"The ground truth was measured on {truth['dataset']!r} but the "
                        f"supernets were trained on {data['name']!r}.")

    def budget(cfg: dict | None) -> str:
        if not cfg:
            return "–"
        return (f"{_plural(cfg.get('epochs'), 'epoch')}, batch {cfg.get('batch_size', '–')}, SGD lr "
                f"{cfg.get('lr', '–')} cosine to {cfg.get('lr_min', '–')}, momentum "
                f"{cfg.get('momentum', '–')}, weight decay {cfg.get('weight_decay', '–')}")

    items.append(("Ground-truth training", f"{study.get('gt_seeds', '–')} independent trainings "
                                           f"per child; {budget(study.get('groundtruth'))}"))
    instances = study.get("instances") or {}
    order = [g for g in GROUP_ORDER if g in instances] + [g for g in instances
                                                          if g not in GROUP_ORDER]
    counts = ", ".join(f"{g} {instances[g]}" for g in order if instances[g]) or "none"
    sharing = study.get("sharing", "full")
    sweep = study.get("sweep") or []
    items.append(("Supernets", f"instances: {counts}"
                               + (f" (sharing {sharing}, budget {study.get('budget')})" if sharing != "full" else "")
                               + (f"; sharing sweep: {len(sweep)} settings, one round-robin instance each "
                                  f"(budget {study.get('budget', 'paper')})" if sweep else "")
                               + (f"; strategy comparison: {', '.join(study['strategies'])}, "
                                  f"{_plural(study.get('strategy_seeds'), 'seed')} each"
                                  if study.get("strategies") else "")
                               + (f"; gradient variance over windows of {study['grad_window']} steps"
                                  if study.get("grad_window") else "")
                               + f"; {budget(study.get('supernet'))}"))
    warnings += _short_run_warning(a)
    ev = study.get("eval") or {}
    items.append(("Evaluation", f"every child on the validation split after every epoch and "
                                f"after {dense_window(study.get('dense_last', '–'), study.get('dense_every', 1))} "
                                f"(k = {a.get('k', '–')}); BN statistics: "
                                f"{ev.get('bn_mode', '–')}"))
    steps = study.get("finetune_steps")
    items.append(("Fine-tuning", f"{_plural(steps, 'step')} per child, alone, from the final "
                                 "snapshot of the first supernet instance (seeds 0 when there is "
                                 "one)" if steps else "not run"))
    items.append(("Published numbers", "CIFAR-10, 10 instances per row, 200 epochs (Zhang et "
                                       "al., 2020, Tables 1 and 2; docs/algorithms.md 1.4)"))
    return items, warnings


def _not_checked(a: dict) -> list[str]:
    out = []
    if not (a.get("truth") or {}).get("ceiling"):
        out.append("Whether rankings differ strongly across seeds, orders and epochs: the ground "
                   "truth does not hold two or more complete independent trainings per child, so "
                   "there is no seed-to-seed ceiling to compare with.")
    if not a.get("interference"):
        out.append("Interference (the child trained last ranks high): no dense evaluation with "
                   "recorded training steps.")
    ft = a.get("finetune")
    if not ft or len(ft.get("gt_tau") or []) < 2:
        out.append("Fine-tuning from a snapshot: no complete fine-tuning run.")
    return out


def _table(a: dict) -> tuple[list[str], list[list[tuple[str, str]]], list[str]]:
    k = a.get("k") or "k"
    pub = a.get("published") or {}
    header = ["experiment", "instances", "S-Tau mean [min, max]", "GT-Tau mean ± std", "T1R",
              "T3R", f"GT-Tau-Mean-{k} ± Std-{k}", "consecutive-epoch tau"]
    titles = {"seeds": "different seeds", "orders": "different orders",
              "shuffle": "orders reshuffled every cycle"}
    groups = a.get("groups") or {}
    rows = []
    for g in GROUP_ORDER:
        group = groups.get(g) or {}
        s = group.get("summary") or {}
        p = pub.get(g) or {}
        k_paper = (_pm(pub.get("gt_tau_mean_64"), pub.get("gt_tau_std_64")) + ", k = 64"
                   if g == "seeds" and pub.get("gt_tau_mean_64") is not None else "–")
        rows.append([
            (group.get("title") or titles[g], ""),
            (str(s.get("n", 0)), ""),
            (_s_tau_text(s.get("s_tau")), _paper(p.get("s_tau"))),
            (_pm(s.get("gt_tau"), s.get("gt_tau_std")),
             _pm(p.get("gt_tau"), p.get("gt_tau_std")) if "gt_tau" in p else "–"),
            (fmt(s.get("t1r"), 1), _paper(p.get("t1r"))),
            (fmt(s.get("t3r"), 1), _paper(p.get("t3r"))),
            (_pm(s.get("gt_tau_mean_k"), s.get("gt_tau_std_k")), k_paper),
            (fmt(s.get("consecutive_epoch_tau")), "–"),
        ])
    c = (a.get("truth") or {}).get("ceiling") or {}
    p = pub.get("groundtruth") or {}
    rows.append([
        ("ground truth vs itself (independent trainings)", ""),
        (str(c["n"]) if c.get("n") else "–", ""),
        (_s_tau_text(c.get("s_tau")), _paper(p.get("s_tau"))),
        (_pm(c.get("gt_tau"), c.get("gt_tau_std")),
         _pm(p.get("gt_tau"), p.get("gt_tau_std")) if "gt_tau" in p else "–"),
        (fmt(c.get("t1r"), 1), _paper(p.get("t1r"))),
        (fmt(c.get("t3r"), 1), _paper(p.get("t3r"))),
        ("–", "–"),
        ("–", "–"),
    ])
    truth_acc = (a.get("truth") or {}).get("accuracy") or []
    t1, t3 = expected_random_tnr(truth_acc, 1), expected_random_tnr(truth_acc, 3)
    rows.append([
        ("random ranking", ""),
        ("–", ""),
        ("≈ 0 (expected)", _paper((pub.get("random") or {}).get("s_tau"))),
        ("≈ 0 (expected)", "–"),
        (f"{fmt(t1, 1)} (expected)" if t1 is not None else "–", "–"),
        (f"{fmt(t3, 1)} (expected)" if t3 is not None else "–", "–"),
        ("≈ 0 (expected)", "–"),
        ("≈ 0 (expected)", "–"),
    ])
    every = (a.get("study") or {}).get("dense_every", 1)
    notes = [
        "Each cell gives our value, then the published CIFAR-10 value (10 instances per row, 200 "
        "epochs); – means not measured here or not published.",
        "S-Tau: mean Kendall tau between every pair of instances of a row (with its min and max); "
        "GT-Tau: tau of each instance's final ranking against the ground truth (mean ± std over "
        "instances); T1R/T3R: best true rank among an instance's top 1 / top 3 (1 = the truly best "
        "child; lower is better), averaged over instances.",
        f"GT-Tau-Mean-{k} ± Std-{k}: mean and std of GT-Tau over the last {k} mini-batches "
        f"({'each' if every == 1 else f'every {ordinal(every)} of them'} evaluated), "
        "averaged over instances (the paper publishes it, for k = 64, for full sharing with "
        "round-robin, the setting of the seeds row); consecutive-epoch tau: mean tau between the "
        "rankings after consecutive epochs.",
        "Ground truth vs itself: each independent training against the mean of all of them, as "
        "in the paper (this includes the training itself, so it flatters the ground truth)"
        + (f"; against the mean of the others only, GT-Tau is "
           f"{fmt(c.get('gt_tau_leave_one_out'))}" if c else "")
        + ". Random ranking: expected values by chance (for T1R/T3R computed from this ground "
        "truth's ranks).",
    ]
    return header, rows, notes


def _sharing_table(a: dict) -> tuple[str, list[str], list[list[tuple[str, str]]], list[str]] | None:
    """Table 3 of the paper: GT-Tau-Mean-k / Std-k per sharing setting, with its compute."""
    sweep = a.get("sharing")
    if not sweep or not sweep.get("rows"):
        return None
    k = next((r["k"] for r in sweep["rows"] if r.get("k")), None) or a.get("k") or "k"
    header = ["sharing", "compute (supernets)", "train time", f"GT-Tau-Mean-{k}", f"GT-Tau-Std-{k}",
              "final GT-Tau", "T1R", "T3R"]
    order = {"full": 0, "group": 1, "prefix": 2}
    rows = []
    for r in sorted(sweep["rows"], key=lambda r: (order[r["kind"]], r.get("partition") or "",
                                                   r.get("groups") or 0, r.get("prefix") or 0)):
        secs = r.get("train_seconds")
        rows.append([
            (r["label"] + ("" if r.get("status") == "done" else f" ({r.get('status')})"), ""),
            (f"{r['compute']:g}x", ""),
            (f"{secs:.0f} s" if secs is not None else "–", ""),
            (fmt(r.get("gt_tau_mean_k")), _paper(r.get("published"))),
            (fmt(r.get("gt_tau_std_k")), "0.032" if r["label"] == "full" else "–"),
            (fmt(r.get("gt_tau")), "–"),
            (fmt(r.get("t1r"), 0), "–"),
            (fmt(r.get("t3r"), 0), "–"),
        ])
    notes = [
        "One round-robin supernet (seed 0) per setting. group:M:P splits the children into M groups "
        "(P = similarity: consecutive slices of the index order, i.e. of the names 111..444; random: a "
        "seeded random partition), each with its own weights; prefix:K shares the stem and the first K "
        "cells, every later layer and the classifier are private per child.",
        "Compute: training compute in units of one fully shared supernet (group sharing under the "
        "paper's protocol trains every group for the full budget: M times; prefix rows train for "
        "--prefix-epochs, by default 10 times the sweep's epochs, as the paper's 2000 against 200). "
        "Train time: measured "
        "seconds of training and per-epoch evaluation on this machine.",
        f"Published values: CIFAR-10 GT-Tau-Mean-64 (Zhang et al., 2020, Table 3; prefix sharing after "
        f"2000 epochs; Std-64 published for full sharing only). Ours: mean / std of GT-Tau over the last "
        f"{k} mini-batches.",
    ]
    return "Table 3 of the paper (partial weight sharing), on this data", header, rows, notes


def build_report(a: dict, figures: dict[str, Path] | None = None) -> Report:
    """The content of the report; ``figures`` maps the file names that were drawn to paths."""
    setup, warnings = _setup(a)
    header, rows, notes = _table(a)
    shown = [(name, *FIGURE_TEXT.get(name, (name, ""))) for name in FIGURES
             if figures and name in figures]
    dataset = (a.get("data") or {}).get("name", "")
    return Report(
        title=f"Weight sharing in NAS, the 64-child study: {a.get('experiment', '')}"
              + (f" on {dataset}" if dataset else ""),
        setup=setup, warnings=warnings,
        findings=[Finding.of(f) for f in a.get("findings") or []],
        not_checked=_not_checked(a), header=header, rows=rows, table_notes=notes, figures=shown,
        tables=[t for t in (_sharing_table(a), comparison_table(a)) if t is not None])


# --------------------------------------------------------------------------------------------
# the documents


def to_markdown(report: Report, figure_dir: str = "figures", *,
                templates: Templates | str | Path | None = None) -> str:
    """The report as Markdown (template ``insights.md``); figures are linked as ``figure_dir/<file>``."""
    return templates_from(templates).render("insights.md", report=report, figure_dir=figure_dir)


def to_html(report: Report, figures: dict[str, Path], *, templates: Templates | str | Path | None = None) -> str:
    """The report as one self-contained HTML page (template ``insights.html``; figures embedded from
    ``figures``)."""
    return templates_from(templates).render("insights.html", report=report, figures=figures, title=report.title,
                                            images=len(report.figures))


def write_documents(out_dir: str | Path, html: str, md: str) -> tuple[Path, Path]:
    """Write ``html`` and ``md`` as ``report.html`` and ``report.md`` into ``out_dir``; their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    with atomic_write(html_path) as fh:
        fh.write(html)
    with atomic_write(md_path) as fh:
        fh.write(md)
    return html_path, md_path


def write_report(analysis: dict, figures: dict[str, Path], out_dir: str | Path,
                 figure_dir: str = "figures", *, templates: Templates | str | Path | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into ``out_dir``; returns their paths.

    ``figures`` maps figure file names to the PNGs drawn (see :func:`write_figures`);
    ``figure_dir`` is their folder relative to ``out_dir``, for the Markdown links;
    ``templates`` a :class:`~wsnas.report.templating.Templates` or a user's folder of templates.
    """
    templates = templates_from(templates)
    report = build_report(analysis, figures)
    return write_documents(out_dir, to_html(report, figures, templates=templates),
                           to_markdown(report, figure_dir, templates=templates))
