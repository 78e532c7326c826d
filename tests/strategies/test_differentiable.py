"""Differentiable search: architecture parameters (softmax / GAEA), DARTS, GDAS, relaxations."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsnas.core.errors import WsnasError
from wsnas.evaluator import EvalConfig
from wsnas.nn.choice import ChoiceBlock, Sampled
from wsnas.spaces import get_space
from wsnas.strategies import StrategyContext, get_strategy
from wsnas.strategies.archparams import ArchParams, ExponentiatedGradient
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import CHECKPOINT, SupernetConfig, SupernetTrainer


# ------------------------------------------------------------------ GAEA's update
def test_exponentiated_gradient_matches_a_hand_computation():
    theta = torch.nn.Parameter(torch.tensor([[0.5, 0.3, 0.2], [0.25, 0.25, 0.5]]))
    theta.grad = torch.tensor([[1.0, -2.0, 0.0], [0.0, 0.0, 100.0]])
    ExponentiatedGradient([theta], lr=0.1).step()
    row0 = np.array([0.5 * np.exp(-0.1), 0.3 * np.exp(0.2), 0.2])
    row1 = np.array([0.25, 0.25, max(0.5 * np.exp(-10.0), 1e-5)])
    expected = np.stack([row0 / row0.sum(), row1 / row1.sum()])
    np.testing.assert_allclose(theta.detach().numpy(), expected, rtol=1e-6)


def test_simplex_invariants_hold_after_every_step():
    arch = ArchParams(6, ("none", "a", "b", "c", "d"), param="gaea", exclude=("none",), nodes=[[0], [1, 2], [3, 4, 5]])
    opt = arch.make_optimizer()
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        opt.zero_grad()
        loss = (arch.weights() * torch.randn(6, 5, generator=gen) * 30).sum() + \
            (arch.edge_weights() * torch.randn(6, generator=gen) * 30).sum()
        loss.backward()
        opt.step()
        w = arch.alpha.detach()
        torch.testing.assert_close(w.sum(1), torch.ones(6))
        assert bool((w[:, 0] == 0).all()) and bool((w[:, 1:] >= 1e-5).all())
        for b in arch.beta:
            torch.testing.assert_close(b.detach().sum(), torch.tensor(1.0))
            assert bool((b.detach() >= 1e-5).all())
    assert arch.entropy() < np.log(4)  # it moved away from uniform


def test_softmax_params_and_errors():
    arch = ArchParams(3, ("a", "b"), seed=1)
    torch.testing.assert_close(arch.weights().sum(1), torch.ones(3))
    assert abs(arch.entropy() - np.log(2)) < 1e-4
    assert isinstance(arch.make_optimizer(), torch.optim.Adam)
    with pytest.raises(WsnasError, match="accepted: softmax, gaea"):
        ArchParams(3, ("a", "b"), param="adam")
    with pytest.raises(WsnasError, match="cannot exclude unknown op 'c'"):
        ArchParams(3, ("a", "b"), exclude=("c",))


def test_arch_params_for_a_relaxation_mask_what_an_edge_lacks():
    """ArchParams.for_relaxation: the mobile space's first layer of a stage has no skip, so GAEA
    starts it uniform over its own six ops; PC-DARTS's edge weights are one per incoming edge."""
    relax = get_space("mobile", resolution=32, width=0.25).relaxation()
    arch = ArchParams.for_relaxation(relax, param="gaea")
    w = arch.weights().detach()
    allowed = torch.as_tensor(relax.allowed())
    assert w.shape == (21, 7) and arch.options == relax.options and arch.beta is None
    torch.testing.assert_close(w, allowed / allowed.sum(1, keepdim=True))
    assert sorted({int(n) for n in allowed.sum(1)}) == [6, 7]
    darts = ArchParams.for_relaxation(get_space("darts").relaxation(), edge_weights=True, seed=3)
    assert [len(b) for b in darts.beta] == [2, 3, 4, 5] * 2 and darts.param == "softmax"


