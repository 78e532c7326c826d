import errno
import os

import pytest
import torch

from wsnas.core.errors import Diverged, WsnasError
from wsnas.evaluator import EvalConfig
from wsnas.store import Store
from wsnas.strategies import get_strategy
from wsnas.training import trainer as trainer_module
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import CHECKPOINT, SupernetConfig, SupernetTrainer


def _cfg(epochs=3, dense_last=5, bn_mode="running"):
    return SupernetConfig(train=TrainConfig(epochs=epochs, batch_size=64),
                          eval=EvalConfig(bn_mode=bn_mode, batch_size=64), dense_last=dense_last)


def _trainer(space, data, tmp_path, strategy="uniform", store=None, run_id=None, **kw):
    return SupernetTrainer(space, data, get_strategy(strategy), _cfg(**kw), seed=7,
                           run_dir=tmp_path, store=store, run_id=run_id, progress=False,
                           archs=list(space.enumerate())[:8])


@pytest.mark.parametrize("strategy", ["uniform", "shuffle"])
def test_interrupted_and_resumed_equals_uninterrupted(small_space, small_digits, tmp_path, strategy):
    full = _trainer(small_space, small_digits, tmp_path / "a", strategy)
    full.train()

    class Stop(Exception):
        pass

    part = _trainer(small_space, small_digits, tmp_path / "b", strategy)
    steps = part.steps_per_epoch

    def stop_mid_second_epoch(step, _):
        if step == steps + 1:
            raise Stop

    with pytest.raises(Stop):
        part.train(on_step=stop_mid_second_epoch)
    assert part.epoch == 1 and (tmp_path / "b" / CHECKPOINT).exists()

    resumed = _trainer(small_space, small_digits, tmp_path / "b", strategy)
    assert resumed.try_resume() and resumed.epoch == 1
    resumed.train()
    for (k, a), (_, b) in zip(full.supernet.state_dict().items(), resumed.supernet.state_dict().items()):
        assert torch.equal(a, b), k
    assert full.history[-1]["train_loss"] == resumed.history[-1]["train_loss"]


def test_predictions_and_steps_are_stored(small_space, small_digits, tmp_path):
    with Store(tmp_path / "r.db") as store:
        trainer = _trainer(small_space, small_digits, tmp_path / "run", "round_robin",
                           store=store, run_id="sn", dense_last=5)
        store.ensure_run("sn", "supernet", trainer.config(), seed=7)
        trainer.train()
        labels = store.checkpoints("sn")
        total = trainer.total_steps
        assert [lab for lab in labels if lab.startswith("epoch:")] == ["epoch:1", "epoch:2", "epoch:3"]
        assert sorted(int(lab[5:]) for lab in labels if lab.startswith("step:")) == list(
            range(total - 4, total + 1))
        _, archs, matrix = store.prediction_matrix("sn")
        assert matrix.shape == (8, 8) and archs[0] == "111"
        steps = store.train_steps("sn")
        assert [r["step"] for r in steps] == list(range(1, total + 1))
        assert [r["arch_index"] for r in steps] == [i % 64 for i in range(total)]


def _scored_by_checkpoint(store, run_id):
    return {label: [(r["accuracy"], r["loss"]) for r in store.predictions(run_id, label)]
            for label in store.checkpoints(run_id)}


@pytest.mark.parametrize("nudge", [False, True])
def test_an_epoch_ending_in_the_dense_window_reuses_the_dense_scores_of_its_last_step(
        small_space, small_digits, tmp_path, monkeypatch, nudge):
    """The evaluation after an epoch whose last step was densely evaluated is not computed again
    (the same weights): its stored scores are that step's. A strategy whose ``end_epoch`` changes
    a weight gets a fresh evaluation."""
    calls = []
    real = trainer_module.evaluate_archs
    monkeypatch.setattr(trainer_module, "evaluate_archs", lambda *a, **k: calls.append(1) or real(*a, **k))
    strategy = get_strategy("round_robin")

    class Nudging(type(strategy)):
        def end_epoch(self, epoch):
            super().end_epoch(epoch)
            with torch.no_grad():
                self.supernet.classifier.bias.add_(0.5)

    if nudge:
        strategy = Nudging()
    with Store(tmp_path / "r.db") as store:
        probe = _trainer(small_space, small_digits, tmp_path / "probe", dense_last=0)
        spe = probe.steps_per_epoch
        trainer = SupernetTrainer(small_space, small_digits, strategy, _cfg(epochs=3, dense_last=spe + 1), seed=7,
                                  run_dir=tmp_path / "run", store=store, run_id="sn", progress=False,
                                  archs=list(small_space.enumerate())[:8])
        store.ensure_run("sn", "supernet", trainer.config(), seed=7)
        trainer.train()
        scores = _scored_by_checkpoint(store, "sn")
    # dense after steps 2*spe .. 3*spe (spe + 1 of them), then epochs 1, 2, 3: two of them end in the window
    assert len(calls) == (spe + 1) + (3 if nudge else 1)
    for epoch in (2, 3):
        same = scores[f"epoch:{epoch}"] == scores[f"step:{epoch * spe}"]
        assert same != nudge  # the nudged bias moves every child's loss
    assert scores["epoch:1"] != scores["epoch:2"]


