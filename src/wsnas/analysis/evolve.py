"""Searches on a supernet against a ground truth: the true rank of what they find, per evaluation.

A search returns the candidate with the best score (accuracy with shared weights) among those
it evaluated. :func:`found_ranks` follows that choice along a search: after n evaluations, the
true rank (1 = the best architecture of the ground truth, ties sharing the best rank) of the
best-scored candidate among the first n. :func:`validation` gathers it over seeds for each
method (evolution and random search at the same budget) and, where the whole space was scored
(an ``exhaustive`` run), the true rank of the supernet's own top-1 over every architecture:
what an unlimited budget finds. Beside it, the true rank of the truly best candidate among
the first n (what a perfect scorer would pick from the same candidates) separates how well
a search explores from how well the shared weights rank.

Everything is read from the candidates the store holds (``Store.candidates``), never recomputed:
:func:`analyse_validation` gathers a validation's searches (``PREFIX/<method>/<seed>`` and
``PREFIX/exhaustive``) from the store, and :func:`analyse_search` describes one search (its
settings, candidates, front, best, and per generation the draws it redrew or skipped) for its
report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from wsnas.analysis.supernet import run_truth
from wsnas.core.errors import WsnasError
from wsnas.groundtruth.table import TruthTable
from wsnas.groundtruth.truth import resolve_truth
from wsnas.selection.evolution import METHODS
from wsnas.store import Store


def _truth_rows(candidates: Sequence[Mapping], truth: TruthTable) -> np.ndarray:
    rows = []
    for c in candidates:
        try:
            rows.append(truth.position(c["arch"]))
        except WsnasError:
            raise WsnasError(f"candidate {c['arch']!r} is not in the ground truth {truth.source or truth.dataset!r}; "
                             "validation needs a ground truth of every architecture (tiny64: `wsnas groundtruth`, "
                             "nb201: a converted benchmark table)") from None
    return np.asarray(rows, dtype=int)


def found_ranks(candidates: Sequence[Mapping], truth: TruthTable) -> dict[str, np.ndarray]:
    """For n = 1..len(candidates) (in evaluation order): ``found`` the true rank of the
    best-scored of the first n candidates (the earliest of equal scores), ``found_acc`` its
    true accuracy, ``found_score`` its score with shared weights, ``best_evaluated`` the best
    true rank among the first n."""
    if not candidates:
        empty = np.zeros(0)
        return {"found": empty.astype(int), "found_acc": empty, "found_score": empty,
                "best_evaluated": empty.astype(int)}
    rows = _truth_rows(candidates, truth)
    ranks = truth.ranks()[rows]
    scores = np.asarray([c["score"] for c in candidates], dtype=float)
    best = np.zeros(len(scores), dtype=int)
    for i in range(1, len(scores)):
        best[i] = i if scores[i] > scores[best[i - 1]] else best[i - 1]
    return {"found": ranks[best], "found_acc": truth.accuracy[rows][best], "found_score": scores[best],
            "best_evaluated": np.minimum.accumulate(ranks)}


def validation(runs: Mapping[str, Mapping[int, Sequence[Mapping]]], truth: TruthTable, *,
               checkpoints: Sequence[int] | None = None, exhaustive: Sequence[Mapping] | None = None) -> dict:
    """Evolution and random search against ``truth``: ``runs[method][seed]`` are a search's
    candidates in evaluation order (all methods with the same budget). ``checkpoints``: the
    numbers of evaluations the table reports (default: every tenth of the budget and the
    budget). ``exhaustive``: candidates of an exhaustive run, for the unlimited-budget reference.

    Returns ``{"truth": source, "space_size": len(truth), "budget": n, "methods": [...],
    "curves": {method: {"found": (seeds x n) array, "best_evaluated": ..., "found_acc": ...,
    "found_score": ...}},
    "seeds": {method: [seeds]}, "rows": [one dict per checkpoint], "exhaustive": {"rank", "acc",
    "evaluations"} or None}``. A row holds ``evaluations`` and, per method, ``<m>_mean``,
    ``<m>_median``, ``<m>_sd`` (ddof 0), ``<m>_min``, ``<m>_max`` of the found rank over seeds,
    ``<m>_acc`` (mean true accuracy of what was found), ``<m>_score`` (its mean score with shared
    weights: how well the search optimises what it is given) and ``<m>_evaluated_best`` (mean
    best true rank among the candidates). ``exhaustive`` holds ``rank``, ``acc`` and ``score`` of
    the supernet's top-1 over every architecture.
    """
    methods = [m for m in runs if runs[m]]
    if not methods:
        raise WsnasError("no search to validate")
    budgets = {len(c) for m in methods for c in runs[m].values()}
    if len(budgets) != 1:
        raise WsnasError(f"the searches to compare evaluated different numbers of candidates ({sorted(budgets)}); "
                         "compare them at one budget")
    budget = budgets.pop()
    curves: dict[str, dict[str, np.ndarray]] = {}
    for m in methods:
        per_seed = [found_ranks(runs[m][s], truth) for s in sorted(runs[m])]
        curves[m] = {k: np.stack([p[k] for p in per_seed]) for k in ("found", "found_acc", "found_score",
                                                                    "best_evaluated")}
    if checkpoints is None:
        step = max(1, budget // 10)
        checkpoints = sorted({*range(step, budget + 1, step), budget})
    checkpoints = [int(n) for n in checkpoints if 1 <= int(n) <= budget]
    rows = []
    for n in checkpoints:
        row: dict = {"evaluations": n}
        for m in methods:
            found = curves[m]["found"][:, n - 1].astype(float)
            row.update({f"{m}_mean": float(found.mean()), f"{m}_median": float(np.median(found)),
                        f"{m}_sd": float(found.std()), f"{m}_min": int(found.min()), f"{m}_max": int(found.max()),
                        f"{m}_acc": float(curves[m]["found_acc"][:, n - 1].mean()),
                        f"{m}_score": float(curves[m]["found_score"][:, n - 1].mean()),
                        f"{m}_evaluated_best": float(curves[m]["best_evaluated"][:, n - 1].mean())})
        rows.append(row)
    reference = None
    if exhaustive:
        whole = found_ranks(exhaustive, truth)
        reference = {"rank": int(whole["found"][-1]), "acc": float(whole["found_acc"][-1]),
                     "score": float(whole["found_score"][-1]), "evaluations": len(exhaustive)}
    return {"truth": truth.source or truth.dataset, "space_size": len(truth), "budget": budget, "methods": methods,
            "seeds": {m: sorted(runs[m]) for m in methods}, "curves": curves, "rows": rows, "exhaustive": reference}


def best_candidate(candidates: Sequence[Mapping]) -> Mapping | None:
    """The candidate a search returns: the best score, the earliest of equal scores."""
    return max(candidates, key=lambda c: (c["score"], -c["position"]), default=None)


def search_truth(store: Store, search: Mapping, truth: str | None, truth_config: str | None = None
                 ) -> tuple[TruthTable | None, str | None]:
    """The ground truth ``truth`` (a ``--truth`` spec) for the supernet that ``search`` (a stored
    ``evolve`` run) searched."""
    supernet = store.get_run(search["config"]["supernet_run"])
    if supernet is None:  # the supernet's run is gone: only a truth that does not come from its settings
        return resolve_truth(truth)
    return run_truth(store, supernet["config"], truth, truth_config)


def _truth_of(table: TruthTable | None, arch: str) -> dict:
    if table is None:
        return {"truth": None, "truth_rank": None}
    try:
        pos = table.position(arch)
    except WsnasError:
        return {"truth": None, "truth_rank": None}
    return {"truth": float(table.accuracy[pos]), "truth_rank": int(table.ranks()[pos])}


def analyse_search(store: Store, run_id: str, *, truth: str | None = None, truth_config: str | None = None) -> dict:
    """One ``evolve`` search: ``config`` (supernet run, method, seed, budget, constraints, objectives,
    scoring), ``candidates`` in evaluation order, ``front`` (best score first), ``best``, per
    ``generations`` the stored counts (``evaluations``, ``redraws``, ``duplicates``, ``best_score``,
    ``made_<origin>``) and their totals ``redraws`` and ``duplicates``; with ``truth``, the true
    accuracy and rank of the best and of the front's architectures (None where the truth lacks one)."""
    run = store.get_run(run_id)
    if run is None or run["kind"] != "evolve":
        raise WsnasError(f"no evolve search {run_id!r} in {store.path}; found: "
                         f"{', '.join(r['run_id'] for r in store.list_runs('evolve')) or 'none'}")
    table, source = search_truth(store, run, truth, truth_config)
    candidates = store.candidates(run_id)
    front = sorted((c for c in candidates if c["on_front"]), key=lambda c: (-c["score"], c["position"]))
    best = best_candidate(candidates)
    generations: dict[int, dict] = {}
    for row in store.run_metrics(run_id):
        generations.setdefault(int(row["step"]), {"generation": int(row["step"])})[row["name"]] = row["value"]
    per_generation = [generations[g] for g in sorted(generations)]
    return {
        "run_id": run_id, "status": run["status"], "config": run["config"], "candidates": candidates,
        "front": [{**c, **_truth_of(table, c["arch"])} for c in front],
        "best": None if best is None else {**best, **_truth_of(table, best["arch"])},
        "generations": per_generation,
        "redraws": int(sum(g.get("redraws") or 0 for g in per_generation)),
        "duplicates": int(sum(g.get("duplicates") or 0 for g in per_generation)),
        "truth": None if table is None else {"source": source, "n": len(table)},
    }


