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
    s = _setup(small_space, small_digits, "pada-path")  # 4 epochs
    assert np.allclose(s.probs, 0.25)  # the first epoch: uniform
    s.norms = np.array([[0.0, 1.0, 2.0, 5.0]])
    s.end_epoch(0)  # tau = 0 / 4 (the authors' schedule): the second epoch is uniform too
    assert s.tau == 0.0 and np.allclose(s.probs, 0.25)
    assert np.allclose(s.norms, 0)  # the running mean restarts every epoch
    s.norms = np.array([[0.0, 1.0, 2.0, 5.0]])
    s.end_epoch(2)  # tau = 2 / 4
    expected = 0.5 * np.array([0, 1, 2, 5]) / 8 + 0.5 / 4
    assert s.tau == 0.5
    np.testing.assert_allclose(s.probs[0], expected)


def _fill_grads(s, arch, value):
    """Every parameter of the ops on ``arch``'s path gets the gradient ``value`` everywhere."""
    for p in s.supernet.parameters():
        p.grad = None
    chosen = s.space.option_indices(arch)
    for choice, block in s.blocks:
        for p in block.candidates[s.ops[chosen[choice]]].parameters():
            p.grad = torch.full_like(p, value)


def test_op_gradient_norms_sum_the_conv_tensor_norms_into_a_mean_from_zero(small_space, small_digits):
    s = _setup(small_space, small_digits, "pada-path")  # one probability vector shared by the edges
    arch = small_space.parse("223")  # sep_conv_3x3 on edges 0->1 and 0->2, sep_conv_5x5 on 1->2
    for value in (3.0, 1.0):
        _fill_grads(s, arch, value)
        s._fold_grad_norms(arch)
    # with 4 channels a sep_conv_3x3 has two depthwise 4x1x3x3 and two pointwise 4x4x1x1 kernels:
    # per-tensor norms value * (6 + 4 + 6 + 4) = 20 value; sep_conv_5x5: value * (10 + 4 + 10 + 4)
    # = 28 value. Summed over the 4 cells and the edges that ran the op, divided by those edges:
    # sep_conv_3x3 4 * 2 * 20 value / 2 = 80 value, sep_conv_5x5 4 * 28 value / 1 = 112 value.
    # The running mean starts from 0: 0.5 * (0.5 * 0 + 0.5 * s(3)) + 0.5 * s(1).
    np.testing.assert_allclose(s.norms[0], [0.0, 0.25 * 240 + 0.5 * 80, 0.25 * 336 + 0.5 * 112, 0.0], rtol=1e-6)
    s.end_epoch(2)  # tau = 1/2; max-pool (no convolution) keeps only the uniform share
    np.testing.assert_allclose(s.probs[0], 0.5 * np.array([0, 100, 140, 0]) / 240 + 0.5 / 4, rtol=1e-6)


def test_op_gradient_norms_per_edge(small_space, small_digits):
    s = _setup(small_space, small_digits, "pada-path", per_edge=True)
    arch = small_space.parse("124")  # max_pool, sep_conv_3x3, dil_conv_5x5 (4x1x5x5 and 4x4x1x1)
    _fill_grads(s, arch, 2.0)
    s._fold_grad_norms(arch)
    expected = np.zeros((3, 4))
    expected[1, 1] = 0.5 * 4 * 2.0 * 20  # from 0: half of the step's value, summed over the 4 cells
    expected[2, 3] = 0.5 * 4 * 2.0 * 14
    np.testing.assert_allclose(s.norms, expected, rtol=1e-6)


def test_op_gradient_norms_count_only_convolutions():
    """NB201 with affine cell batch norms: the norms' scale and shift are not credited (the
    authors' rule reads the conv of each ReLU-conv-BN op; their batch norms have no parameters)."""
    from wsnas.spaces import get_space

    space = get_space("nb201", channels=2, cells_per_stage=1)  # one cell per stage: C = 2, 4, 8
    net = space.build_supernet(num_classes=10, in_channels=1)
    s = get_strategy("pada-path")
    s.setup(StrategyContext(supernet=net, space=space, seed=0, total_epochs=4, train_size=10,
                            optimizer=torch.optim.SGD(net.parameters(), lr=0.1)))
    ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    arch = space.from_option_indices([3, 2, 1, 0, 4, 3])  # conv 3x3 on two edges, conv 1x1 on one
    _fill_grads(s, arch, 1.0)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d) and m.affine and m.weight.grad is not None]
    assert len(bns) == 3 * 3  # the batch norms of the path's convolutions have gradients too
    s._fold_grad_norms(arch)
    # conv 1x1 kernels C x C: norms 2 + 4 + 8; conv 3x3: 3C each, 6 + 12 + 24 per edge, 2 edges / 2
    assert dict(zip(ops, s.norms[0])) == pytest.approx(
        {"none": 0, "skip_connect": 0, "nor_conv_1x1": 0.5 * 14, "nor_conv_3x3": 0.5 * 42, "avg_pool_3x3": 0})