def test_resume_refuses_a_checkpoint_of_other_settings(small_space, small_digits, tmp_path):
    _trainer(small_space, small_digits, tmp_path, epochs=1, dense_last=0).train()
    other = _trainer(small_space, small_digits, tmp_path, epochs=2, dense_last=0)
    with pytest.raises(WsnasError, match="belongs to a run with other settings"):
        other.try_resume()
    (tmp_path / CHECKPOINT).write_bytes(b"garbage")
    with pytest.raises(WsnasError, match="cannot be read"):
        _trainer(small_space, small_digits, tmp_path, epochs=1, dense_last=0).try_resume()


def test_resume_names_what_a_readable_checkpoint_lacks(small_space, small_digits, tmp_path):
    """A checkpoint torch can read but with the wrong content: one line naming the file and what is
    missing or does not fit, never a KeyError."""
    _trainer(small_space, small_digits, tmp_path, epochs=1, dense_last=0).train()
    path = tmp_path / CHECKPOINT
    good = torch.load(path, weights_only=True)
    trainer = _trainer(small_space, small_digits, tmp_path, epochs=1, dense_last=0)

    def resume_with(state):
        torch.save(state, path)
        with pytest.raises(WsnasError) as info:
            trainer.try_resume()
        message = str(info.value)
        assert str(path) in message and "\n" not in message and "delete it" in message
        return message

    assert "it lacks 'config'" in resume_with({k: v for k, v in good.items() if k != "config"})
    assert "it lacks 'optimizer', 'history'" in resume_with(
        {k: v for k, v in good.items() if k not in ("optimizer", "history")})
    assert "holds a list, not a wsnas supernet checkpoint" in resume_with([1, 2, 3])
    assert "has a int as its 'config'" in resume_with({**good, "config": 3})
    supernet = dict(good["supernet"])
    supernet.pop(next(iter(supernet)))
    message = resume_with({**good, "supernet": supernet})
    assert "does not fit this run: its supernet cannot be restored (RuntimeError" in message
    assert "its strategy cannot be restored" in resume_with({**good, "strategy": [1]})
    torch.save(good, path)  # the whole checkpoint still resumes
    assert _trainer(small_space, small_digits, tmp_path, epochs=1, dense_last=0).try_resume()
    # a reader of a finished run gives its own advice instead of deleting the checkpoint
    remedy = "give the run's own directory"
    for state in ({k: v for k, v in good.items() if k != "config"}, [1], {**good, "strategy": [1]}):
        torch.save(state, path)
        with pytest.raises(WsnasError) as info:
            trainer.try_resume(remedy=remedy)
        assert str(info.value).endswith(f"; {remedy}") and "delete" not in str(info.value)
    path.write_bytes(b"garbage")
    with pytest.raises(WsnasError, match=f"cannot be read .*; {remedy}$"):
        trainer.try_resume(remedy=remedy)
    torch.save(good, path)
    with pytest.raises(WsnasError, match=f"belongs to a run with other settings; {remedy}$"):
        _trainer(small_space, small_digits, tmp_path, epochs=2, dense_last=0).try_resume(remedy=remedy)


