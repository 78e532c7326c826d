"""Interference probing: training unchanged, exact definitions, aggregation, store, resume, CLI."""

from __future__ import annotations

import copy
import csv
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import randomise_bn, tensorboard_scalars

import wsnas.store.schema as store_module
from wsnas.cli import main
from wsnas.core.errors import WsnasError
from wsnas.evaluator import EvalConfig
from wsnas.experiments.interference import (
    INTERFERENCE_DEFAULTS,
    InterferenceConfig,
    InterferenceProbe,
    interference_defaults,
    interference_matrix,
    run_interference,
    shared_choices,
    summarize_interference,
    write_matrix_csv,
)
from wsnas.spaces import get_space
from wsnas.store import SCHEMA_VERSION, Store
from wsnas.strategies import StrategyContext, get_strategy
from wsnas.training.gradvar import GradVarianceMonitor
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import CHECKPOINT, SupernetConfig, SupernetTrainer

PROBE = 32


@pytest.fixture
def space():
    """tiny64 with one narrow cell: all 64 children, a fraction of the compute."""
    return get_space("tiny64", channels=4, stem_channels=8, cells=1)


def _cfg(epochs=2):
    return SupernetConfig(train=TrainConfig(epochs=epochs, batch_size=64),
                          eval=EvalConfig(batch_size=64), dense_last=0)


def _trainer(space, data, path, *, probe=True, store=None, run_id=None, epochs=2, window=None):
    inner = get_strategy("round_robin")
    strategy = (InterferenceProbe(inner, data.train, probe_size=PROBE, store=store, run_id=run_id)
                if probe else inner)
    trainer = SupernetTrainer(space, data, strategy, _cfg(epochs), seed=3, run_dir=path, store=store,
                              run_id=run_id, progress=False, archs=list(space.enumerate())[:4])
    monitor = None
    if window is not None:
        monitor = GradVarianceMonitor(trainer.supernet.parameters(), window)
        strategy.attach_monitor(monitor)
    return trainer, monitor


def _manual(space, data):
    """A supernet, its optimiser and a bound probe, without a trainer."""
    torch.manual_seed(0)
    net = space.build_supernet(num_classes=data.num_classes, in_channels=data.in_channels)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    probe = InterferenceProbe(get_strategy("round_robin"), data.train, probe_size=PROBE)
    probe.setup(StrategyContext(supernet=net, space=space, optimizer=opt, seed=0))
    net.train()
    return net, probe


def _probe_loss(net, probe, arch):
    net = copy.deepcopy(net).eval()
    with torch.no_grad():
        logits = net(probe.probe_x, arch)
    return F.cross_entropy(logits, probe.probe_y).item(), (logits.argmax(1) == probe.probe_y).sum().item()


def _grads(net, probe, arch):
    net = copy.deepcopy(net).eval()
    params = list(net.parameters())
    loss = F.cross_entropy(net(probe.probe_x, arch), probe.probe_y)
    return torch.autograd.grad(loss, params, allow_unused=True)


def _cos(ga, gb):
    pairs = [(a.double(), b.double()) for a, b in zip(ga, gb) if a is not None and b is not None]
    dot = sum((a * b).sum() for a, b in pairs)
    na = sum(a.square().sum() for a, _ in pairs)
    nb = sum(b.square().sum() for _, b in pairs)
    return (dot / (na * nb).sqrt()).item()


def test_probing_does_not_change_training(space, small_digits, tmp_path):
    plain, _ = _trainer(space, small_digits, tmp_path / "plain", probe=False)
    plain.train()
    probed, _ = _trainer(space, small_digits, tmp_path / "probed")
    probed.train()
    for (k, a), (_, b) in zip(plain.supernet.state_dict().items(), probed.supernet.state_dict().items()):
        assert torch.equal(a, b), k
    assert plain.history[-1]["train_loss"] == probed.history[-1]["train_loss"]
    rows = probed.strategy.rows
    assert len(rows) == probed.total_steps * 64
    assert [r["trained_index"] for r in rows[::64]] == list(range(probed.total_steps))  # round robin


