"""One differentiable search end to end (``wsnas search``): search, select with every method
asked for, and give each selected architecture its ground truth — from a truth table
(``--truth``: built-in, CSV, benchmark, or the store's own) or, with ``retrain``, trained from
scratch into the store (one seed, the dataset's from-scratch recipe).

The search itself is :func:`wsnas.selection.search.run_search` (resumable, its run's life in
:mod:`wsnas.runs`); the study over every strategy is :mod:`wsnas.experiments.search_study`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wsnas.data import Dataset
from wsnas.execution.executor import Executor
from wsnas.groundtruth.run import run_groundtruth
from wsnas.groundtruth.truth import STORE_TRUTH, check_store_truth, resolve_truth
from wsnas.selection.search import SearchConfig, run_search
from wsnas.spaces import Arch, Space
from wsnas.store import Store
from wsnas.strategies import Strategy
from wsnas.training.monitor import tensorboard_monitor
from wsnas.training.standalone import TrainConfig


@dataclass
class SearchOutcome:
    """The selections of one search (one row per method, as stored) and its training cost."""

    rows: list[dict]
    seconds: float  # the search's training time, summed over its epochs


def retrainer(space: Space, data: Dataset, cfg: TrainConfig, *, store: Store, executor: Executor | None = None,
              progress: bool = True) -> Callable[[Arch], float]:
    """A function that trains an architecture from scratch (seed 0) into ``store`` and returns its
    test accuracy (NaN when the training diverged); a rerun finds the stored training and returns it
    without training again."""

    def retrain(arch: Arch) -> float:
        summary = run_groundtruth(space, data, cfg, seeds=[0], archs=[arch], store=store, progress=progress,
                                  executor=executor)
        rows = store.groundtruth(space=space.name, dataset=data.name, config_hash=summary.config_hash)
        name = space.format(arch)
        value = next(r["test_acc"] for r in rows if r["arch"] == name and r["seed"] == 0)
        return float("nan") if value is None else float(value)

    return retrain


def search(space: Space, data: Dataset, strategy: Strategy, cfg: SearchConfig, *, seed: int, run_id: str,
           run_dir: str | Path, store_path: str | Path, truth: str | None = None,
           retrain: TrainConfig | None = None, executor: Executor | None = None,
           progress: bool = True, tensorboard: str | Path | None = None) -> SearchOutcome:
    """Search (or resume), select, and look up or train each selection's ground truth; ``tensorboard``:
    a folder, the search's live curves go to ``<folder>/<run_id>``."""
    # as train_supernet: a bad ground truth is refused before the store is opened or created
    table, source = (None, None) if truth == STORE_TRUTH else resolve_truth(truth, space=space.name)
    if truth == STORE_TRUTH:
        check_store_truth(store_path)
    with Store(store_path) as store:
        if truth == STORE_TRUTH:
            table, source = resolve_truth(truth, store=store, space=space.name, dataset=data.name)
        train = None if retrain is None else retrainer(space, data, retrain, store=store, executor=executor,
                                                       progress=progress)
        with tensorboard_monitor(None if tensorboard is None else Path(tensorboard) / run_id) as monitor:
            rows = run_search(space, data, strategy, cfg, seed=seed, store=store, run_id=run_id, run_dir=run_dir,
                              truth=table, truth_source=source, retrain=train, progress=progress, monitor=monitor)
        seconds = sum(m["value"] or 0.0 for m in store.run_metrics(run_id, name="epoch_seconds"))
    return SearchOutcome(rows=rows, seconds=seconds)


__all__ = ["SearchOutcome", "retrainer", "search"]