def test_a_diverging_supernet_stops_marked_diverged_and_keeps_its_earlier_epochs(small_space, small_digits, tmp_path):
    from wsnas.runs import train_run

    with Store(tmp_path / "r.db") as store:
        trainer = _trainer(small_space, small_digits, tmp_path / "run", store=store, run_id="sn", epochs=2,
                           dense_last=2)
        steps = trainer.steps_per_epoch

        def poison(step, _):  # the weights blow up in the first step of epoch 2
            if step == steps + 1:
                with torch.no_grad():
                    next(trainer.supernet.parameters()).fill_(float("nan"))

        with pytest.raises(Diverged) as info:
            train_run(store, "sn", "supernet", trainer, seed=7, on_step=poison)
        message = str(info.value)
        assert message.startswith("supernet run 'sn' diverged at epoch 2 (train loss nan); stopped, its 1 earlier "
                                  "epoch kept") and "\n" not in message
        assert (info.value.epoch, info.value.run_id) == (2, "sn")
        assert store.get_run("sn")["status"] == "diverged"
        assert store.checkpoints("sn") == ["epoch:1"]  # nothing of epoch 2, its dense steps included
        assert [r["step"] for r in store.train_steps("sn")] == list(range(1, steps + 1))
    resumed = _trainer(small_space, small_digits, tmp_path / "run", epochs=2, dense_last=2)
    assert resumed.try_resume() and resumed.epoch == 1  # the checkpoint is the last good epoch's


def test_epoch_metrics_and_gradient_variance_survive_a_resume(small_space, small_digits, tmp_path):
    def trainer(run_dir, store, run_id):
        cfg = SupernetConfig(train=TrainConfig(epochs=2, batch_size=32), eval=EvalConfig(batch_size=64),
                             dense_last=0, grad_window=4)
        t = SupernetTrainer(small_space, small_digits, get_strategy("uniform"), cfg, seed=1, run_dir=run_dir,
                            store=store, run_id=run_id, progress=False, archs=list(small_space.enumerate())[:4])
        store.ensure_run(run_id, "supernet", t.config(), seed=1)
        return t

    class Stop(Exception):
        pass

    with Store(tmp_path / "r.db") as store:
        whole = trainer(tmp_path / "a", store, "a")
        whole.train()
        part = trainer(tmp_path / "b", store, "b")
        with pytest.raises(Stop):
            part.train(on_step=lambda step, _: (_ for _ in ()).throw(Stop) if step == 9 else None)
        resumed = trainer(tmp_path / "b", store, "b")
        assert resumed.try_resume() and resumed.gradvar.total_steps == resumed.steps_per_epoch
        resumed.train()
        rows = {n: [(r["step"], r["value"]) for r in store.run_metrics("a", name=n)]
                for n in ("grad_variance", "grad_relative_variance", "train_loss", "epoch_seconds")}
        assert len(rows["grad_variance"]) == whole.total_steps // 4
        assert [s for s, _ in rows["train_loss"]] == [whole.steps_per_epoch, whole.total_steps]
        assert len(rows["epoch_seconds"]) == 2 and all(v > 0 for _, v in rows["epoch_seconds"])
        assert all(0 <= v <= 1 for _, v in rows["grad_relative_variance"])
        for name in ("grad_variance", "train_loss"):
            assert [(r["step"], r["value"]) for r in store.run_metrics("b", name=name)] == rows[name]


def test_lr_schedule_epochs_sets_the_cosine_period_the_optimiser_follows(small_space, small_digits, tmp_path):
    """GAEA's NB201 schedule: a run shorter than its cosine stops part-way down the curve. The SGD
    optimiser's learning rate in every epoch is the cosine with period lr_schedule_epochs, by hand."""
    import math

    train = TrainConfig(epochs=3, batch_size=96, lr=0.05, lr_min=0.002, lr_schedule_epochs=8)
    cfg = SupernetConfig(train=train, eval=EvalConfig(batch_size=64), eval_every_epoch=False, dense_last=0)
    trainer = SupernetTrainer(small_space, small_digits, get_strategy("uniform"), cfg, seed=0, run_dir=tmp_path,
                              progress=False, archs=[])
    seen = {}
    trainer.train(on_step=lambda step, _: seen.setdefault((step - 1) // trainer.steps_per_epoch,
                                                          trainer.optimizer.param_groups[0]["lr"]))
    by_hand = [0.002 + 0.5 * (0.05 - 0.002) * (1 + math.cos(math.pi * e / 8)) for e in range(3)]
    assert [seen[e] for e in range(3)] == pytest.approx(by_hand, rel=1e-12)
    assert seen[2] == pytest.approx(0.002 + 0.024 * (1 + math.cos(math.pi / 4)))  # 0.0430, far from lr_min
    # without it the period is the run's epochs, and the run's stored settings are what they were
    plain = TrainConfig(epochs=3, batch_size=96, lr=0.05, lr_min=0.002)
    assert "lr_schedule_epochs" not in plain.to_dict() and train.to_dict()["lr_schedule_epochs"] == 8
    assert trainer.lr(2) != SupernetTrainer(small_space, small_digits, get_strategy("uniform"),
                                            SupernetConfig(train=plain), seed=0, run_dir=tmp_path / "p",
                                            progress=False, archs=[]).lr(2)