def test_probe_leaves_weights_bn_statistics_mode_and_rng_untouched(space, small_digits):
    net, probe = _manual(space, small_digits)
    randomise_bn(net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    losses, correct, cosine = probe._probe(7)
    probe._forward_losses()
    assert net.training
    assert torch.equal(torch.get_rng_state(), rng)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in net.parameters())
    assert losses.shape == correct.shape == cosine.shape == (64,)
    # eval-mode BN: the probe's loss is the running-statistics loss
    assert losses[12].item() == pytest.approx(_probe_loss(net, probe, space.from_index(12))[0], rel=1e-5)


def test_rows_match_direct_computation(space, small_digits):
    net, probe = _manual(space, small_digits)
    x, y = small_digits.train.x[:64], small_digits.train.y[:64]
    w0 = copy.deepcopy(net)
    probe.step(x, y)  # trains child 0
    w1 = copy.deepcopy(net)
    probe.step(small_digits.train.x[64:128], small_digits.train.y[64:128])  # trains child 1
    w2 = copy.deepcopy(net)
    probe.end_epoch(0)
    rows = {(r["step"], r["other_index"]): r for r in probe.rows}
    assert len(rows) == 2 * 64
    for step, (before, after), a in ((1, (w0, w1), 0), (2, (w1, w2), 1)):
        grad_a = _grads(before, probe, space.from_index(a))
        for b in (a, 37, 63):
            arch_b = space.from_index(b)
            row = rows[(step, b)]
            assert row["trained_index"] == a and row["trained_arch"] == space.format(space.from_index(a))
            assert row["other_arch"] == space.format(arch_b)
            (l0, c0), (l1, c1) = _probe_loss(before, probe, arch_b), _probe_loss(after, probe, arch_b)
            assert row["d_loss"] == pytest.approx(l1 - l0, abs=1e-5)
            assert row["d_acc"] == pytest.approx((c1 - c0) / PROBE, abs=1e-12)
            assert row["cosine"] == pytest.approx(_cos(grad_a, _grads(before, probe, arch_b)), abs=1e-5)
        assert rows[(step, a)]["cosine"] == pytest.approx(1.0, abs=1e-9)  # A with itself


def test_after_values_survive_an_outside_weight_change(space, small_digits):
    net, probe = _manual(space, small_digits)
    w0 = copy.deepcopy(net)
    probe.step(small_digits.train.x[:64], small_digits.train.y[:64])
    w1 = copy.deepcopy(net)
    with torch.no_grad():
        net.classifier.weight.add_(0.5)  # something else changes the weights between steps
    changed = net.classifier.weight.detach().clone()
    probe.step(small_digits.train.x[64:128], small_digits.train.y[64:128])
    arch = space.from_index(20)
    row = next(r for r in probe.rows if r["step"] == 1 and r["other_index"] == 20)
    assert row["d_loss"] == pytest.approx(_probe_loss(w1, probe, arch)[0] - _probe_loss(w0, probe, arch)[0],
                                          abs=1e-5)
    assert not torch.equal(net.classifier.weight, changed)  # step 2 trained from the changed weights
    assert not torch.equal(net.classifier.weight, w1.classifier.weight)


