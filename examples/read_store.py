"""Read a study's results from its store, from Python (docs/python.md, section 4).

Every number wsnas measures is a row of one SQLite file, the results store. This example first
runs a tiny study into a store (unless you give one that has it): the insights study of
*Deeper Insights into Weight Sharing in NAS* on the 9 children of ``examples/my_space.py`` with
two layers -- every child trained from scratch with two seeds (the ground truth), three supernets
(two seeds, one order) scored after every epoch and after each of their last mini-batches, and
every child fine-tuned for a few steps from the first supernet.

Then it opens the store read-only and reads it three ways: the rows themselves (runs, ground
truth, the prediction matrix of a supernet), a metric computed by hand from them (GT-Tau: Kendall's
tau between the supernet's ranking and the ground truth's), and the study's whole analysis
(``analyse_insights``, what ``wsnas report`` draws).

Run it from the repository root:

    python -m examples.read_store --store study.db      # runs the study once, then only reads
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from wsnas import metrics
from wsnas.analysis.insights import analyse_insights
from wsnas.data import load_dataset
from wsnas.evaluator import EvalConfig
from wsnas.experiments.insights import InsightsConfig, run_insights
from wsnas.groundtruth.truth import truth_from_store
from wsnas.spaces import get_space
from wsnas.store import Store
from wsnas.training.standalone import TrainConfig

EXPERIMENT = "insights"


def tiny_study(store_path: str | Path, run_dir: str | Path, *, epochs: int = 3, limit: int = 300) -> None:
    """The insights study, small: 9 children, ground truth of ``epochs`` epochs and 2 seeds, 3 supernets
    of ``epochs`` epochs, on at most ``limit`` digits per split."""
    space = get_space("examples.my_space:make_space", width=8, depth=2)  # recorded so that it can be rebuilt
    data = load_dataset("digits", limit=limit)
    train = TrainConfig(epochs=epochs, batch_size=16, lr=0.1)
    cfg = InsightsConfig(gt_seeds=2, groundtruth=train, supernet=train,
                         instances={"seeds": 2, "orders": 1, "shuffle": 0}, dense_last=4, finetune_steps=2,
                         eval=EvalConfig(bn_mode="batch"))
    with Store(store_path) as store:
        run_insights(space, data, cfg, run_dir=run_dir, store=store, experiment=EXPERIMENT, progress=False,
                     log=lambda *_: None)


def read(store_path: str | Path, experiment: str = EXPERIMENT) -> dict:
    """What the store holds about the study, read without writing anything."""
    with Store(store_path, read_only=True) as store:
        study = store.get_run(experiment)  # its config names every run it is made of
        space, dataset = study["config"]["space"]["space"], study["config"]["data"]["name"]
        truth = truth_from_store(store, space=space, dataset=dataset)  # the mean over seeds
        supernets = {}
        for group, run_ids in study["config"]["groups"].items():
            for run_id in run_ids:
                labels, archs, matrix = store.prediction_matrix(run_id)  # checkpoints x children
                final = matrix[labels.index(max((lab for lab in labels if lab.startswith("epoch:")),
                                                key=lambda lab: int(lab.split(":")[1])))]
                gt = truth.accuracy[[truth.position(a) for a in archs]]
                supernets[run_id] = {"group": group, "checkpoints": labels, "archs": archs,
                                     "final": final, "gt_tau": metrics.gt_tau(final, gt),
                                     "predictions": len(store.predictions(run_id))}
        return {"study": study, "tables": store.tables(), "groundtruth": store.groundtruth(space=space),
                "truth": truth, "supernets": supernets, "analysis": analyse_insights(store, experiment)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.read_store", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default=None,
                        help="the store to read; the study is run into it first if it lacks it "
                             "(default: a temporary store)")
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs of the study's trainings, ground truth and supernets (default 3)")
    parser.add_argument("--limit", type=int, default=300, help="at most this many digits per split (default 300)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(args.store) if args.store else Path(tmp) / "results.db"
        if not store_path.exists():
            print(f"running the tiny study into {store_path} ...")
            tiny_study(store_path, store_path.parent / "study-runs", epochs=args.epochs, limit=args.limit)
        else:
            with Store(store_path, read_only=True) as store:
                if store.get_run(EXPERIMENT) is None:
                    parser.error(f"{store_path} holds no study {EXPERIMENT!r}; give a new file to run it into")
        result = read(store_path)
    print("rows per table: " + ", ".join(f"{t} {n}" for t, n in result["tables"].items() if n))
    truth = result["truth"]
    best = int(np.argmax(truth.accuracy))
    print(f"ground truth: {len(truth)} children, {len(truth.per_seed)} seeds, best {truth.archs[best]} "
          f"({truth.accuracy[best]:.3f})")
    groups = result["analysis"]["groups"]
    for run_id, s in result["supernets"].items():
        from_analysis = next(i["final"]["gt_tau"] for i in groups[s["group"]]["instances"] if i["run_id"] == run_id)
        print(f"{run_id}: {len(s['checkpoints'])} checkpoints x {len(s['archs'])} children; final GT-Tau "
              f"{s['gt_tau']:.3f} by hand, {from_analysis:.3f} in the analysis")
    print("the study's findings on this data:")
    for finding in result["analysis"]["findings"]:
        verdict = {True: "holds", False: "does not hold", None: "undecided"}[finding.get("holds")]
        print(f"  {finding.get('claim', finding.get('title', ''))}: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
