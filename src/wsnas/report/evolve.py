"""Figures and tables of ``wsnas evolve``: a search's candidates with its Pareto front, and the
validation of evolution against random search on a ground truth (:mod:`wsnas.analysis.evolve`).

* :func:`candidates_figure` -- every evaluated candidate, coloured by generation, with the front
  marked: score against each cost objective (one panel each), or, with accuracy as the only
  objective, score against the order of evaluation with the best so far;
* :func:`validation_figure` -- the true rank of the architecture found against the number of
  evaluations, mean and range over seeds per method, with the best true rank among the
  candidates (dotted) and the exhaustive supernet ranking's top-1 (dashed) where known;
* :func:`write_validation` -- that figure, ``validation.md`` (the table, template
  ``evolve_validation_table.md``) and ``validation.csv``;
* :func:`write_evolve_report` -- the report of one search (templates ``evolve.html``/``.md``):
  its settings and constraints, the best architecture, the front, per generation the draws
  redrawn for a constraint, and ``candidates.png``;
* :func:`write_validation_report` -- the report of a validation (``evolve_validation.html``/``.md``):
  the table and the figure above.

Figures are standalone matplotlib figures on the Agg canvas (:mod:`wsnas.report.figures`).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from wsnas.core.errors import WsnasError
from wsnas.core.files import atomic_write
from wsnas.report.figures import fmt, new_figure, pct, save_figure
from wsnas.report.render import RunReport, write_run_report
from wsnas.report.templating import Templates, templates_from
from wsnas.store import Store

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


def validation_table(analysis: Mapping) -> tuple[list[str], list[list[str]]]:
    """The validation table's header and rows (one per checkpoint)."""
    methods = analysis["methods"]
    header = ["evaluations"]
    for m in methods:
        header += [f"{m}: found rank, mean ± SD (min–max)", f"{m}: its true acc (%)", f"{m}: its score (%)",
                   f"{m}: best candidate's rank"]
    rows = []
    for row in analysis["rows"]:
        cells = [str(row["evaluations"])]
        for m in methods:
            cells += [f"{fmt(row[f'{m}_mean'], 1)} ± {fmt(row[f'{m}_sd'], 1)} ({row[f'{m}_min']}–{row[f'{m}_max']})",
                      fmt(100 * row[f"{m}_acc"], 2), fmt(100 * row[f"{m}_score"], 2),
                      fmt(row[f"{m}_evaluated_best"], 1)]
        rows.append(cells)
    return header, rows


def _validation_text(analysis: Mapping) -> tuple[str, str | None]:
    """What the table shows, and the exhaustive reference (None without one)."""
    seeds = ", ".join(f"{m} {len(analysis['seeds'][m])}" for m in analysis["methods"])
    intro = (f"True rank (1 = best of {analysis['space_size']} in {analysis['truth']}) of the architecture each "
             f"search returns (its best score with shared weights) after n evaluations, its true accuracy and its "
             f"score, means over seeds ({seeds}); and the best true rank among the candidates.")
    ref = analysis.get("exhaustive")
    reference = None if not ref else (
        f"Exhaustive: the supernet's top-1 over all {ref['evaluations']} architectures (score "
        f"{fmt(100 * ref['score'], 2)}%) has true rank {ref['rank']} (true accuracy {fmt(100 * ref['acc'], 2)}%).")
    return intro, reference


def validation_markdown(analysis: Mapping, *, templates: Templates | str | Path | None = None) -> str:
    """The validation table in Markdown (template ``evolve_validation_table.md``)."""
    header, rows = validation_table(analysis)
    intro, reference = _validation_text(analysis)
    return templates_from(templates).render("evolve_validation_table.md", intro=intro, header=header, rows=rows,
                                            reference=reference, analysis=analysis)