def test_matrix_aggregation_and_summary(space):
    rows = [
        {"trained_index": 0, "other_index": 0, "d_loss": -0.4, "d_acc": 0.1, "cosine": 1.0},
        {"trained_index": 0, "other_index": 1, "d_loss": 0.2, "d_acc": -0.05, "cosine": 0.5},
        {"trained_index": 0, "other_index": 1, "d_loss": 0.4, "d_acc": 0.05, "cosine": None},
        {"trained_index": 1, "other_index": 0, "d_loss": -0.1, "d_acc": 0.0, "cosine": float("nan")},
        {"trained_index": 1, "other_index": 1, "d_loss": -0.2, "d_acc": 0.2, "cosine": 1.0},
        {"trained_index": 2, "other_index": 0, "d_loss": 0.3, "d_acc": -0.1, "cosine": -0.2},
    ]
    m = interference_matrix(rows, 3)
    assert set(m) == {"d_loss", "d_acc", "cosine", "count"}
    assert m["count"].tolist() == [[1, 2, 0], [1, 1, 0], [1, 0, 0]]
    assert m["d_loss"][0, 1] == pytest.approx(0.3) and m["d_acc"][0, 1] == pytest.approx(0.0)
    assert m["cosine"][0, 1] == pytest.approx(0.5)  # a missing cosine is left out of the mean
    assert math.isnan(m["cosine"][1, 0]) and math.isnan(m["d_loss"][2, 2]) and math.isnan(m["d_loss"][0, 2])
    s = summarize_interference(m)
    assert s["steps"] == 2 and s["pairs_observed"] == 3
    assert s["self_d_loss"] == pytest.approx(-0.3) and s["self_cosine"] == pytest.approx(1.0)
    assert s["other_d_loss"] == pytest.approx((0.3 - 0.1 + 0.3) / 3)
    assert s["other_hurt_fraction"] == pytest.approx(2 / 3)
    with pytest.raises(WsnasError, match="outside"):
        interference_matrix([{"trained_index": 5, "other_index": 0}], 3)

    shared = shared_choices(space)
    assert shared.shape == (64, 64) and (np.diag(shared) == 3).all()
    assert shared[space.index(space.parse("111")), space.index(space.parse("121"))] == 2
    assert shared[space.index(space.parse("123")), space.index(space.parse("231"))] == 0
    # cosine rising with the number of shared choices correlates perfectly
    full = {"d_loss": -shared / 10.0, "d_acc": np.zeros((64, 64)), "cosine": shared / 3.0,
            "count": np.ones((64, 64), dtype=int)}
    s = summarize_interference(full, space)
    assert s["corr_cosine_shared"] == pytest.approx(1.0) and s["corr_d_loss_shared"] == pytest.approx(-1.0)
    assert s["cosine_by_shared"] == pytest.approx({0: 0.0, 1: 1 / 3, 2: 2 / 3})


def test_matrix_csv_has_one_line_per_pair(tmp_path):
    rows = [{"trained_index": 0, "other_index": 0, "d_loss": -0.25, "d_acc": 0.5, "cosine": 1.0},
            {"trained_index": 0, "other_index": 1, "d_loss": 0.125, "d_acc": 0.0, "cosine": float("nan")}]
    m = interference_matrix(rows, 2)
    path = write_matrix_csv(m, ["a", "b"], tmp_path / "sub" / "m.csv", shared=np.array([[3, 1], [1, 3]]))
    assert path == tmp_path / "sub" / "m.csv"
    assert path.read_text(encoding="utf-8").splitlines() == [
        "trained_index,trained_arch,other_index,other_arch,count,d_loss,d_acc,cosine,shared_choices",
        "0,a,0,a,1,-0.25,0.5,1.0,3",
        "0,a,1,b,1,0.125,0.0,,1",
        "1,b,0,a,0,,,,1",
        "1,b,1,b,0,,,,3",
    ]
    plain = write_matrix_csv(m, ["a", "b"], tmp_path / "plain.csv")
    assert plain.read_text(encoding="utf-8").splitlines()[0].endswith(",cosine")


def test_default_budgets_per_dataset():
    assert interference_defaults("digits") is INTERFERENCE_DEFAULTS["digits"]
    assert interference_defaults("digits")["train"].epochs == 8 and interference_defaults("digits")["probe_size"] == 64
    assert interference_defaults("cifar100") is INTERFERENCE_DEFAULTS["cifar10"]


