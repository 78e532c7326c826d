"""The trainer's monitor: what it is told, TensorBoard's event files read back, a resume continuing
its curves, and the one-line refusal when the tensorboard package is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import float32, tensorboard_scalars

import wsnas
from wsnas import metrics
from wsnas.core.errors import WsnasError
from wsnas.evaluator import EvalConfig
from wsnas.runs import train_run
from wsnas.store import Store
from wsnas.strategies import get_strategy
from wsnas.training.monitor import RunMonitor, TensorBoardMonitor, check_tensorboard, tensorboard_monitor
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import SupernetConfig, SupernetTrainer


def _trainer(space, data, run_dir, store, strategy="pada", **cfg):
    cfg = SupernetConfig(**{"train": TrainConfig(epochs=2, batch_size=64), "eval": EvalConfig(batch_size=64),
                            "dense_last": 0, **cfg})
    return SupernetTrainer(space, data, get_strategy(strategy), cfg, seed=3, run_dir=run_dir, store=store,
                           run_id="r", progress=False, archs=list(space.enumerate())[:6])


def test_every_scalar_the_run_stores_reaches_tensorboard(small_space, small_digits, tmp_path):
    names = [small_space.format(a) for a in list(small_space.enumerate())[:6]]
    truth = {name: acc for name, acc in zip(names, [0.9, 0.5, 0.7, 0.6, 0.8, 0.4])}
    with Store(tmp_path / "r.db") as store:
        trainer = _trainer(small_space, small_digits, tmp_path / "run", store, dense_last=2, grad_window=2)
        with TensorBoardMonitor(tmp_path / "tb", truth=truth, flush_steps=2) as monitor:
            train_run(store, "r", "supernet", trainer, seed=3, monitor=monitor)
        steps = store.train_steps("r")
        stored = {}
        for row in store.run_metrics("r"):
            stored.setdefault(row["name"], []).append((row["step"], row["value"]))
        labels, archs, matrix = store.prediction_matrix("r")
    assert archs == names
    got = tensorboard_scalars(tmp_path / "tb")
    # every mini-batch, as the store's train_steps hold it
    assert got["train/loss"] == list(zip([r["step"] for r in steps], float32([r["loss"] for r in steps])))
    assert got["train/accuracy"] == list(zip([r["step"] for r in steps], float32([r["accuracy"] for r in steps])))
    spe = trainer.steps_per_epoch
    assert [s for s, _ in got["train/loss"]] == list(range(1, 2 * spe + 1))
    # every epoch: loss, accuracy, learning rate (the cosine's 0.025 then its midpoint), time
    for tag, name in (("epoch/train_loss", "train_loss"), ("epoch/train_acc", "train_acc"),
                      ("epoch/seconds", "epoch_seconds"), ("eval/mean_child_acc", "mean_child_acc")):
        assert got[tag] == [(s, float(np.float32(v))) for s, v in stored[name]], tag
    assert got["epoch/lr"] == [(spe, float(np.float32(0.025))), (2 * spe, float(np.float32(trainer.lr(1))))]
    # PA&DA's probabilities (the strategy's epoch_metrics) and the gradient-variance windows
    named = [n for n in stored if n.startswith(("path_prob_", "data_ess", "grad_"))]
    assert any(n.startswith("path_prob_") for n in named) and "grad_variance" in named
    for name in named:
        group = "gradient" if name.startswith("grad_") else "strategy"
        assert got[f"{group}/{name}"] == [(s, float(np.float32(v))) for s, v in stored[name]], name
    assert len(got["gradient/grad_variance"]) == spe  # a window every 2 of 2 * spe steps
    # after every epoch and each of the last two mini-batches: the children's mean, best and GT-Tau
    gt = [truth[n] for n in archs]
    rows = {lab: matrix[i] for i, lab in enumerate(labels)}
    for prefix, points in (("eval", [(spe, "epoch:1"), (2 * spe, "epoch:2")]),
                           ("dense", [(2 * spe - 1, f"step:{2 * spe - 1}"), (2 * spe, f"step:{2 * spe}")])):
        assert got[f"{prefix}/mean_child_acc"] == [(s, pytest.approx(rows[lab].mean(), rel=1e-6)) for s, lab in points]
        assert got[f"{prefix}/best_child_acc"] == [(s, float(np.float32(rows[lab].max()))) for s, lab in points]
        assert got[f"{prefix}/gt_tau"] == [(s, float(np.float32(metrics.gt_tau(rows[lab], gt)))) for s, lab in points]


class Stop(Exception):
    pass


def test_a_resumed_run_continues_its_curves(small_space, small_digits, tmp_path):
    """An interrupted run wrote the steps of an epoch it never checkpointed; the rerun writes them again and
    TensorBoard shows each step once, with the values of the run's store."""
    with Store(tmp_path / "r.db") as store:
        part = _trainer(small_space, small_digits, tmp_path / "run", store, strategy="uniform")
        spe = part.steps_per_epoch

        def stop(step, result):
            if step == spe + 2:
                raise Stop

        with TensorBoardMonitor(tmp_path / "tb", flush_steps=1) as monitor, pytest.raises(Stop):
            train_run(store, "r", "supernet", part, seed=3, monitor=monitor, on_step=stop)
        interrupted = tensorboard_scalars(tmp_path / "tb")
        assert [s for s, _ in interrupted["train/loss"]] == list(range(1, spe + 3))  # past the checkpoint
        resumed = _trainer(small_space, small_digits, tmp_path / "run", store, strategy="uniform")
        with TensorBoardMonitor(tmp_path / "tb") as monitor:
            _, was_resumed = train_run(store, "r", "supernet", resumed, seed=3, monitor=monitor)
        assert was_resumed
        steps = store.train_steps("r")
        epochs = store.run_metrics("r", name="train_loss")
    got = tensorboard_scalars(tmp_path / "tb")
    assert got["train/loss"] == list(zip(range(1, 2 * spe + 1), float32([r["loss"] for r in steps])))
    assert got["epoch/train_loss"] == [(r["step"], float(np.float32(r["value"]))) for r in epochs]
    assert [s for s, _ in got["eval/mean_child_acc"]] == [spe, 2 * spe]