# ------------------------------------------------------------------ relaxations
def test_darts_relaxation_selects_two_inputs_per_node_and_never_none():
    space = get_space("darts")
    relax = space.relaxation()
    assert len(relax.edges) == 28 and [len(v) for v in relax.nodes().values()] == [2, 3, 4, 5] * 2
    w = np.full((28, 8), 0.01)
    w[:, 0] = 0.9  # none is the strongest everywhere: never picked
    w[2, 4] = 0.5  # node 3 (edges 2, 3, 4): input 0 with sep_conv_3x3 ...
    w[4, 7] = 0.4  # ... and input 2 with dil_conv_5x5
    genotype = space.genotype(relax.discretize(w))
    assert ("sep_conv_3x3", 0) in genotype.normal[2:4] and ("dil_conv_5x5", 2) in genotype.normal[2:4]
    assert all(op != "none" for op, _ in genotype.normal + genotype.reduce)
    rows = relax.arch_rows(relax.discretize(w))
    assert sum(r is not None for r in rows) == 16


def test_gdas_sample_runs_only_the_sampled_op():
    calls = []

    def build(name):
        m = torch.nn.Identity()
        m.register_forward_hook(lambda *_: calls.append(name))
        return m

    block = ChoiceBlock(("a", "b", "c"), build)
    w = torch.tensor(1.0, requires_grad=True)
    out = block(torch.ones(2), Sampled(1, w))
    out.sum().backward()
    assert calls == ["b"] and float(w.grad) == 2.0


# ------------------------------------------------------------------ strategies in the trainer
def _trainer(space, data, run_dir, strategy, epochs=2):
    cfg = SupernetConfig(train=TrainConfig(epochs=epochs, batch_size=32), eval=EvalConfig(batch_size=64),
                         dense_last=0)
    return SupernetTrainer(space, data, strategy, cfg, seed=0, run_dir=run_dir, progress=False,
                           archs=list(space.enumerate())[:4])


@pytest.mark.parametrize("name, options", [
    ("darts", {}), ("darts", {"param": "gaea"}), ("darts", {"order": 2}), ("darts", {"single_level": True}),
    ("darts", {"arch_split": "valid"}),
    ("gdas", {}), ("gdas", {"param": "gaea"}), ("pcdarts", {}), ("pcdarts", {"param": "gaea", "k": 2}),
])
def test_strategies_train_search_and_resume_exactly(small_space, small_digits, tmp_path, name, options):
    whole = _trainer(small_space, small_digits, tmp_path / "a", get_strategy(name, **options))
    start = whole.strategy.arch.alpha.detach().clone()
    whole.train()
    assert not torch.equal(start, whole.strategy.arch.alpha.detach())  # the architecture moved
    if options.get("single_level") or options.get("arch_split") == "valid":
        assert whole.steps_per_epoch == 6  # all 192 training images at batch 32
        assert whole.arch_split is (small_digits.valid if options.get("arch_split") else small_digits.train)
    else:
        assert whole.steps_per_epoch == 3  # bilevel: half of them, the other half for the architecture

    class Stop(Exception):
        pass

    part = _trainer(small_space, small_digits, tmp_path / "b", get_strategy(name, **options))

    def stop(step, _):
        if step == part.steps_per_epoch + 1:
            raise Stop

    with pytest.raises(Stop):
        part.train(on_step=stop)
    resumed = _trainer(small_space, small_digits, tmp_path / "b", get_strategy(name, **options))
    assert (tmp_path / "b" / CHECKPOINT).exists() and resumed.try_resume()
    resumed.train()
    assert torch.equal(whole.strategy.arch.alpha, resumed.strategy.arch.alpha)
    for (k, a), (_, b) in zip(whole.supernet.state_dict().items(), resumed.supernet.state_dict().items()):
        assert torch.equal(a, b), k
    # the stored diagnostics, recomputed by hand from the final weights
    metrics = whole.strategy.epoch_metrics()
    probs = whole.strategy.arch.probabilities()
    assert metrics["entropy"] == pytest.approx(float(np.mean([-(r * np.log(r)).sum() for r in probs])))
    argmax = small_space.from_option_indices([int(np.argmax(r)) for r in whole.strategy.arch.selection_weights()])
    assert metrics["param_free_ops"] == argmax.ops.count("max_pool_3x3")
    assert metrics["argmax_index"] == small_space.index(argmax)