def _record(s, draws):
    """Steps that saw samples ``i`` with importance ``sqrt(2) * r`` each (two-class logits)."""
    for indices, rs in draws:
        # logits (log((1 - r) / r), 0) with label 0: softmax - onehot = (-r, r), norm sqrt(2) r
        logits = torch.tensor([[np.log((1 - r) / r), 0.0] for r in rs])
        s._record_importance(logits, torch.zeros(len(rs), dtype=torch.long), s.ctx.train_size, torch.tensor(indices))


def test_data_importance_restarts_every_epoch(small_space, small_digits):
    s = _setup(small_space, small_digits, "pada-data")  # 4 epochs
    n = len(small_digits.train)
    # sample 3 twice in one batch, 7 twice in two batches, 9 once, 5 three times, the rest never
    _record(s, [([3, 7, 3], [0.5, 0.25, 0.1]), ([7, 9, 5, 5], [0.75, 0.5, 0.1, 0.25]), ([5], [0.5])])
    s.end_epoch(2)  # tau = 2 / 4
    # importances / sqrt(2): 3 -> (0.5 + 0.1) / 2, 7 -> (0.25 + 0.75) / 2, 9 -> 0.5, 5 -> each new
    # draw averaged with the running value: ((0.1 + 0.25) / 2 + 0.5) / 2; never drawn -> 0
    g = {3: 0.3, 7: 0.5, 9: 0.5, 5: 0.3375}
    q = np.full(n, 0.5 / n)
    for i, v in g.items():
        q[i] += 0.5 * v / sum(g.values())
    assert s.epoch_metrics()["data_ess"] == pytest.approx(1 / (n * (q * q).sum()))
    np.testing.assert_allclose(s.q.numpy(), q)
    # the next epoch starts from nothing: only what it draws counts
    _record(s, [([3], [0.5])])
    s.end_epoch(3)  # tau = 3 / 4
    q = np.full(n, 0.25 / n)
    q[3] += 0.75
    np.testing.assert_allclose(s.q.numpy(), q)
    draws = s.epoch_indices(n, torch.Generator().manual_seed(0))
    assert len(draws) == n and 0.7 < (draws == 3).float().mean() < 0.8


def test_data_state_resumes_mid_epoch_and_from_old_checkpoints(small_space, small_digits):
    n = len(small_digits.train)
    a = _setup(small_space, small_digits, "pada-data")
    _record(a, [([3, 7], [0.5, 0.25])])
    a.end_epoch(1)
    _record(a, [([4, 4], [0.5, 0.25])])
    b = _setup(small_space, small_digits, "pada-data")
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.q, b.q)
    for s in (a, b):
        _record(s, [([4], [0.1])])
        s.end_epoch(2)
    assert torch.equal(a.q, b.q) and a.q[4] == pytest.approx(0.5 * 1 + 0.5 / n)
    # a checkpoint written before the per-epoch reset (its last importances, epoch 3 done)
    old = {"probs": torch.full((1, 4), 0.25, dtype=torch.float64), "norms": torch.zeros(1, 4, dtype=torch.float64),
           "seen": torch.zeros(1, 4, dtype=torch.bool), "rng": a.state_dict()["rng"], "epoch": 3,
           "importance": torch.ones(n)}
    old["importance"][0] = 1 + n
    b.load_state_dict(old)
    q = np.full(n, 0.5 * 1 / (2 * n) + 0.5 / n)  # tau = 2 / 4
    q[0] = 0.5 * (1 + n) / (2 * n) + 0.5 / n
    np.testing.assert_allclose(b.q.numpy(), q)


def test_data_sampling_is_reproducible_from_its_seed(small_space, small_digits):
    s = _setup(small_space, small_digits, "pada-data")
    n = len(small_digits.train)
    assert s.epoch_indices(n, torch.Generator().manual_seed(1)) is None  # first epoch: shuffled order
    _record(s, [(list(range(10)), [0.5] * 10)])
    s.end_epoch(2)  # tau = 1/2: half the draws from the 10 samples drawn, half uniform
    a = s.epoch_indices(n, torch.Generator().manual_seed(1))
    b = s.epoch_indices(n, torch.Generator().manual_seed(1))
    c = s.epoch_indices(n, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c) and len(a) == n
    assert 0.4 < (a < 10).float().mean() < 0.6  # expected 0.5 + 0.5 * 10 / n
    logits = torch.tensor([[10.0, 0.0], [0.0, 0.0]])
    s._record_importance(logits, torch.tensor([0, 1]), n, torch.tensor([3, 7]))
    assert float(s.importance[3]) < 1e-3 and abs(float(s.importance[7]) - np.sqrt(0.5)) < 1e-6