def write_validation(analysis: Mapping, out_dir: str | Path, *,
                     templates: Templates | str | Path | None = None) -> dict[str, str]:
    """``validation.png``, ``validation.md`` and ``validation.csv`` in ``out_dir``; their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure = validation_figure(analysis, out / "validation.png")
    md = out / "validation.md"
    with atomic_write(md, "w") as f:
        f.write(validation_markdown(analysis, templates=templates))
    table = out / "validation.csv"
    rows = analysis["rows"]
    with atomic_write(table, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(list(rows[0]))
        for row in rows:
            w.writerow([repr(v) if isinstance(v, float) else v for v in row.values()])
    return {"figure": str(figure), "md": str(md), "csv": str(table)}


def _costs(c: Mapping) -> str:
    latency = "" if c.get("latency_ms") is None else f", {c['latency_ms']:.3f} ms"
    return f"{int(c['params']):,} parameters, {fmt(c['mflops'], 2)} MFLOPs{latency}"


def _truth_text(c: Mapping, truth: Mapping | None) -> str:
    if truth is None:
        return ""
    if c.get("truth") is None:
        return f"; not in {truth['source']}"
    return f"; true accuracy {pct(c['truth'])}%, rank {c['truth_rank']} of {truth['n']} in {truth['source']}"


def evolve_report(a: dict) -> RunReport:
    """The content of the report of one search (:func:`wsnas.analysis.evolve.analyse_search`'s ``a``)."""
    cfg = a["config"]
    search = cfg.get("search") or {}
    method = cfg.get("method", "–")
    objectives = cfg.get("objectives") or ["acc"]
    constraints = cfg.get("constraints") or {}
    scoring = cfg.get("scoring") or {}
    if method == "evolution":
        how = (f"evolution: {search.get('population')} candidates per generation for {search.get('generations')} "
               f"generations; parents the top {search.get('parents')} so far, {search.get('mutations')} mutations "
               f"(each choice redrawn with probability {search.get('mutation_prob')}) and "
               f"{search.get('crossovers')} crossovers per generation")
    elif method == "random":
        how = f"random search: {search.get('population')} x {search.get('generations')} uniform draws"
    else:
        how = f"{method}: every architecture of the space"
    setup = [
        ("search", f"{a['run_id']} (status {a['status']}), seed {cfg.get('seed', '–')}"),
        ("supernet run", str(cfg.get("supernet_run", "–"))),
        ("method", how),
        ("objectives", ", ".join(objectives) + (" (a Pareto front)" if len(objectives) > 1 else "")),
        ("constraints", " and ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in constraints.items())
         or "none"),
        ("scoring", f"validation accuracy with shared weights after batch-norm recalibration on "
                    f"{scoring.get('recal_batches', '–')} training batches of {scoring.get('recal_batch_size', '–')}"),
        ("ground truth", "none given" if a["truth"] is None
         else f"{a['truth']['source']} ({a['truth']['n']} architectures)"),
    ]
    best = a["best"]
    summary = [f"{len(a['candidates'])} candidates evaluated; {a['redraws']} draws broke a constraint and were "
               f"redrawn, {a['duplicates']} were evaluated before and skipped."]
    if best is not None:
        summary.append(f"Best: {best['arch']}, {pct(best['score'])}% with shared weights ({_costs(best)}; "
                       f"generation {best['generation']}, by {best['origin']}){_truth_text(best, a['truth'])}.")
    with_truth = a["truth"] is not None
    costs = [o for o in ("params", "mflops", "latency") if o in objectives or f"max_{o}" in constraints
             or (o == "latency" and "max_latency_ms" in constraints)]
    labels = {"params": "parameters", "mflops": "MFLOPs", "latency": "latency (ms)"}
    keys = {"params": "params", "mflops": "mflops", "latency": "latency_ms"}

    def cost_cell(c: Mapping, o: str) -> str:
        value = c.get(keys[o])
        return "–" if value is None else f"{int(value):,}" if o == "params" else fmt(value, 3 if o == "latency" else 2)

    front = ("Pareto front" if len(objectives) > 1 else "The best architecture",
             ["architecture", "score (%)", *(labels[o] for o in costs), "generation", "made by",
              *(["true accuracy (%)", "true rank"] if with_truth else [])],
             [[c["arch"], pct(c["score"]), *(cost_cell(c, o) for o in costs), str(c["generation"]), c["origin"],
               *([pct(c["truth"]), "–" if c["truth_rank"] is None else str(c["truth_rank"])] if with_truth else [])]
              for c in (a["front"] if len(objectives) > 1 else [best] if best is not None else [])],
             ["Best score first. Score: validation accuracy with the supernet's shared weights."
              + (f" True rank 1 = the best of {a['truth']['n']}." if with_truth else "")])
    made = sorted({k for g in a["generations"] for k in g if k.startswith("made_")})
    generations = ("Per generation",
                   ["generation", "evaluations so far", "best score (%)", "redrawn (constraint)", "skipped (seen)",
                    *(k.removeprefix("made_") for k in made)],
                   [[str(g["generation"]), fmt(g.get("evaluations"), 0), pct(g.get("best_score")),
                     fmt(g.get("redraws"), 0), fmt(g.get("duplicates"), 0), *(fmt(g.get(k) or 0, 0) for k in made)]
                    for g in a["generations"]],
                   ["Generations count from 0, as the store and the figure do. Redrawn: draws that broke a "
                    "constraint (never evaluated); skipped: draws evaluated before. The last columns count the new "
                    "candidates by how they were made."])
    return RunReport(title=f"Search {a['run_id']} of supernet {cfg.get('supernet_run', '')}", setup=setup,
                     summary=summary, tables=[front, generations])


def write_evolve_report(store: Store, run_id: str, out_dir: str | Path, *, truth: str | None = None,
                        truth_config: str | None = None, templates: Templates | str | Path | None = None) -> dict:
    """Write the report of ``evolve`` search ``run_id`` of ``store`` into ``out_dir`` (with
    ``candidates.png``); returns :func:`~wsnas.report.render.write_run_report`'s dict."""
    from wsnas.analysis.evolve import analyse_search

    a = analyse_search(store, run_id, truth=truth, truth_config=truth_config)
    report = evolve_report(a)
    out_dir = Path(out_dir)
    objectives = a["config"].get("objectives") or ["acc"]
    figure = candidates_figure(a["candidates"], objectives, out_dir / "candidates.png",
                               title=f"{run_id}: {len(a['candidates'])} candidates, {len(a['front'])} on the front")
    figures = {}
    if figure is not None:
        figures["candidates.png"] = figure
        report.figures.append(("candidates.png", "Every candidate, the front marked",
                               "Each dot is one evaluated architecture, coloured by its generation; circled: the "
                               + ("Pareto front (no other candidate is both more accurate and cheaper)."
                                  if len(objectives) > 1 else "best. The line is the best score so far.")))
    return write_run_report(report, figures, out_dir, "evolve", templates=templates, analysis=a)


def write_validation_report(store: Store, prefix: str, out_dir: str | Path, *, truth: str,
                            truth_config: str | None = None, seeds: Sequence[int] | None = None,
                            templates: Templates | str | Path | None = None) -> dict:
    """Write the report of the validation ``prefix`` (searches ``PREFIX/<method>/<seed>``) against
    ``truth`` into ``out_dir``, with ``validation.png``, ``validation.md`` and ``validation.csv``;
    returns :func:`~wsnas.report.render.write_run_report`'s dict."""
    from wsnas.analysis.evolve import analyse_validation, search_truth, validation_runs

    templates = templates_from(templates)
    stored = validation_runs(store, prefix)
    first = next((f"{prefix}/{m}/{s}" for m, ss in stored.items() for s in ss), None)
    if first is None:
        raise WsnasError(f"no searches {prefix}/<method>/<seed> in {store.path} to validate")
    table, source = search_truth(store, store.get_run(first), truth, truth_config)
    analysis = analyse_validation(store, prefix, table, seeds=seeds)
    paths = write_validation(analysis, out_dir, templates=templates)
    header, rows = validation_table(analysis)
    intro, reference = _validation_text(analysis)
    supernet = store.get_run(first)["config"].get("supernet_run", "–")
    setup = [("searches", f"{prefix}/<method>/<seed>: " + ", ".join(
                 f"{m} seeds {', '.join(map(str, analysis['seeds'][m]))}" for m in analysis["methods"])),
             ("supernet run", str(supernet)),
             ("budget", f"{analysis['budget']} evaluations per search"),
             ("ground truth", f"{source} ({analysis['space_size']} architectures)")]
    last = analysis["rows"][-1]
    summary = [f"After {last['evaluations']} evaluations, {m} finds true rank "
               f"{fmt(last[f'{m}_mean'], 1)} on average (best {last[f'{m}_min']}, worst {last[f'{m}_max']})."
               for m in analysis["methods"]] + ([reference] if reference else [])
    report = RunReport(title=f"Evolution against random search: {prefix}", setup=setup, summary=summary,
                       tables=[("The true rank of what each search finds", header, rows, [intro])],
                       figures=[("validation.png", "True rank of the architecture found",
                                 "Mean over seeds (line) and range (band) of the true rank of the best-scored "
                                 "candidate after n evaluations, per method; dotted: the best true rank among the "
                                 "candidates so far; dashed: the supernet's top-1 over every architecture, where "
                                 "the space was scored exhaustively. Lower is better.")])
    out = write_run_report(report, {"validation.png": Path(paths["figure"])}, out_dir, "evolve_validation",
                           templates=templates, analysis=analysis)
    return {**out, "validation": paths}


__all__ = ["candidates_figure", "evolve_report", "validation_figure", "validation_markdown", "validation_table",
           "write_evolve_report", "write_validation", "write_validation_report"]