@pytest.mark.parametrize("period, fragment", [
    (0, "lr_schedule_epochs must be a positive integer (the cosine's period in epochs), got 0"),
    (-5, "got -5"),
    (2, "lr_schedule_epochs 2 is shorter than the run's 3 epochs; accepted: at least the number of epochs"),
])
def test_a_bad_schedule_length_is_refused(period, fragment):
    with pytest.raises(WsnasError) as err:
        TrainConfig(epochs=3, lr_schedule_epochs=period)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_full_disk_while_checkpointing_keeps_the_last_checkpoint(small_space, small_digits, tmp_path,
                                                                    monkeypatch):
    trainer = _trainer(small_space, small_digits, tmp_path, epochs=1)
    trainer.save()
    path = tmp_path / CHECKPOINT
    before = path.read_bytes()

    def filling(obj, f, *args, **kwargs):  # the disk fills up halfway through the checkpoint
        f.write(before[:100])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", filling)
    with pytest.raises(OSError) as info:
        trainer.save()
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT]


def test_dense_every_evaluates_every_nth_step_of_the_window_back_from_the_last(small_space, small_digits, tmp_path):
    """--dense-every 2 over the last 5 mini-batches: steps T, T-2, T-4; GT-Tau-Mean-5 is their mean;
    the stride is part of the run's identity only when it is not 1."""
    import numpy as np

    from wsnas import metrics
    from wsnas.analysis.insights import instance_metrics
    from wsnas.groundtruth.truth import load_truth

    cfg = SupernetConfig(train=TrainConfig(epochs=4, batch_size=16, lr=0.1), eval=EvalConfig(batch_size=64),
                         dense_last=5, dense_every=2)
    assert cfg.to_dict()["dense_every"] == 2 and "dense_every" not in _cfg().to_dict()
    assert SupernetConfig.from_dict(cfg.to_dict()) == cfg
    with Store(tmp_path / "r.db") as store:
        trainer = SupernetTrainer(small_space, small_digits, get_strategy("round_robin"), cfg, seed=7,
                                  run_dir=tmp_path / "run", store=store, run_id="sn", progress=False,
                                  archs=list(small_space.enumerate()))
        store.ensure_run("sn", "supernet", trainer.config(), seed=7)
        trainer.train()
        total = trainer.total_steps
        dense = sorted(int(lab[5:]) for lab in store.checkpoints("sn") if lab.startswith("step:"))
        assert dense == [total - 4, total - 2, total]
        truth = load_truth("tiny64-cifar10")
        got = instance_metrics(store, "sn", truth, k=5)["dense"]
        rows = [np.array([r["accuracy"] for r in sorted(store.predictions("sn", f"step:{s}"),
                                                       key=lambda r: r["arch_index"])]) for s in dense]
        gt = np.array(list(truth.accuracy_of([small_space.format(a) for a in small_space.enumerate()]).values()))
        assert got["k"] == 5 and got["every"] == 2 and got["steps"] == dense
        assert got["mean"] == pytest.approx(np.mean([metrics.gt_tau(r, gt) for r in rows]))
        # a window of 3 mini-batches holds the evaluations after T-2 and T only
        narrow = instance_metrics(store, "sn", truth, k=3)["dense"]
        assert narrow["first"] == 1 and narrow["mean"] == pytest.approx(np.mean([metrics.gt_tau(r, gt)
                                                                                 for r in rows[1:]]))
    with pytest.raises(WsnasError, match="dense_every must be a positive integer, got 0"):
        SupernetConfig(dense_every=0)
