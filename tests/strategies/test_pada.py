"""PA&DA's path and data sampling, and FairNAS: probability updates, reproducibility, resume."""

import numpy as np
import pytest
import torch

from wsnas.core.errors import WsnasError
from wsnas.evaluator import EvalConfig
from wsnas.store import Store
from wsnas.strategies import StrategyContext, get_strategy
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import SupernetConfig, SupernetTrainer


def _setup(space, data, name, **options):
    torch.manual_seed(0)
    net = space.build_supernet(num_classes=10, in_channels=1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    s = get_strategy(name, **options)
    s.setup(StrategyContext(supernet=net, space=space, optimizer=opt, seed=0, total_epochs=4,
                            train_size=len(data.train)))
    return s


def test_path_probabilities_follow_the_hand_computation(small_space, small_digits):
    s = _setup(small_space, small_digits, "pada-path")
    assert np.allclose(s.probs, 0.25)  # tau = 0: uniform
    s.norms = np.array([[0.0, 1.0, 2.0, 5.0]])
    s.end_epoch(0)  # tau = 1/4
    expected = 0.25 * np.array([0, 1, 2, 5]) / 8 + 0.75 / 4
    np.testing.assert_allclose(s.probs[0], expected)
    assert np.allclose(s.norms, 0)  # the running mean restarts every epoch


def test_gradient_norms_fold_into_a_running_mean(small_space, small_digits):
    s = _setup(small_space, small_digits, "pada-path", per_edge=True)
    arch = small_space.parse("123")  # edge 0: max_pool (parameter-free), edge 1: op 2, edge 2: op 3
    for value in (3.0, 1.0):
        for p in s.supernet.parameters():
            p.grad = None
        for choice, block in s.blocks:
            op = small_space.option_indices(arch)[choice]
            for p in block.candidates[s.ops[op]].parameters():
                p.grad = torch.full_like(p, value)
        s._fold_grad_norms(arch)
    # per block the norm is value * sqrt(#params of the op); 4 cells use each edge: mean over them
    sizes = {}
    for choice, block in s.blocks:
        op = small_space.option_indices(arch)[choice]
        sizes.setdefault(choice, []).append(sum(p.numel() for p in block.candidates[s.ops[op]].parameters()))
    for choice, op in ((1, 1), (2, 2)):
        one = np.mean([np.sqrt(n) for n in sizes[choice]])
        np.testing.assert_allclose(s.norms[choice, op], 0.5 * 3.0 * one + 0.5 * 1.0 * one, rtol=1e-6)
    assert s.norms[0, 0] == 0.0  # parameter-free ops count zero


def test_data_sampling_is_reproducible_from_its_seed(small_space, small_digits):
    s = _setup(small_space, small_digits, "pada-data")
    n = len(small_digits.train)
    assert s.epoch_indices(n, torch.Generator().manual_seed(1)) is None  # first epoch: shuffled order
    s.importance = torch.ones(n)
    s.importance[:10] = 50.0
    s.epoch = 2
    a = s.epoch_indices(n, torch.Generator().manual_seed(1))
    b = s.epoch_indices(n, torch.Generator().manual_seed(1))
    c = s.epoch_indices(n, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c) and len(a) == n
    assert (a < 10).float().mean() > 0.3  # tau = 1/2: the heavy samples dominate (expected 0.35)
    logits = torch.tensor([[10.0, 0.0], [0.0, 0.0]])
    s._record_importance(logits, torch.tensor([0, 1]), n, torch.tensor([3, 7]))
    assert float(s.importance[3]) < 1e-3 and abs(float(s.importance[7]) - np.sqrt(0.5)) < 1e-6


def test_fairnas_covers_every_op_once_and_accumulates(small_space, small_digits):
    s = _setup(small_space, small_digits, "fairnas")
    paths = s.paths()
    assert len(paths) == 4
    for e in range(3):
        assert sorted(small_space.option_indices(p)[e] for p in paths) == [0, 1, 2, 3]
    x, y = small_digits.train.x[:16], small_digits.train.y[:16]
    saved = s.rng.bit_generator.state
    planned = s.paths()
    s.rng.bit_generator.state = saved  # the step draws the same paths
    expected = {n: torch.zeros_like(p) for n, p in s.supernet.named_parameters()}
    for arch in planned:
        s.supernet.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(s.supernet(x, arch), y).backward()
        for n, p in s.supernet.named_parameters():
            if p.grad is not None:
                expected[n] += p.grad
    s.step(x, y)
    for n, p in s.supernet.named_parameters():
        got = torch.zeros_like(p) if p.grad is None else p.grad
        torch.testing.assert_close(got, expected[n], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["pada", "fairnas"])
def test_trains_and_resumes_exactly(small_space, small_digits, tmp_path, name):
    def trainer(run_dir):
        cfg = SupernetConfig(train=TrainConfig(epochs=3, batch_size=64), eval=EvalConfig(batch_size=64),
                             dense_last=0)
        return SupernetTrainer(small_space, small_digits, get_strategy(name), cfg, seed=0, run_dir=run_dir,
                               progress=False, archs=list(small_space.enumerate())[:2])

    whole = trainer(tmp_path / "a")
    whole.train()
    if name == "pada":
        assert not np.allclose(whole.strategy.probs, 0.25)  # the paths are no longer uniform

    class Stop(Exception):
        pass

    part = trainer(tmp_path / "b")
    with pytest.raises(Stop):
        part.train(on_step=lambda step, _: (_ for _ in ()).throw(Stop()) if step == 2 * part.steps_per_epoch + 1
                   else None)
    resumed = trainer(tmp_path / "b")
    assert resumed.try_resume() and resumed.epoch == 2
    resumed.train()
    for (k, a), (_, b) in zip(whole.supernet.state_dict().items(), resumed.supernet.state_dict().items()):
        assert torch.equal(a, b), k


def test_bad_options():
    with pytest.raises(WsnasError, match="path sampling, data sampling or both"):
        get_strategy("pada", paths=False, data=False)


@pytest.mark.parametrize("name", ["pada", "fairnas"])
def test_supernet_command_runs_them(tmp_path, capsys, name):
    from wsnas.cli import main

    assert main(["supernet", "--strategy", name, "--space-option", "channels=4", "--space-option", "stem_channels=8",
                 "--epochs", "1", "--batch-size", "256", "--store", str(tmp_path / "r.db"), "--run-dir",
                 str(tmp_path / "run"), "--no-progress", "--threads", "1"]) == 0
    run_id = f"supernet/{name}/0"
    assert f"run {run_id}" in capsys.readouterr().out
    with Store(tmp_path / "r.db", create=False) as store:
        run = store.get_run(run_id)
        assert run["status"] == "done" and run["config"]["strategy"] == get_strategy(name).describe()
        steps = store.train_steps(run_id)
        assert [s["step"] for s in steps] == list(range(1, 6))  # 1079 digits at batch 256
        predictions = store.predictions(run_id, checkpoint="epoch:1")
        assert len(predictions) == 64 and all(0 <= r["accuracy"] <= 1 for r in predictions)
        names = {m["name"] for m in store.run_metrics(run_id)}
        if name == "pada":  # its own diagnostics reach the store through the epoch_metrics hook
            assert {"data_ess", "path_prob_max_pool_3x3", "path_prob_sep_conv_3x3"} <= names
        else:
            assert not any(n.startswith("path_prob_") for n in names)