def test_gaea_darts_step_is_the_exponentiated_gradient_of_the_validation_loss(small_space, small_digits):
    """One GAEA-DARTS step (first order): theta <- theta * exp(-eta * dL_val/dtheta), renormalised,
    with the gradient taken at the weights before the step (GAEA updates the architecture first)."""
    torch.manual_seed(0)
    net = small_space.build_supernet(num_classes=10, in_channels=1)
    s = get_strategy("darts", param="gaea")
    s.setup(StrategyContext(supernet=net, space=small_space, seed=0,
                            optimizer=torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9)))
    x, y = small_digits.train.x[:32], small_digits.train.y[:32]
    xv, yv = small_digits.valid.x[:32], small_digits.valid.y[:32]
    theta0 = s.arch.weights().detach().clone()
    theta = theta0.clone().requires_grad_(True)
    twin = copy.deepcopy(net)  # the same weights and BN state, so the strategy's own pass is untouched
    (grad,) = torch.autograd.grad(F.cross_entropy(twin(xv, s.mixed_path(theta)), yv), theta)
    eta = s.arch_optimizer.param_groups[0]["lr"]
    expected = theta0 * torch.exp(-eta * grad)
    expected = expected / expected.sum(-1, keepdim=True)
    s.step(x, y, (xv, yv))
    after = s.arch.weights().detach()
    assert not torch.allclose(after, theta0)
    assert torch.allclose(after, expected, atol=1e-6, rtol=1e-5)


def test_second_order_gradient_differs_from_first_order(small_space, small_digits):
    grads = {}
    for order in (1, 2):
        torch.manual_seed(0)
        net = small_space.build_supernet(num_classes=10, in_channels=1)
        opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
        s = get_strategy("darts", order=order)
        s.setup(StrategyContext(supernet=net, space=small_space, optimizer=opt, seed=0))
        x, y = small_digits.train.x[:32], small_digits.train.y[:32]
        xv, yv = small_digits.train.x[32:64], small_digits.train.y[32:64]
        s.arch_optimizer.zero_grad()
        if order == 1:
            loss, _ = s._loss(s.mixed_path(s.arch.weights()), xv, yv)
            s._arch_grads(loss)
        else:
            before = [p.detach().clone() for p in net.parameters()]
            s._unrolled_grads(xv, yv, x, y)
            assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))  # weights restored
        grads[order] = s.arch.alpha.grad.clone()
    assert not torch.allclose(grads[1], grads[2])
    assert bool(torch.isfinite(grads[2]).all())
    # with a small step the unrolled gradient stays close to the first-order one
    assert float(torch.nn.functional.cosine_similarity(grads[1].flatten(), grads[2].flatten(), dim=0)) > 0.5


def test_partial_channels_mixed_op():
    from wsnas.nn.choice import channel_shuffle

    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    block = ChoiceBlock(("a", "b"), lambda name: torch.nn.Identity() if name == "a" else torch.nn.Identity(),
                        partial=4)
    out = block(x, torch.tensor([0.5, 0.25]))
    # channels 0-1 go through the ops (weights sum 0.75), 2-7 bypass them, then shuffled in 4 groups
    expected = channel_shuffle(torch.cat([0.75 * x[:, :2], x[:, 2:]], 1), 4)
    assert torch.equal(out, expected)
    for name in ("tiny64", "nb201", "darts"):
        space = get_space(name, **({"search_layers": 5} if name == "darts" else {}))
        net = space.build_supernet(num_classes=10, in_channels=3, partial_channels=4)
        relax = space.relaxation()
        w = torch.softmax(torch.randn(len(relax.edges), len(relax.options)), -1)
        logits = net(torch.randn(2, 3, 16, 16), relax.path(list(w.unbind(0))))
        assert logits.shape == (2, 10)
    with pytest.raises(WsnasError, match="must divide"):
        get_space("tiny64").build_supernet(num_classes=10, partial_channels=3)