def test_store_round_trip_and_validation(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.ensure_run("i", "interference", {"a": 1})
        rows = [{"step": 1, "trained_index": 0, "other_index": j, "trained_arch": "111",
                 "other_arch": f"11{j + 1}", "d_loss": 0.1 * j, "d_acc": -0.01, "cosine": float("nan") if j else 1.0}
                for j in range(3)]
        assert store.add_interference("i", rows) == 3
        assert store.add_interference("i", rows[:1]) == 1  # upsert, no duplicate
        back = store.interference("i")
        assert len(back) == 3 and back[0]["cosine"] == 1.0 and back[1]["cosine"] is None
        assert back[2]["d_loss"] == pytest.approx(0.2) and back[2]["other_arch"] == "113"
        with pytest.raises(WsnasError, match="unknown field.*'loss'"):
            store.add_interference("i", [{**rows[0], "loss": 1.0}])
        with pytest.raises(WsnasError, match="lacks the field 'other_index'"):
            store.add_interference("i", [{"step": 1, "trained_index": 0}])
        with pytest.raises(WsnasError, match="not in the results store"):
            store.add_interference("nope", rows)

        metrics = [{"name": "grad_variance", "step": s, "epoch": 0, "value": 0.5 * s} for s in (4, 2)]
        metrics.append({"name": "entropy", "step": 2, "value": 1.0})
        assert store.add_run_metrics("i", metrics) == 3
        assert [r["step"] for r in store.run_metrics("i", "grad_variance")] == [2, 4]
        assert len(store.run_metrics("i")) == 3
        store.add_run_metrics("i", [{"name": "entropy", "step": 2, "value": 2.0}])
        assert store.run_metrics("i", "entropy")[0]["value"] == 2.0
        with pytest.raises(WsnasError, match="unknown field"):
            store.add_run_metrics("i", [{"name": "x", "step": 1, "val": 1.0}])
        assert store.tables()["interference"] == 3


def test_version_1_store_is_upgraded(tmp_path, monkeypatch):
    path = tmp_path / "v1.db"
    with monkeypatch.context() as m:
        m.setattr(store_module, "_MIGRATIONS", store_module._MIGRATIONS[:1])
        m.setattr(store_module, "SCHEMA_VERSION", 1)
        with Store(path) as s:
            s.ensure_run("old", "supernet", {"x": 1})
            assert "interference" not in s.tables()
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION and s.get_run("old")["kind"] == "supernet"
        assert s.tables()["interference"] == 0 and s.tables()["run_metrics"] == 0
        s.add_interference("old", [{"step": 1, "trained_index": 0, "other_index": 0, "d_loss": 0.0}])


def test_resumed_run_rewrites_identical_rows(space, small_digits, tmp_path):
    def run(path, run_id, store, stop=None):
        trainer, monitor = _trainer(space, small_digits, path, store=store, run_id=run_id, epochs=3, window=2)
        store.ensure_run(run_id, "interference", trainer.config(), seed=3)
        trainer.try_resume()

        def on_step(step, _):
            monitor.update()
            if stop is not None and step == stop:
                raise KeyboardInterrupt

        trainer.train(on_step=on_step)
        return trainer

    with Store(tmp_path / "r.db") as store:
        full = run(tmp_path / "full", "full", store)
        steps = full.steps_per_epoch
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path / "part", "part", store, stop=steps + 2)  # mid second epoch
        assert (tmp_path / "part" / CHECKPOINT).exists()
        assert len(store.interference("part")) == steps * 64  # the first epoch was flushed
        resumed = run(tmp_path / "part", "part", store)
        assert resumed.epoch == 3
        a = [{k: v for k, v in r.items() if k != "run_id"} for r in store.interference("full")]
        b = [{k: v for k, v in r.items() if k != "run_id"} for r in store.interference("part")]
        assert len(a) == full.total_steps * 64 and a == b
        # the gradient-variance windows (the trainer's per-epoch metrics include wall-clock time)
        ma = [{k: v for k, v in r.items() if k != "run_id"} for r in store.run_metrics("full")
              if r["name"].startswith("grad_")]
        mb = [{k: v for k, v in r.items() if k != "run_id"} for r in store.run_metrics("part")
              if r["name"].startswith("grad_")]
        assert ma == mb and len(ma) == 4 * (full.total_steps // 2)
        assert {r["name"] for r in ma} == {"grad_variance", "grad_mean_sq_norm", "grad_norm_of_mean_sq",
                                           "grad_relative_variance"}
        assert all(r["epoch"] == (r["step"] - 1) // steps for r in ma)


def test_run_interference_driver(space, small_digits, tmp_path):
    cfg = InterferenceConfig(supernet=_cfg(2), probe_size=PROBE, start_epoch=1, grad_window=2)
    with Store(tmp_path / "r.db") as store:
        result = run_interference(space, small_digits, cfg, seed=1, store=store, run_id="drv",
                                  run_dir=tmp_path / "run", progress=False)
        steps = len(store.train_steps("drv"))
        assert store.get_run("drv")["status"] == "done" and store.get_run("drv")["kind"] == "interference"
        assert len(store.interference("drv")) == (steps // 2) * 64  # only the second epoch probed
        assert result["interference"]["steps"] == steps // 2
        assert result["matrix"]["count"].sum() == (steps // 2) * 64
        assert result["grad_variance"]["windows"] == steps // 2 and result["grad_variance"]["variance"] > 0
        again = run_interference(space, small_digits, cfg, seed=1, store=store, run_id="drv",
                                 run_dir=tmp_path / "run", progress=False)
        assert again["resumed"] and np.array_equal(again["matrix"]["count"], result["matrix"]["count"])
    with pytest.raises(WsnasError, match="probe size"):
        InterferenceProbe(get_strategy("round_robin"), small_digits.train, probe_size=0)


def test_cli_writes_png_and_csv(tmp_path, capsys):
    common = ["interference", "--space-option", "channels=4", "--space-option", "stem_channels=8",
              "--space-option", "cells=1", "--batch-size", "512", "--no-progress", "--device", "cpu",
              "--store", str(tmp_path / "r.db"), "--run", "cli", "--run-dir", str(tmp_path / "run")]
    assert main([*common, "--epochs", "1", "--probe-size", "16", "--grad-window", "2", "--tensorboard",
                 str(tmp_path / "tb")]) == 0
    out = capsys.readouterr().out
    assert "gradient variance over 1 windows of 2 steps" in out and "d_loss: self" in out
    assert (tmp_path / "run" / "interference.png").stat().st_size > 1000
    with open(tmp_path / "run" / "interference.csv") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 64 * 64
    probed = [r for r in lines if r["count"] != "0"]
    assert len(probed) == 3 * 64 and {r["trained_index"] for r in probed} == {"0", "1", "2"}
    diagonal = [r for r in probed if r["trained_index"] == r["other_index"]]
    assert all(float(r["cosine"]) == pytest.approx(1.0) for r in diagonal)
    with Store(tmp_path / "r.db") as store:
        assert len(store.interference("cli")) == 3 * 64
        windows = store.run_metrics("cli", name="grad_variance")
        losses = store.run_metrics("cli", name="train_loss")
    # --tensorboard: the run's curves in DIR/<run id>, the probe's gradient-variance windows as it stores them
    got = tensorboard_scalars(tmp_path / "tb" / "cli")
    assert got["gradient/grad_variance"] == [(r["step"], float(np.float32(r["value"]))) for r in windows]
    assert got["epoch/train_loss"] == [(r["step"], float(np.float32(r["value"]))) for r in losses]
    assert [s for s, _ in got["train/loss"]] == [1, 2, 3] and [s for s, _ in got["eval/mean_child_acc"]] == [3]

    assert main([*common, "--epochs", "1", "--probe-size", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "wsnas interference: error: --probe-size must be a positive number of images, got 0"
