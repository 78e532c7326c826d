"""One supernet run end to end (``wsnas supernet``): train it with a single-path strategy, rank
the children with its shared weights, and compare the final ranking with a ground truth.

:func:`train_supernet` opens (or resumes) the run in the store, trains it through
:func:`wsnas.runs.train_run` (checkpoint every epoch, status ``interrupted`` on Ctrl-C), and
returns a :class:`SupernetOutcome`: the final epoch's summary, the children's accuracies with
shared weights, and, with a ground truth, GT-Tau, Spearman and T1R/T3R. In a data-parallel run
(``replica``) every rank trains in lockstep; only rank 0 writes the store and gets an outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsnas import metrics
from wsnas.core import distributed
from wsnas.data import Dataset
from wsnas.groundtruth.truth import STORE_TRUTH, check_store_truth, check_truth_covers, resolve_truth
from wsnas.report.rundir import record_run_dir
from wsnas.runs import train_run
from wsnas.spaces import Arch, Space
from wsnas.store import Store
from wsnas.strategies import Strategy
from wsnas.supernet.sharing import Sharing
from wsnas.training.monitor import tensorboard_monitor
from wsnas.training.trainer import SupernetConfig, SupernetTrainer


def default_run_id(strategy: Strategy, seed: int, sharing: Sharing) -> str:
    """``supernet/<strategy>/<seed>``, plus the sharing label when sharing is partial (under group
    sharing ``strategy`` is the order of the children inside each group); PA&DA with a credit rule
    other than the authors' is ``<strategy>-credit-<rule>``."""
    credit = strategy.describe().get("credit")
    name = strategy.name if credit is None else f"{strategy.name}-credit-{credit}"
    return f"supernet/{name}/{seed}" + ("" if sharing.is_full else f"/{sharing.label}")


@dataclass
class SupernetOutcome:
    """What one supernet run produced (rank 0 of a data-parallel run)."""

    run_id: str
    run_dir: Path
    epochs: int
    resumed: bool
    summary: dict  # the last epoch's trainer summary (train_acc, mean_child_acc, ...)
    names: list[str]  # the children evaluated, in evaluation order
    accuracy: np.ndarray  # their validation accuracy with shared weights after the last epoch
    world_size: int | None = None  # ranks of a data-parallel run
    truth_source: str | None = None  # the ground truth's own name for itself, when it has one
    against_truth: dict | None = None  # gt_tau, spearman, t1r, t3r

    def best(self, n: int = 5) -> list[tuple[str, float]]:
        """The ``n`` children the shared weights rank highest, with their accuracy."""
        order = sorted(range(len(self.names)), key=lambda j: -self.accuracy[j])
        return [(self.names[j], float(self.accuracy[j])) for j in order[:n]]


def train_supernet(space: Space, data: Dataset, strategy: Strategy, cfg: SupernetConfig, *, seed: int,
                   run_id: str, run_dir: str | Path, store_path: str | Path, archs: Sequence[Arch] | None = None,
                   sharing: Sharing | None = None, truth: str | None = None, truth_config: str | None = None,
                   replica: distributed.Replica | None = None, progress: bool = True,
                   tensorboard: str | Path | None = None) -> SupernetOutcome | None:
    """Train (or resume) one supernet and rank its children; ``None`` on the ranks other than 0.

    ``tensorboard``: a folder; rank 0 writes the run's live curves into ``<folder>/<run_id>``
    (:class:`~wsnas.training.monitor.TensorBoardMonitor`), GT-Tau after every evaluation included
    when there is a ground truth.
    """
    run_dir = Path(run_dir)
    sharing = sharing if sharing is not None else Sharing()
    if replica is not None and not replica.is_main:
        # the other ranks train and evaluate in lockstep with rank 0 but write nothing
        trainer = SupernetTrainer(space, data, strategy, cfg, seed=seed, run_dir=run_dir, run_id=run_id,
                                  archs=archs, progress=False, replica=replica, sharing=sharing)
        trainer.try_resume()
        trainer.train()
        return None
    # a ground truth that is not the store's own is read (and its space checked) before the store is
    # opened, and the store's own only from a store that exists: a bad one writes nothing
    table = None if truth == STORE_TRUTH else resolve_truth(truth, space=space.name)[0]
    if truth == STORE_TRUTH:
        check_store_truth(store_path)
    with Store(store_path) as store:
        if truth == STORE_TRUTH:
            table, _ = resolve_truth(truth, store=store, space=space.name, dataset=data.name,
                                     config_hash=truth_config)
        if table is not None:
            check_truth_covers(table, space, list(archs) if archs is not None else list(space.enumerate()))
        trainer = SupernetTrainer(space, data, strategy, cfg, seed=seed, run_dir=run_dir, store=store,
                                  run_id=run_id, archs=archs, progress=progress, replica=replica, sharing=sharing)
        try:
            with tensorboard_monitor(None if tensorboard is None else Path(tensorboard) / run_id,
                                     truth=None if table is None else table.accuracy_of(trainer.names)) as monitor:
                summary, resumed = train_run(store, run_id, "supernet", trainer, seed=seed, monitor=monitor)
        finally:
            if trainer.epoch:  # an epoch is stored: `wsnas report RUN_DIR` describes it, also of a stopped run
                record_run_dir(run_dir, store.path, run_id, truth=truth, truth_config=truth_config)
        labels, names, matrix = store.prediction_matrix(run_id)
    final = [i for i, lab in enumerate(labels) if lab.startswith("epoch:")][-1]
    outcome = SupernetOutcome(run_id=run_id, run_dir=run_dir, epochs=trainer.epoch, resumed=resumed,
                              summary=summary, names=list(names), accuracy=matrix[final],
                              world_size=replica.world_size if replica is not None else None)
    if table is not None:
        gt = table.accuracy[[table.position(n) for n in names]]
        row = outcome.accuracy
        outcome.truth_source = table.source
        outcome.against_truth = {"gt_tau": metrics.gt_tau(row, gt), "spearman": metrics.spearman(row, gt),
                                 "t1r": metrics.top_n_rank(row, gt, 1), "t3r": metrics.top_n_rank(row, gt, 3)}
    return outcome


__all__ = ["SupernetOutcome", "default_run_id", "train_supernet"]