# ------------------------------------------------------------------ GDAS
def _gdas(space, epochs=None, **options):
    torch.manual_seed(0)
    net = space.build_supernet(num_classes=10, in_channels=1)
    s = get_strategy("gdas", **options)
    s.setup(StrategyContext(supernet=net, space=space, seed=0, total_epochs=epochs,
                            optimizer=torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9)))
    return s


# theta of tiny64's three edges over (max_pool_3x3, sep_conv_3x3, sep_conv_5x5, dil_conv_5x5);
# sep_conv_5x5 excluded, so each edge is uniform at 1/3 over the other three
THETA = torch.tensor([[0.6, 0.3, 0.0, 0.1], [0.2, 0.2, 0.0, 0.6], [0.5, 0.25, 0.0, 0.25]])


def test_gaea_gdas_regulariser_gradient_is_the_kl_to_uniform(small_space, small_digits):
    """The authors' regulariser (gaea_release architect_egdas): 0.01 * sum_e KL(theta_e || uniform).
    Its gradient, 0.01 * (log(theta / u) + 1) on every allowed op, is what separates the
    architecture gradient with the default weight from the one with weight 0."""
    xv, yv = small_digits.valid.x[:32], small_digits.valid.y[:32]
    grads, after = {}, {}
    for weight in (0.0, None):  # None: GAEA-GDAS's default, 0.01
        s = _gdas(small_space, param="gaea", exclude=("sep_conv_5x5",), kl_weight=weight)
        with torch.no_grad():
            s.arch.alpha.copy_(THETA)
        s.arch_step(xv, yv, None, None)  # the same Gumbel sample and network for both weights
        grads[weight], after[weight] = s.arch.alpha.grad.clone(), s.arch.alpha.detach().clone()
    assert s.kl_weight == 0.01 and s.describe()["kl_weight"] == 0.01
    allowed = THETA > 0
    expected = torch.where(allowed, 0.01 * (torch.log(THETA.clamp_min(1e-30) * 3) + 1), torch.zeros_like(THETA))
    torch.testing.assert_close(grads[None] - grads[0.0], expected, atol=1e-6, rtol=1e-5)
    # the step is the exponentiated gradient of the total (eta 0.01); the excluded op stays at 0
    step = THETA * torch.exp(-0.01 * grads[None])
    torch.testing.assert_close(after[None], step / step.sum(1, keepdim=True), atol=1e-7, rtol=1e-6)
    assert bool((after[None][:, 2] == 0).all())
    # the value: sum over edges and allowed ops of theta log(3 theta)
    with torch.no_grad():
        s.arch.alpha.copy_(THETA)
        value = float(s.kl_to_uniform())
    assert value == pytest.approx(sum(t * math.log(3 * t) for t in THETA[allowed].tolist()), rel=1e-6)


def test_gaea_gdas_regulariser_alone_pulls_theta_towards_uniform(small_space, small_digits):
    """With the classifier zeroed the loss no longer depends on theta, so one step is the
    regulariser's alone: theta <- theta * exp(-eta * w * (log(3 theta) + 1)), i.e. theta ** (1 - eta w)
    renormalised; with eta * w = 0.5 that is sqrt(theta), closer to uniform on every edge."""
    s = _gdas(small_space, param="gaea", exclude=("sep_conv_5x5",), kl_weight=1.0, arch_lr=0.5)
    with torch.no_grad():
        s.arch.alpha.copy_(THETA)
        s.supernet.classifier.weight.zero_()
        s.supernet.classifier.bias.zero_()
    before = s.kl_to_uniform().item()
    s.arch_step(small_digits.valid.x[:16], small_digits.valid.y[:16], None, None)
    root = THETA.sqrt()
    torch.testing.assert_close(s.arch.alpha.detach(), root / root.sum(1, keepdim=True), atol=1e-7, rtol=1e-6)
    assert s.kl_to_uniform().item() < before
    ent = -torch.where(THETA > 0, THETA * torch.log(THETA.clamp_min(1e-30)), torch.zeros_like(THETA)).sum(1)
    new = s.arch.alpha.detach()
    ent_after = -torch.where(new > 0, new * torch.log(new.clamp_min(1e-30)), torch.zeros_like(new)).sum(1)
    assert bool((ent_after > ent).all())


