"""``wsnas evolve`` end to end: search a trained supernet, store the candidates and the front, draw
them, export the result; or validate evolution against random search on a ground truth.

:func:`evolve` opens the finished supernet run (:func:`wsnas.selection.evolve.open_supernet_run`),
then either

* runs one search (``evolution`` or ``random``; run id ``PREFIX/<method>/<seed>``, resumed if
  it exists), writes ``candidates.png`` (every candidate, the front marked) into the output
  directory, and with ``export`` the front's architectures (best score first; with accuracy as
  the only objective, the best alone, the earliest of equal scores) one official string per
  line, as ``wsnas cost --arch`` and ``wsnas groundtruth --archs`` read them; with a ground
  truth it looks up the best's true accuracy and rank; or
* validates (``validate_seeds`` = N): both methods for seeds ``seed .. seed+N-1`` at the same
  budget, plus an exhaustive run of the whole space where it is enumerable and small
  (:data:`EXHAUSTIVE_AUTO` architectures or fewer, or when asked), all sharing one supernet and
  one score cache; then :func:`wsnas.analysis.evolve.validation` against the ground truth and
  ``validation.png``, ``validation.md``, ``validation.csv`` in the output directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from wsnas.analysis.evolve import analyse_validation
from wsnas.core.errors import WsnasError
from wsnas.core.files import atomic_write
from wsnas.groundtruth.truth import resolve_truth
from wsnas.report.evolve import candidates_figure, write_validation
from wsnas.report.rundir import VALIDATION, record_run_dir
from wsnas.selection.evolution import METHODS, EvolutionConfig
from wsnas.selection.evolve import (
    Constraints,
    ScoringConfig,
    SearchOutcome,
    SharedWeights,
    open_supernet_run,
    search_supernet,
)
from wsnas.spaces.base import MAX_ENUMERATE
from wsnas.store import Store

#: Spaces up to this size are scored exhaustively in a validation without being asked (tiny64).
EXHAUSTIVE_AUTO = 1000


def default_prefix(run_id: str) -> str:
    """The run-id prefix of the searches of supernet run ``run_id``."""
    return f"evolve/{run_id}"


@dataclass
class EvolveResult:
    """What :func:`evolve` did."""

    space: str
    outcomes: list[SearchOutcome]
    out_dir: Path
    objectives: tuple[str, ...]
    figure: str | None = None
    export: str | None = None
    exported: list[str] = field(default_factory=list)
    truth_source: str | None = None
    best_name: str | None = None  # the best candidate's official string
    best_truth: dict | None = None  # acc, rank, of (the size of the ground truth)
    validation: dict | None = None
    paths: dict = field(default_factory=dict)
    scored: int = 0  # architectures scored with the supernet in this process


def _truth_of(truth, name: str) -> dict | None:
    try:
        pos = truth.position(name)
    except WsnasError:
        return None
    return {"acc": float(truth.accuracy[pos]), "rank": int(truth.ranks()[pos]), "of": len(truth)}


def evolve(store_path: str | Path, run_id: str, *, run_dir: str | Path, method: str = "evolution", seed: int = 0,
           cfg: EvolutionConfig | None = None, constraints: Constraints | None = None,
           objectives: tuple[str, ...] = ("acc",), scoring: ScoringConfig | None = None, prefix: str | None = None,
           out_dir: str | Path | None = None, export: str | Path | None = None, truth: str | None = None,
           truth_config: str | None = None, validate_seeds: int = 0, exhaustive: bool = False,
           device: torch.device | str = "cpu", data_dir: str | Path | None = None,
           progress: bool = True) -> EvolveResult:
    """Search (or validate) on supernet run ``run_id`` of the store at ``store_path`` (see the module)."""
    cfg = cfg or EvolutionConfig()
    constraints = constraints or Constraints()
    scoring = scoring or ScoringConfig()
    if method not in METHODS:
        raise WsnasError(f"unknown search method {method!r}; accepted: {', '.join(METHODS)}")
    if validate_seeds < 0:
        raise WsnasError(f"--validate-seeds must be non-negative, got {validate_seeds}")
    if validate_seeds and truth is None:
        raise WsnasError("--validate-seeds compares the searches with a ground truth; give --truth (e.g. store, "
                         "nb201-cifar10)")
    prefix = prefix or default_prefix(run_id)
    with Store(store_path, create=False) as store:
        supernet = open_supernet_run(store, run_id, run_dir)
        space = supernet.space
        table, source = resolve_truth(truth, store=store, space=space.name, dataset=supernet.data_config["name"],
                                      config_hash=truth_config)
        weights = SharedWeights(supernet, scoring, device=device, data_dir=data_dir)

        def one(m: str, s: int, **kw) -> SearchOutcome:
            return search_supernet(store, supernet, weights, method=m, seed=s, cfg=cfg, constraints=constraints,
                                   objectives=objectives, run_id=f"{prefix}/{m}" + (f"/{s}" if m in METHODS else ""),
                                   device=device, progress=progress, **kw)

        if validate_seeds:
            out = Path(out_dir or Path("wsnas-runs") / prefix / "validation")
            outcomes = [one(m, s) for s in range(seed, seed + validate_seeds) for m in METHODS]
            enumerable = len(space) <= MAX_ENUMERATE
            if exhaustive and not enumerable:
                raise WsnasError(f"--exhaustive: {space.name} has {len(space):.3g} architectures, too many to score")
            scored_all = enumerable and (exhaustive or len(space) <= EXHAUSTIVE_AUTO)
            if scored_all:
                outcomes.append(one("exhaustive", 0))
            seeds = list(range(seed, seed + validate_seeds))
            analysis = analyse_validation(store, prefix, table, seeds=seeds, exhaustive=scored_all)
            paths = write_validation(analysis, out)
            record_run_dir(out, store.path, prefix, kind=VALIDATION, truth=truth, truth_config=truth_config,
                           seeds=seeds)
            return EvolveResult(space=space.name, outcomes=outcomes, out_dir=out, objectives=objectives,
                                truth_source=source, validation=analysis, paths=paths, scored=weights.evaluations)

        outcome = one(method, seed)
        out = Path(out_dir or Path("wsnas-runs") / outcome.run_id)
        rows = store.candidates(outcome.run_id)
    figure = candidates_figure(rows, objectives, out / "candidates.png",
                               title=f"{outcome.run_id}: {len(rows)} candidates, {len(outcome.front)} on the front")
    record_run_dir(out, store_path, outcome.run_id, truth=truth, truth_config=truth_config)
    result = EvolveResult(space=space.name, outcomes=[outcome], out_dir=out, objectives=objectives,
                          figure=None if figure is None else str(figure), truth_source=source,
                          scored=weights.evaluations)
    if export is not None:
        chosen = outcome.front if len(objectives) > 1 else [outcome.best] if outcome.best is not None else []
        result.exported = [space.format(e.arch) for e in chosen]
        with atomic_write(Path(export), "w") as f:
            f.write("".join(line + "\n" for line in result.exported))
        result.export = str(export)
    if outcome.best is not None:
        result.best_name = space.format(outcome.best.arch)
        if table is not None:
            result.best_truth = _truth_of(table, result.best_name)
    return result


__all__ = ["EXHAUSTIVE_AUTO", "EvolveResult", "default_prefix", "evolve"]
