"""DARTS-PT against its authors' procedure (ruocwang/darts-pt): which op it keeps, the tuning lr,
the edge order's seed, the data and batch it scores on, the DARTS-space topology rounds, and the
fixed-alpha supernet's held-out half.

Most tests replace the accuracy measurement by a known table (``pt._accuracy``), so what they
check is PT's procedure, not the noise of a tiny network's accuracy.
"""

import argparse

import pytest
import torch

import wsnas.selection.pt as pt
from wsnas.commands import search as search_cmd
from wsnas.commands import select as select_cmd
from wsnas.core.errors import WsnasError
from wsnas.evaluator import EvalConfig
from wsnas.selection import PTConfig, select_magnitude, select_pt
from wsnas.spaces import get_space
from wsnas.strategies import get_strategy
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import SupernetConfig, SupernetTrainer

# tiny64: 3 edges x 4 ops. The accuracy with op o masked on edge e; the lowest (the op whose
# removal hurts most) is neither the first nor the last op of any edge
MASKED = {0: [0.90, 0.60, 0.80, 0.85], 1: [0.70, 0.75, 0.50, 0.72], 2: [0.88, 0.40, 0.87, 0.89]}
KEEP = {0: 1, 1: 2, 2: 1}


def _trainer(space, data, tmp_path, strategy, *, seed=0, batch_size=32, epochs=1):
    cfg = SupernetConfig(train=TrainConfig(epochs=epochs, batch_size=batch_size), eval=EvalConfig(batch_size=64),
                         dense_last=0, eval_every_epoch=False)
    return SupernetTrainer(space, data, strategy, cfg, seed=seed, run_dir=tmp_path, progress=False, archs=[])


def _table(strategy, split, batch_size, *, mask=None, drop_edge=None):
    assert drop_edge is None  # no topology decisions in tiny64
    return MASKED[mask[0]][mask[1]] if mask is not None else 1.0


def _record_decisions(strategy, snapshot=False):
    """Wrap ``strategy.decide``: every (edge, op), and with ``snapshot`` the weights and alpha then."""
    seen, states = [], []
    decide = strategy.decide

    def recording(edge, op):
        seen.append((edge, op))
        if snapshot:
            states.append(({k: v.detach().clone() for k, v in strategy.supernet.state_dict().items()},
                           strategy.arch.alpha.detach().clone()))
        decide(edge, op)

    strategy.decide = recording
    return seen, states


def _differ(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def test_pt_keeps_the_op_whose_removal_hurts_most_and_tunes_between_decisions(small_space, small_digits,
                                                                               tmp_path, monkeypatch):
    monkeypatch.setattr(pt, "_accuracy", _table)
    states = {}
    for tune in (True, False):
        trainer = _trainer(small_space, small_digits, tmp_path / str(tune), get_strategy("darts"))
        with torch.no_grad():  # the architecture weights favour other ops: magnitude disagrees on every edge
            trainer.strategy.arch.alpha.copy_(torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 0, 3.0]]))
        assert small_space.format(select_magnitude(trainer.strategy)) != small_space.format(
            small_space.from_option_indices([KEEP[e] for e in range(3)]))
        seen, states[tune] = _record_decisions(trainer.strategy, snapshot=True)
        arch = select_pt(trainer, small_digits, PTConfig(interval=1, tune=tune), progress=False)
        assert sorted(seen) == sorted(KEEP.items()) and trainer.strategy.decided == KEEP
        assert arch == small_space.from_option_indices([KEEP[e] for e in range(3)])
    # tuning between decisions trains the weights and the architecture weights (alternating steps)
    (w0, a0), (w1, a1), (w2, a2) = states[True]
    assert _differ(w0, w1) and _differ(w1, w2)
    assert not torch.equal(a0, a1) and not torch.equal(a1, a2)
    # without tuning nothing changes between decisions (so the change above is the tuning's)
    (u0, b0), (u1, b1), (u2, b2) = states[False]
    assert not _differ(u0, u1) and not _differ(u1, u2) and torch.equal(b0, b2)