def test_gdas_temperature_follows_the_authors_schedule_with_warmup(small_space):
    """tau = 10 - 9.9 * max(e - warmup, 0) / (E - 1) (gaea_release set_tau): E = 6, warm-up 2."""
    s = _gdas(small_space, warmup_epochs=2, epochs=6)
    taus = []
    for e in range(6):
        s.epoch = e
        taus.append(s.tau)
    assert taus == pytest.approx([10.0, 10.0, 10.0, 10 - 9.9 / 5, 10 - 2 * 9.9 / 5, 10 - 3 * 9.9 / 5])
    s = _gdas(small_space, epochs=6)  # without warm-up: 10 -> 0.1 exactly at the last epoch
    s.epoch = 5
    assert s.tau == pytest.approx(0.1)


@pytest.mark.parametrize("options, fragment", [
    ({"warmup_epochs": -1}, "the warm-up must be a non-negative number of epochs, got -1"),
    ({"warmup_epochs": 1.5}, "got 1.5"),
    ({"kl_weight": -0.01}, "KL weight must be >= 0"),
])
def test_gdas_bad_options_are_one_line_errors(options, fragment):
    with pytest.raises(WsnasError, match=fragment):
        get_strategy("gdas", **options)


class _Times(torch.nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return self.factor * x


def test_gdas_straight_through_reaches_the_ops_not_sampled(small_space, small_digits):
    """The reference forward_gdas (xautodl, gaea_release) adds the unselected ops' straight-through
    weights h_o = 0 - p_o + p_o to the edge's output: the value is unchanged, and with
    L = sum(out) each weight h_j gets c_j = dL/dh_j (sum(op_i(x)) for the sampled op i, the
    number of elements for the others), so d L / d alpha_k = p_k (c_k - sum_j c_j p_j) / tau.
    Through the sampled op only, c_o would be 0 for every other op."""
    s = _gdas(small_space, epochs=4)
    s.epoch = 1
    tau = s.tau
    state = s.gen.get_state()
    path = s._sample(with_grad=True)
    s.gen.set_state(state)  # the same uniforms, for the hand computation
    u = torch.rand(s.arch.alpha.shape, generator=s.gen).clamp_(1e-10, 1 - 1e-10).double()
    p = torch.softmax((s.arch.alpha.detach().double() - torch.log(-torch.log(u))) / tau, dim=-1)[0]
    i = int(p.argmax())
    options = small_space.relaxation().options
    block = ChoiceBlock(options, lambda name: _Times(2.0 + options.index(name)))
    x = torch.tensor([1.0, -2.0, 4.0])
    out = block(x, path[0])
    assert path[0].index == i
    assert torch.equal(out, block(x, Sampled(i, path[0].weight)))  # the forward value is unchanged ...
    xs = small_digits.valid.x[:8]  # ... in the whole supernet too
    assert torch.equal(s.supernet(xs, path), s.supernet(xs, tuple(Sampled(sp.index, sp.weight) for sp in path)))
    out.sum().backward()
    c = torch.full((4,), 3.0, dtype=torch.float64)  # x has 3 elements
    c[i] = float(block.candidates[block.options[i]](x).sum())
    expected = p * (c - (c * p).sum()) / tau
    grad = s.arch.alpha.grad
    assert bool((grad[1:] == 0).all())  # the other edges were not used
    unselected = [k for k in range(4) if k != i]
    assert all(abs(float(grad[0, k])) > 1e-4 for k in unselected)
    torch.testing.assert_close(grad[0].double(), expected, rtol=1e-4, atol=1e-7)


# ------------------------------------------------------------------ warm-up and recipes
def test_pcdarts_warm_up_freezes_the_architecture_then_updates_it(small_space, small_digits, tmp_path):
    """PC-DARTS's authors run no architecture step in the first epochs (``if epoch>=15``); the
    weights train all along. Batch 256 (their recipe) is larger than the 96-image weight split here:
    one partial batch per epoch, the architecture batches cycling as usual."""
    strategy = get_strategy("pcdarts", warmup_epochs=1, arch_lr=6e-4)
    cfg = SupernetConfig(train=TrainConfig(epochs=2, batch_size=256, lr=0.1, lr_min=0.0),
                         eval=EvalConfig(batch_size=64), eval_every_epoch=False, dense_last=0)
    trainer = SupernetTrainer(small_space, small_digits, strategy, cfg, seed=0, run_dir=tmp_path, progress=False,
                              archs=[])
    assert trainer.steps_per_epoch == 1 and strategy.describe()["warmup_epochs"] == 1
    alpha0, beta0 = strategy.arch.alpha.detach().clone(), [b.detach().clone() for b in strategy.arch.beta]
    weights0 = [p.detach().clone() for p in trainer.supernet.parameters()]
    seen = []

    def record(step, _):
        seen.append((strategy.epoch, strategy.arch.alpha.detach().clone(),
                     [b.detach().clone() for b in strategy.arch.beta], len(strategy.arch_optimizer.state)))

    trainer.train(on_step=record)
    (e0, alpha_w, beta_w, adam_w), (e1, alpha_1, beta_1, adam_1) = seen
    assert (e0, e1) == (0, 1)
    # the warm-up epoch: the architecture exactly as initialised, Adam never stepped; the weights trained
    assert torch.equal(alpha_w, alpha0) and all(torch.equal(a, b) for a, b in zip(beta_w, beta0)) and adam_w == 0
    assert any(not torch.equal(a, p) for a, p in zip(weights0, trainer.supernet.parameters()))
    # the next epoch: one Adam step on the op and edge weights, at the recipe's step size
    assert not torch.equal(alpha_1, alpha0) and any(not torch.equal(a, b) for a, b in zip(beta_1, beta0))
    assert adam_1 > 0 and strategy.arch_optimizer.param_groups[0]["lr"] == 6e-4
    assert (alpha_1 - alpha0).abs().max() == pytest.approx(6e-4, rel=1e-3)  # Adam's first step: lr * sign(grad)


def test_a_warm_up_must_leave_architecture_updates(small_space, small_digits, tmp_path):
    cfg = SupernetConfig(train=TrainConfig(epochs=2, batch_size=64), eval=EvalConfig(batch_size=64), dense_last=0)
    with pytest.raises(WsnasError, match="a warm-up of 2 epochs covers the whole 2-epoch search"):
        SupernetTrainer(small_space, small_digits, get_strategy("darts", warmup_epochs=2), cfg, seed=0,
                        run_dir=tmp_path, progress=False, archs=[])
    with pytest.raises(WsnasError, match="non-negative number of epochs, got -1"):
        get_strategy("darts", warmup_epochs=-1)
    # a fixed architecture is never updated anyway; no warm-up, the strategy describes itself as before
    SupernetTrainer(small_space, small_digits, get_strategy("darts", warmup_epochs=5, fixed_alpha=True), cfg, seed=0,
                    run_dir=tmp_path, progress=False, archs=[])
    assert "warmup_epochs" not in get_strategy("darts").describe()


def test_every_strategy_declares_its_authors_recipe():
    from wsnas.strategies import strategy_class

    pc = strategy_class("pcdarts").recipe("softmax")
    assert dict(pc.train) == {"batch_size": 256, "lr": 0.1, "lr_min": 0.0}
    assert dict(pc.options) == {"arch_lr": 6e-4, "warmup_epochs": 15} and "PC-DARTS" in pc.source
    built = get_strategy("pcdarts", **pc.options)
    assert built.arch_optimizer_settings() == {"optimizer": "Adam", "lr": 6e-4, "betas": (0.5, 0.999),
                                               "weight_decay": 1e-3}
    assert strategy_class("darts").recipe("softmax").train == {} == strategy_class("darts").recipe("softmax").options
    with pytest.raises(WsnasError, match="unknown architecture parametrisation 'sparse'"):
        strategy_class("gdas").recipe("sparse")
