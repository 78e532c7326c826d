"""One supernet run (``wsnas supernet``), read from the store: how it trained and how it ranks.

:func:`analyse_supernet` returns a plain dict: the run's settings, its training curve per epoch
(``run_metrics``: training loss and accuracy, mean validation accuracy of the children with
shared weights, seconds), the children ranked by their shared-weight accuracy after the last
epoch, and, given a ground truth, GT-Tau after every epoch and GT-Tau, Spearman, T1R and T3R
after the last (:func:`wsnas.analysis.insights.instance_metrics`).
"""

from __future__ import annotations

import math

import numpy as np

from wsnas.analysis.insights import instance_metrics
from wsnas.core.errors import WsnasError
from wsnas.groundtruth.table import TruthTable
from wsnas.groundtruth.truth import resolve_truth
from wsnas.store import Store

__all__ = ["CURVE_METRICS", "analyse_supernet", "run_truth"]

#: The per-epoch ``run_metrics`` of a supernet run, as the curve holds them.
CURVE_METRICS = ("train_loss", "train_acc", "mean_child_acc", "epoch_seconds")


def run_truth(store: Store, config: dict, truth: str | None, truth_config: str | None = None
              ) -> tuple[TruthTable | None, str | None]:
    """The ground truth ``truth`` (a ``--truth`` spec, None: none) for a supernet run whose stored
    config is ``config`` (its space and dataset), with its source label."""
    return resolve_truth(truth, store=store, space=config["space"]["space"], dataset=config["data"]["name"],
                         config_hash=truth_config)


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def analyse_supernet(store: Store, run_id: str, *, truth: str | None = None, truth_config: str | None = None,
                     top: int = 10) -> dict:
    """Everything the report of supernet run ``run_id`` shows (see the module); ``top`` children in
    the ranking.

    Raises:
        WsnasError: no such supernet run, or a ground truth that cannot be read or lacks a child.
    """
    run = store.get_run(run_id)
    if run is None or run["kind"] != "supernet":
        raise WsnasError(f"no supernet run {run_id!r} in {store.path}; found: "
                         f"{', '.join(r['run_id'] for r in store.list_runs('supernet')) or 'none'}")
    cfg = run["config"]
    table, source = run_truth(store, cfg, truth, truth_config)
    labels, archs, matrix = store.prediction_matrix(run_id) if store.checkpoints(run_id) else ([], [], None)
    epoch_rows = sorted((i for i, lab in enumerate(labels) if lab.startswith("epoch:")),
                        key=lambda i: int(labels[i].split(":")[1]))
    curve: dict[str, dict[int, float | None]] = {name: {} for name in CURVE_METRICS}
    for row in store.run_metrics(run_id):
        if row["name"] in curve and row["epoch"] is not None:
            curve[row["name"]][int(row["epoch"])] = _number(row["value"])
    epochs = sorted({e for values in curve.values() for e in values})
    out: dict = {
        "run_id": run_id, "status": run["status"], "seed": run["seed"], "config": cfg,
        "children": len(archs), "epochs_done": len(epoch_rows),
        "curve": {"epochs": epochs, **{name: [curve[name].get(e) for e in epochs] for name in CURVE_METRICS}},
        "ranking": [], "truth": None, "against_truth": None,
    }
    if not epoch_rows:
        return out
    final = matrix[epoch_rows[-1]]
    order = np.argsort(-final, kind="stable")
    positions = ranks = None
    if table is not None:
        positions = [table.position(a) for a in archs]  # a child the truth lacks: one line, before any number
        ranks = table.ranks()
        inst = instance_metrics(store, run_id, table, k=int(cfg["supernet"].get("dense_last") or 64))
        out["truth"] = {"source": source, "n": len(table)}
        out["against_truth"] = {**{k: inst["final"][k] for k in ("gt_tau", "spearman", "t1r", "t3r")},
                                "epochs": inst["epochs"], "epoch_gt_tau": inst["epoch_gt_tau"],
                                "dense": {k: v for k, v in inst["dense"].items() if k != "matrix"}
                                if "dense" in inst else None}
    for place, j in enumerate(order[:top], start=1):
        row = {"rank": place, "arch": archs[j], "accuracy": _number(final[j]), "truth": None, "truth_rank": None}
        if positions is not None:
            row["truth"] = float(table.accuracy[positions[j]])
            row["truth_rank"] = int(ranks[positions[j]])
        out["ranking"].append(row)
    return out