def validation_runs(store: Store, prefix: str) -> dict[str, list[int]]:
    """The seeds of every method's searches ``PREFIX/<method>/<seed>`` in the store (sorted)."""
    seeds: dict[str, list[int]] = {m: [] for m in METHODS}
    for r in store.list_runs("evolve"):
        head, _, seed = r["run_id"].rpartition("/")
        method = head.removeprefix(prefix + "/")
        if method in seeds and head == f"{prefix}/{method}" and seed.isdigit():
            seeds[method].append(int(seed))
    return {m: sorted(s) for m, s in seeds.items()}


def analyse_validation(store: Store, prefix: str, truth: TruthTable, *, seeds: Sequence[int] | None = None,
                       exhaustive: bool | None = None) -> dict:
    """:func:`validation` of the searches ``PREFIX/<method>/<seed>`` of ``store`` for ``seeds``
    (default: every seed stored), at every generation's number of evaluations, with the run
    ``PREFIX/exhaustive`` as the reference when ``exhaustive`` (default: when it is stored)."""
    stored = validation_runs(store, prefix)
    runs = {m: {s: store.candidates(f"{prefix}/{m}/{s}") for s in (stored[m] if seeds is None else seeds)}
            for m in METHODS}
    if not any(runs.values()):
        raise WsnasError(f"no searches {prefix}/<method>/<seed> in {store.path} to validate; run "
                         "`wsnas evolve --validate-seeds N` first")
    first = next(f"{prefix}/{m}/{s}" for m in METHODS for s in runs[m])
    search = store.get_run(first)["config"]["search"]
    checkpoints = [search["population"] * g for g in range(1, search["generations"] + 1)]
    reference = f"{prefix}/exhaustive"
    if exhaustive is None:
        exhaustive = store.get_run(reference) is not None
    return {**validation(runs, truth, checkpoints=checkpoints,
                         exhaustive=store.candidates(reference) if exhaustive else None), "prefix": prefix}


__all__ = ["analyse_search", "analyse_validation", "best_candidate", "found_ranks", "search_truth", "validation",
           "validation_runs"]