def test_a_monitor_that_is_not_told_to_start_appends_and_nan_is_no_point(tmp_path):
    with TensorBoardMonitor(tmp_path) as monitor:
        monitor.on_metrics("groundtruth", {"test_acc": 0.5, "train_loss": float("nan")}, 1)
    with TensorBoardMonitor(tmp_path) as monitor:  # a rerun's trainings continue the count, nothing purged
        monitor.on_metrics("groundtruth", {"test_acc": 0.25}, 2)
    assert tensorboard_scalars(tmp_path) == {"groundtruth/test_acc": [(1, 0.5), (2, 0.25)]}


def test_no_folder_is_the_monitor_that_does_nothing(tmp_path):
    monitor = tensorboard_monitor(None)
    assert type(monitor) is RunMonitor
    with monitor:
        monitor.on_start(0)
        monitor.on_metrics("strategy", {"entropy": 1.0}, 1)
        monitor.on_evaluation(1, ["111"], [0.5])
        monitor.on_epoch(1, {"train_loss": 1.0})
    assert isinstance(tensorboard_monitor(tmp_path / "tb"), TensorBoardMonitor)
    assert not (tmp_path / "tb").exists()  # nothing is written before the first scalar


def test_without_the_tensorboard_package_it_is_one_line_saying_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as when the import fails
    with pytest.raises(WsnasError) as info:
        check_tensorboard("--tensorboard 'tb'")
    assert str(info.value) == ("--tensorboard 'tb' needs the tensorboard package; install it with "
                               "`pip install 'wsnas[tensorboard]'`")
    with pytest.raises(WsnasError, match="needs the tensorboard package"):
        TensorBoardMonitor(tmp_path / "tb")
    assert not (tmp_path / "tb").exists()


def test_writing_curves_imports_no_torchvision(tmp_path):
    """torchvision is no dependency of wsnas: a torchvision that fails to import changes nothing."""
    (tmp_path / "torchvision").mkdir()
    (tmp_path / "torchvision" / "__init__.py").write_text("raise ImportError('torchvision was imported')\n")
    script = textwrap.dedent(f"""
        import sys
        from wsnas.training.monitor import TensorBoardMonitor
        with TensorBoardMonitor({str(tmp_path / 'tb')!r}) as monitor:
            monitor.on_metrics("strategy", {{"entropy": 1.0}}, 1)
        assert "torchvision" not in sys.modules
    """)
    src = str(Path(wsnas.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), src])}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert tensorboard_scalars(tmp_path / "tb") == {"strategy/entropy": [(1, 1.0)]}
