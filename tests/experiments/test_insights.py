"""The insights study's live curves: every supernet instance's GT-Tau against the study's own ground truth."""

import json

import numpy as np
from conftest import float32, tensorboard_scalars

from wsnas import metrics
from wsnas.analysis.insights import experiment_truth
from wsnas.data import load_dataset
from wsnas.evaluator import EvalConfig
from wsnas.experiments.insights import InsightsConfig, run_insights
from wsnas.groundtruth.run import groundtruth_config
from wsnas.spaces import get_space
from wsnas.store import Store
from wsnas.training.standalone import TrainConfig


def test_each_instance_writes_its_curves_with_the_studys_gt_tau(tmp_path):
    """The ground truth is in the store already (no training), so the study trains one supernet; its
    curves in DIR/<run id> carry GT-Tau after every epoch as the analysis computes it from the store."""
    space = get_space("tiny64", channels=4, stem_channels=8)
    data = load_dataset("digits", limit=200)
    cfg = InsightsConfig(gt_seeds=1, groundtruth=TrainConfig(epochs=1, batch_size=128),
                         supernet=TrainConfig(epochs=2, batch_size=128), instances={"seeds": 1, "orders": 0,
                                                                                    "shuffle": 0},
                         dense_last=1, finetune_steps=0, eval=EvalConfig(batch_size=256))
    gt_config = groundtruth_config(space, data, cfg.groundtruth)
    accuracy = np.random.default_rng(0).permutation(64) / 100
    tb = tmp_path / "tb"
    with Store(tmp_path / "r.db") as store:
        store.add_groundtruth_many([
            {"space": "tiny64", "arch": space.format(a), "arch_index": i, "dataset": data.name, "seed": 0,
             "epochs": 1, "config_json": json.dumps(gt_config, sort_keys=True), "test_acc": float(accuracy[i])}
            for i, a in enumerate(space.enumerate())])
        run_insights(space, data, cfg, run_dir=tmp_path / "run", store=store, experiment="x", progress=False,
                     log=lambda line: None, tensorboard=tb)
        truth = experiment_truth(store, store.get_run("x"))
        labels, archs, matrix = store.prediction_matrix("x/seeds/0")
        epoch_ends = [r["step"] for r in store.run_metrics("x/seeds/0", name="train_loss")]
    assert [p.relative_to(tb).parent.as_posix() for p in tb.rglob("events.*")] == ["x/seeds/0"]  # nothing trained
    gt = truth.accuracy[[truth.position(a) for a in archs]]
    got = tensorboard_scalars(tb / "x" / "seeds" / "0")
    taus = [metrics.gt_tau(matrix[labels.index(f"epoch:{e}")], gt) for e in (1, 2)]
    assert got["eval/gt_tau"] == list(zip(epoch_ends, float32(taus)))
    assert got["dense/gt_tau"] == [(epoch_ends[-1], float(np.float32(taus[-1])))]