def test_pt_tunes_at_the_authors_constant_lr(small_space, small_digits, tmp_path, monkeypatch):
    """nasbench201/projection.py resets the weight optimiser to lr 0.025 / 10 and never schedules it."""
    monkeypatch.setattr(pt, "_accuracy", _table)
    trainer = _trainer(small_space, small_digits, tmp_path, get_strategy("darts"))
    strategy, lrs = trainer.strategy, []
    step = strategy.step

    def recording(*args, **kwargs):
        group = strategy.optimizer.param_groups[0]
        lrs.append((group["lr"], group["momentum"], group["weight_decay"]))
        return step(*args, **kwargs)

    strategy.step = recording
    select_pt(trainer, small_digits, PTConfig(interval=2), progress=False)
    per_epoch = -(-len(trainer.weight_split) // 64)
    assert len(lrs) == 2 * 2 * per_epoch  # 2 gaps between 3 decisions, 2 epochs each
    assert set(lrs) == {(0.0025, 0.9, trainer.cfg.train.weight_decay)}


def _order(space, data, tmp_path, seed, pt_seed=None):
    trainer = _trainer(space, data, tmp_path / f"{seed}-{pt_seed}", get_strategy("darts"), seed=seed)
    seen, _ = _record_decisions(trainer.strategy)
    select_pt(trainer, data, PTConfig(tune=False, seed=pt_seed), progress=False)
    return [e for e, _ in seen]


def test_the_edge_order_is_seeded_by_the_search_unless_pt_seed_overrides_it(small_space, small_digits, tmp_path,
                                                                             monkeypatch):
    """The authors seed numpy with the run's --seed before picking random edges (train_search.py)."""
    monkeypatch.setattr(pt, "_accuracy", _table)
    orders = {s: _order(small_space, small_digits, tmp_path, s) for s in range(4)}
    assert all(sorted(o) == [0, 1, 2] for o in orders.values())
    assert len({tuple(o) for o in orders.values()}) > 1  # search seeds give different orders
    for s in range(4):  # --pt-seed s on a search of seed 9 decides in the order of a search of seed s
        assert _order(small_space, small_digits, tmp_path, 9, pt_seed=s) == orders[s]


@pytest.mark.parametrize("module", [search_cmd, select_cmd])
def test_pt_seed_defaults_to_the_searchs_seed_on_the_command_line(module):
    p = argparse.ArgumentParser()
    module.add_arguments(p)
    required = ["--run", "r"] if module is select_cmd else []
    assert p.parse_args(required).pt_seed is None
    assert p.parse_args([*required, "--pt-seed", "3"]).pt_seed == 3
    assert "the search's --seed" in p.format_help()


@pytest.mark.parametrize("options, split", [({}, "second half"), ({"fixed_alpha": True}, "second half"),
                                            ({"arch_split": "valid"}, "valid")])
def test_ops_are_scored_on_the_architecture_split_at_batch_64(small_space, small_digits, tmp_path, monkeypatch,
                                                              options, split):
    """The authors score on valid_queue, the architecture's half of the training data, batch 64,
    with batch-statistics BN (train_search.py, infer(..., eval=False))."""
    calls = []

    def recording(model, archs, data_split, cfg, **kwargs):
        calls.append((data_split, cfg))
        return [(0.5, 0.0)]

    monkeypatch.setattr(pt, "evaluate_archs", recording)
    trainer = _trainer(small_space, small_digits, tmp_path, get_strategy("darts", **options))
    select_pt(trainer, small_digits, PTConfig(tune=False), progress=False)
    half = len(small_digits.train) // 2
    expected = small_digits.train.x[half:] if split == "second half" else small_digits.valid.x
    assert len(calls) == 3 * 4
    for data_split, cfg in calls:
        assert torch.equal(data_split.x, expected)
        assert cfg.batch_size == 64 and cfg.bn_mode == "batch"


@pytest.mark.parametrize("options, weights, arch", [
    ({"fixed_alpha": True}, "first half", "second half"),
    ({"fixed_alpha": True, "arch_split": "valid"}, "train", "valid"),
    ({"fixed_alpha": True, "single_level": True}, "train", "train"),
])
def test_a_fixed_alpha_supernet_trains_on_the_bilevel_searchs_weight_split(small_space, small_digits, tmp_path,
                                                                            options, weights, arch):
    """The authors' fixed-alpha run ('blank', exp_scripts/blank-201.sh) is train_search.py with the
    architecture step a no-op: the weights train on the first half of the training data, and PT
    scores on the second."""
    half = len(small_digits.train) // 2
    x = {"first half": small_digits.train.x[:half], "second half": small_digits.train.x[half:],
         "train": small_digits.train.x, "valid": small_digits.valid.x}
    trainer = _trainer(small_space, small_digits, tmp_path, get_strategy("darts", **options), batch_size=32)
    assert torch.equal(trainer.weight_split.x, x[weights]) and torch.equal(trainer.arch_split.x, x[arch])
    learned = _trainer(small_space, small_digits, tmp_path / "learned",
                       get_strategy("darts", **{k: v for k, v in options.items() if k != "fixed_alpha"}))
    assert torch.equal(trainer.weight_split.x, learned.weight_split.x)  # the same split as with alpha learned
    strategy, arch_batches = trainer.strategy, []
    step = strategy.step

    def recording(x, y, valid_batch=None, **kwargs):
        arch_batches.append(valid_batch)
        return step(x, y, valid_batch, **kwargs)

    strategy.step = recording
    trainer.train()
    assert len(arch_batches) == -(-len(x[weights]) // 32) and set(arch_batches) == {None}
    assert float(strategy.arch.alpha.detach().abs().max()) == 0.0  # uniform, never updated


def test_darts_space_topology_one_random_node_per_cell_type_per_round(small_digits, tmp_path, monkeypatch):
    """sota/cnn/projection.py: 14 op rounds (one edge per cell type each), then per round one random
    node per cell type with more than 2 inputs keeps the 2 inputs whose removal hurts most, all at
    once; tuning between rounds, none within one."""
    space = get_space("darts", search_channels=4, search_layers=3, channels=4, layers=3, auxiliary=False)
    trainer = _trainer(space, small_digits, tmp_path, get_strategy("darts"), batch_size=64)
    strategy = trainer.strategy
    edges = strategy.relaxation.edges
    # the accuracy without edge e: a fixed pseudo-random table (one tie, broken towards the lower index)
    without = {e: ((e * 37) % 11) / 20 for e in range(len(edges))}
    without[9] = without[11]
    events = []

    def table(strategy_, split, batch_size, *, mask=None, drop_edge=None):
        if drop_edge is not None:
            assert set(strategy.decided) == set(range(len(edges)))  # after every op decision
            return without[drop_edge]
        return 0.5 + 0.01 * mask[1]  # the first op not excluded is kept

    decide = strategy.decide

    def recording(edge, op):
        events.append((edge, op))
        decide(edge, op)

    monkeypatch.setattr(pt, "_accuracy", table)
    monkeypatch.setattr(pt, "_tune_epoch", lambda *a, **k: events.append("tune"))
    strategy.decide = recording
    select_pt(trainer, small_digits, PTConfig(interval=2), progress=False)
    rounds, current = [], []
    for ev in events:
        if ev == "tune":
            if current:
                rounds.append(current)
            current = []
        else:
            current.append(ev)
    rounds.append(current)
    assert events.count("tune") == 2 * (len(rounds) - 1) and events[-1] != "tune"
    assert len(rounds) == 14 + 3
    for r in rounds[:14]:  # one op decision per cell type
        assert [edges[e].node.split(".")[0] for e, op in r] == ["normal", "reduce"]
        assert all(edges[e].options[op] == "max_pool_3x3" for e, op in r)
    seen_nodes = []
    for r in rounds[14:]:
        assert all(op is None for _, op in r)
        nodes = {edges[e].node for e, _ in r}
        assert sorted(n.split(".")[0] for n in nodes) == ["normal", "reduce"]  # one node per cell type
        for node in nodes:
            inputs = [e for e, ed in enumerate(edges) if ed.node == node]
            assert len(inputs) > 2
            removed = [e for e, _ in r if edges[e].node == node]
            assert len(removed) == len(inputs) - 2  # straight to 2 inputs
            kept = sorted(set(inputs) - set(removed))
            assert kept == sorted(sorted(inputs, key=lambda e: (without[e], e))[:2])
        seen_nodes += nodes
    assert len(seen_nodes) == len(set(seen_nodes)) == 6  # every node with more than 2 inputs, once
    text = space.format(select_magnitude(strategy))
    assert "none" not in text and "max_pool_3x3" in text


@pytest.mark.parametrize("options, fragment", [
    ({"interval": -1}, "interval must be non-negative, got -1"),
    ({"lr": 0.0}, "lr must be positive, got 0.0"),
    ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
    ({"eval_batch_size": 0}, "eval_batch_size must be at least 1, got 0"),
])
def test_bad_pt_settings_are_one_line_errors(options, fragment):
    with pytest.raises(WsnasError, match=fragment) as info:
        PTConfig(**options)
    assert "\n" not in str(info.value)