def test_path_credit_gives_every_op_of_the_path_the_whole_gradient_norm(small_space, small_digits):
    s = _setup(small_space, small_digits, "pada-path", credit="path")
    arch = small_space.parse("123")  # max_pool (no parameters), sep_conv_3x3, sep_conv_5x5
    for scale in (1.0, 2.0):
        for p in s.supernet.parameters():
            p.grad = None
        classifier, stem = s.supernet.classifier.bias, next(s.supernet.parameters())
        classifier.grad = torch.zeros_like(classifier)
        classifier.grad[:2] = torch.tensor([3.0, 4.0]) * scale  # norm 5 scale
        stem.grad = torch.zeros_like(stem)
        stem.grad.view(-1)[0] = 12.0 * scale  # norm 12 scale: the step's whole norm 13 scale
        s._fold_grad_norms(arch)
    g = 0.5 * (0.5 * 13) + 0.5 * 26  # the running mean from 0 over the two steps
    np.testing.assert_allclose(s.norms[0], [g, g, g, 0.0])
    s.end_epoch(2)  # tau = 1/2: max-pool is credited like the convolutions
    np.testing.assert_allclose(s.probs[0], [0.5 / 3 + 0.125] * 3 + [0.125])
    assert s.describe()["credit"] == "path" and "credit" not in get_strategy("pada").describe()


@pytest.mark.parametrize("name", ["pada", "pada-data"])
def test_data_sampling_is_refused_data_parallel(small_space, name):
    """A rank sees its shard's logits but the whole batch's indices: refused when the trainer binds
    the strategy (before training), not a shape error at the end of an epoch."""
    from wsnas.core.distributed import Replica

    net = small_space.build_supernet(num_classes=10, in_channels=1)
    ctx = StrategyContext(supernet=net, space=small_space, optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
                          seed=0, total_epochs=2, train_size=10, replica=Replica(rank=0, world_size=2))
    with pytest.raises(WsnasError, match=f"{name}'s data sampling does not run data-parallel yet"):
        get_strategy(name).setup(ctx)
    get_strategy("pada-path").setup(ctx)  # path sampling only: fine


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
    with pytest.raises(WsnasError, match="unknown PA&DA credit rule 'edges'; accepted: ops .*, path"):
        get_strategy("pada", credit="edges")
    with pytest.raises(WsnasError, match="credit rule 'path' needs path sampling"):
        get_strategy("pada", paths=False, credit="path")


@pytest.mark.parametrize("name, options", [("pada", {}), ("pada", {"credit": "path"}), ("fairnas", {})])
def test_supernet_command_runs_them(tmp_path, capsys, name, options):
    from wsnas.cli import main

    extra = ["--pada-credit", options["credit"]] if options else []
    assert main(["supernet", "--strategy", name, "--space-option", "channels=4", "--space-option", "stem_channels=8",
                 "--epochs", "1", "--batch-size", "256", "--store", str(tmp_path / "r.db"), "--run-dir",
                 str(tmp_path / "run"), "--no-progress", "--threads", "1", *extra]) == 0
    run_id = f"supernet/{name}-credit-path/0" if options else f"supernet/{name}/0"
    assert f"run {run_id}" in capsys.readouterr().out
    with Store(tmp_path / "r.db", create=False) as store:
        run = store.get_run(run_id)
        assert run["status"] == "done" and run["config"]["strategy"] == get_strategy(name, **options).describe()
        assert run["config"]["strategy"].get("credit") == options.get("credit")
        steps = store.train_steps(run_id)
        assert [s["step"] for s in steps] == list(range(1, 6))  # 1079 digits at batch 256
        predictions = store.predictions(run_id, checkpoint="epoch:1")
        assert len(predictions) == 64 and all(0 <= r["accuracy"] <= 1 for r in predictions)
        names = {m["name"] for m in store.run_metrics(run_id)}
        if name == "pada":  # its own diagnostics reach the store through the epoch_metrics hook
            assert {"data_ess", "path_prob_max_pool_3x3", "path_prob_sep_conv_3x3"} <= names
        else:
            assert not any(n.startswith("path_prob_") for n in names)


@pytest.mark.parametrize("credit", ["ops", "path"])
def test_a_loop_of_your_own_with_observe_learns_what_step_learns(small_space, small_digits, credit):
    """next_arch, your own forward/backward/SGD step, then observe(): the same paths drawn, the same
    weights, and the same path and data distributions as PA&DA's own step()."""
    data = small_digits
    a, b = (_setup(small_space, data, "pada", credit=credit) for _ in range(2))
    for epoch in range(3):
        gen = torch.Generator().manual_seed(epoch)
        order = a.epoch_indices(len(data.train), gen)
        order = torch.randperm(len(data.train), generator=gen) if order is None else order
        for start in range(0, len(order), 64):
            idx = order[start:start + 64]
            x, y = data.train.x[idx], data.train.y[idx]
            a.step(x, y, indices=idx)
            arch = b.next_arch()
            logits = b.supernet(x, arch)
            b.optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(logits, y).backward()
            b.optimizer.step()
            b.observe(arch, logits, y, idx)
        for s in (a, b):
            s.end_epoch(epoch)
    assert a.epoch == b.epoch == 3 and a.tau > 0
    np.testing.assert_allclose(a.probs, b.probs)
    assert not np.allclose(a.probs, 0.25)  # the gradients moved them
    torch.testing.assert_close(a.q, b.q)
    for p, q in zip(a.supernet.parameters(), b.supernet.parameters()):
        torch.testing.assert_close(p, q)
    with pytest.raises(WsnasError, match="observe\\(\\) needs the batch's logits"):
        b.observe(arch, None, y, idx)
