"""Partial weight sharing: partitions, the private-weight bank, group and prefix training."""

import pytest
import torch
import torch.nn.functional as F

from wsnas.core.errors import WsnasError
from wsnas.data import iterate_batches
from wsnas.evaluator import EvalConfig, evaluate_archs, recalibration_batches
from wsnas.strategies import StrategyContext, get_strategy
from wsnas.strategies.groups import GroupStrategy
from wsnas.supernet import child_state_dict
from wsnas.supernet.sharing import make_bank, parse_sharing, partition_children
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import CHECKPOINT, SupernetConfig, SupernetTrainer


# ------------------------------------------------------------------ parsing and partitions
def test_parse_labels_and_compute():
    assert parse_sharing("full").is_full
    assert parse_sharing("group:1").is_full and parse_sharing("group:1").label == "full"
    s = parse_sharing("group:16:random@3")
    assert (s.groups, s.partition, s.partition_seed, s.label) == (16, "random", 3, "group:16:random@3")
    assert s.compute() == 16 and parse_sharing("group:16", budget="equal").compute() == 1
    assert parse_sharing("prefix:2").label == "prefix:2" and parse_sharing("prefix:2").compute() == 1


@pytest.mark.parametrize("spec", ["group", "group:x", "prefix:", "half", "group:4:nearest", "group:0"])
def test_bad_specs_name_the_value(spec):
    with pytest.raises(WsnasError) as exc:
        parse_sharing(spec)
    assert "accepted" in str(exc.value) or "at least 1" in str(exc.value)


def test_similarity_partition_is_lexicographic_slices(small_space):
    groups = partition_children(small_space, parse_sharing("group:4"))
    assert groups == [list(range(16 * g, 16 * g + 16)) for g in range(4)]
    # lexicographic in the names: group 1 is every child whose first edge is op 2
    assert {small_space.format(small_space.from_index(i))[0] for i in groups[1]} == {"2"}


def test_random_partition_is_seeded_and_complete(small_space):
    a = partition_children(small_space, parse_sharing("group:8:random"))
    b = partition_children(small_space, parse_sharing("group:8:random"))
    c = partition_children(small_space, parse_sharing("group:8:random@1"))
    assert a == b and a != c
    assert sorted(i for g in a for i in g) == list(range(64)) and all(len(g) == 8 for g in a)
    assert a != partition_children(small_space, parse_sharing("group:8"))


def test_partition_files(small_space, tmp_path):
    rows = tmp_path / "p.csv"
    rows.write_text("arch,group\n" + "".join(f"{small_space.format(small_space.from_index(i))},"
                                             f"{'ab'[i % 2]}\n" for i in range(64)))
    groups = partition_children(small_space, parse_sharing(f"group:2:file={rows}"))
    assert groups == [list(range(0, 64, 2)), list(range(1, 64, 2))]
    lines = tmp_path / "p.txt"
    lines.write_text("111 112\n" + " ".join(small_space.format(small_space.from_index(i)) for i in range(2, 64)))
    assert [len(g) for g in partition_children(small_space, parse_sharing(f"group:2:file={lines}"))] == [2, 62]
    with pytest.raises(WsnasError, match="has 2 groups"):
        partition_children(small_space, parse_sharing(f"group:3:file={lines}"))
    lines.write_text("111 111\n" + " ".join(small_space.format(small_space.from_index(i)) for i in range(1, 64)))
    with pytest.raises(WsnasError, match="repeats 111"):
        partition_children(small_space, parse_sharing(f"group:2:file={lines}"))
    with pytest.raises(WsnasError, match="does not exist"):
        partition_children(small_space, parse_sharing(f"group:2:file={tmp_path / 'none.csv'}"))
    with pytest.raises(WsnasError, match="cannot split 64 children into 65"):
        partition_children(small_space, parse_sharing("group:65"))


# ------------------------------------------------------------------ the bank
def _supernet(space, data, sharing, lr=0.1):
    torch.manual_seed(0)
    net = space.build_supernet(num_classes=data.num_classes, in_channels=data.in_channels)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=1e-3)
    bank = make_bank(net, opt, space, parse_sharing(sharing))
    return net, opt, bank


def _batches(data, n, batch_size=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for x, y in iterate_batches(data.train, batch_size, shuffle=True, generator=gen):
        out.append((x, y))
        if len(out) == n:
            return out
    return out


def _sgd_step(net, opt, arch, x, y):
    loss = F.cross_entropy(net(x, arch), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def test_a_step_on_one_key_leaves_the_others_untouched(small_space, small_digits):
    net, opt, bank = _supernet(small_space, small_digits, "prefix:1")
    a, b = small_space.parse("111"), small_space.parse("444")
    before_b = {k: v.clone() for k, v in bank.entries[small_space.index(b)]["tensors"].items()}
    stem_before = net.stem[0].weight.detach().clone()
    x, y = _batches(small_digits, 1)[0]
    _sgd_step(net, opt, a, x, y)
    after_b = bank.entries[small_space.index(b)]["tensors"]
    assert all(torch.equal(before_b[k], after_b[k]) for k in before_b)  # B's private copies
    assert not torch.equal(stem_before, net.stem[0].weight)  # the shared stem moved
    moved = bank.entries[small_space.index(a)]["tensors"]["classifier.weight"]
    assert not torch.equal(moved, before_b["classifier.weight"])
    # the momentum of A's private parameters is A's alone
    assert bank.entries[small_space.index(a)]["momentum"]["classifier.weight"]
    assert not bank.entries[small_space.index(b)]["momentum"]["classifier.weight"]
    # B's forward binds B's copies again (with an empty momentum)
    net(x, b)
    assert bank.active == small_space.index(b)
    assert torch.equal(net.classifier.weight, before_b["classifier.weight"])
    assert opt.state[net.classifier.weight] == {}


def test_prefix_private_names(small_space, small_digits):
    _, _, bank = _supernet(small_space, small_digits, "prefix:2")
    assert all(n.startswith(("cells.2.", "cells.3.", "classifier.")) for n in bank.params)
    assert any(n.startswith("cells.3.") for n in bank.buffers)  # BN statistics are private too
    assert bank.is_shared("stem") and bank.is_shared("cells.1") and not bank.is_shared("cells.2")
    _, _, bank4 = _supernet(small_space, small_digits, "prefix:4")
    assert set(bank4.params) == {"classifier.weight", "classifier.bias"}
    with pytest.raises(WsnasError, match="accepted: 0..4"):
        _supernet(small_space, small_digits, "prefix:5")


def test_no_sharing_equals_training_alone(small_space, small_digits):
    """m = 64: a child trained in its group is exactly the child trained alone on the same batches."""
    net, opt, bank = _supernet(small_space, small_digits, "group:64")
    init = {k: v.clone() for k, v in net.state_dict().items()}
    strategy = GroupStrategy(parse_sharing("group:64"))
    strategy.setup(StrategyContext(supernet=net, space=small_space, optimizer=opt, seed=0))
    batches = _batches(small_digits, 3)
    for x, y in batches:
        strategy.step(x, y)
    for name in ("111", "243", "444"):
        arch = small_space.parse(name)
        child = small_space.build_network(arch, num_classes=10, in_channels=1)
        child.load_state_dict({k: init[k] for k in child.state_dict()})
        child_opt = torch.optim.SGD(child.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
        child.train()
        for x, y in batches:
            loss = F.cross_entropy(child(x), y)
            child_opt.zero_grad(set_to_none=True)
            loss.backward()
            child_opt.step()
        trained = child_state_dict(net, child, bank=bank)
        for k, v in child.state_dict().items():
            assert torch.allclose(trained[k], v, atol=1e-6, rtol=0), (name, k)


def test_group_budgets_and_orders(small_space, small_digits):
    net, opt, _ = _supernet(small_space, small_digits, "group:4")
    paper = GroupStrategy(parse_sharing("group:4"))
    paper.setup(StrategyContext(supernet=net, space=small_space, optimizer=opt, seed=0))
    trained = []
    orig = GroupStrategy.next_in_group

    def spy(self, g):
        arch = orig(self, g)
        trained.append(small_space.index(arch))
        return arch

    GroupStrategy.next_in_group = spy
    try:
        x, y = _batches(small_digits, 1)[0]
        paper.step(x, y)
        paper.step(x, y)
        assert trained == [0, 16, 32, 48, 1, 17, 33, 49]  # every group, every batch
        trained.clear()
        equal = GroupStrategy(parse_sharing("group:4", budget="equal"))
        equal.setup(StrategyContext(supernet=net, space=small_space, optimizer=opt, seed=0))
        for _ in range(5):
            equal.step(x, y)
        assert trained == [0, 16, 32, 48, 1]  # batches dealt to the groups in turn
        trained.clear()
        shuffled = GroupStrategy(parse_sharing("group:32:random"), order="shuffle", order_seed=3)
        shuffled.setup(StrategyContext(supernet=net, space=small_space, optimizer=opt, seed=0))
        for _ in range(4):
            shuffled.step(x, y)
        groups = shuffled.groups
        for g, members in enumerate(groups):
            picks = trained[g::32]
            assert sorted(picks[:2]) == members and sorted(picks[2:]) == members
    finally:
        GroupStrategy.next_in_group = orig
    assert get_strategy("round_robin").with_sharing(parse_sharing("group:1")).name == "round_robin"
    assert get_strategy("shuffle").with_sharing(parse_sharing("group:2")).order == "shuffle"


def test_evaluation_uses_each_childs_copies_and_restores_statistics(small_space, small_digits):
    net, opt, bank = _supernet(small_space, small_digits, "group:2")
    strategy = GroupStrategy(parse_sharing("group:2"))
    strategy.setup(StrategyContext(supernet=net, space=small_space, optimizer=opt, seed=0))
    for x, y in _batches(small_digits, 2):
        strategy.step(x, y)
    archs = [small_space.from_index(i) for i in (0, 40)]
    saved = {k: {n: t.clone() for n, t in e["tensors"].items()} for k, e in bank.entries.items()}
    for mode in ("running", "batch", "recal"):
        cfg = EvalConfig(bn_mode=mode, batch_size=64, recal_batches=2, recal_batch_size=32)
        recal = recalibration_batches(small_digits.train, cfg) if mode == "recal" else None
        together = evaluate_archs(net, archs, small_digits.valid, cfg, recal=recal, bank=bank)
        alone = [evaluate_archs(net, [a], small_digits.valid, cfg, recal=recal, bank=bank)[0] for a in archs]
        assert together == alone
        for k, e in bank.entries.items():
            for n, t in e["tensors"].items():
                assert torch.equal(saved[k][n], t), (mode, k, n)
    # each child's score is its group's network's: copy group 1's weights into a plain supernet
    plain = small_space.build_supernet(num_classes=10, in_channels=1)
    plain.load_state_dict(bank.entries[1]["tensors"])
    cfg = EvalConfig(batch_size=64)
    assert evaluate_archs(plain, [archs[1]], small_digits.valid, cfg) == \
        evaluate_archs(net, [archs[1]], small_digits.valid, cfg, bank=bank)


# ------------------------------------------------------------------ checkpoint and resume
def _trainer(space, data, run_dir, sharing):
    cfg = SupernetConfig(train=TrainConfig(epochs=2, batch_size=64), eval=EvalConfig(batch_size=64),
                         dense_last=0)
    sh = parse_sharing(sharing)
    return SupernetTrainer(space, data, get_strategy("round_robin"), cfg, seed=3, run_dir=run_dir,
                           progress=False, archs=[space.from_index(i) for i in (0, 21, 63)], sharing=sh)


@pytest.mark.parametrize("sharing", ["group:4:random", "prefix:2"])
def test_private_weights_and_momentum_survive_resume(small_space, small_digits, tmp_path, sharing):
    full = _trainer(small_space, small_digits, tmp_path / "a", sharing)
    full.train()

    class Stop(Exception):
        pass

    part = _trainer(small_space, small_digits, tmp_path / "b", sharing)

    def stop(step, _):
        if step == part.steps_per_epoch + 1:
            raise Stop

    with pytest.raises(Stop):
        part.train(on_step=stop)
    assert (tmp_path / "b" / CHECKPOINT).exists()
    resumed = _trainer(small_space, small_digits, tmp_path / "b", sharing)
    assert resumed.try_resume() and resumed.epoch == 1
    assert resumed.config()["sharing"]["kind"] == sharing.split(":")[0]
    resumed.train()
    for key, entry in full.bank.entries.items():
        other = resumed.bank.entries[key]
        for n, t in entry["tensors"].items():
            assert torch.equal(t, other["tensors"][n]), (key, n)
        for n, s in entry["momentum"].items():
            if s:
                assert torch.equal(s["momentum_buffer"], other["momentum"][n]["momentum_buffer"]), (key, n)
    for (k, a), (_, b) in zip(full.supernet.state_dict().items(), resumed.supernet.state_dict().items()):
        assert torch.equal(a, b), k
    # a checkpoint of another sharing setting is refused
    with pytest.raises(WsnasError, match="other settings"):
        _trainer(small_space, small_digits, tmp_path / "b", "group:2").try_resume()


def test_supernet_command_with_sharing(tmp_path, capsys):
    from wsnas.cli import main
    from wsnas.store import Store

    base = ["supernet", "--space-option", "channels=4", "--space-option", "stem_channels=8", "--epochs", "1",
            "--batch-size", "256", "--store", str(tmp_path / "r.db"), "--no-progress", "--threads", "1"]
    assert main([*base, "--strategy", "shuffle", "--sharing", "prefix:3", "--run-dir", str(tmp_path / "p")]) == 0
    assert "run supernet/shuffle/0/prefix:3" in capsys.readouterr().out
    with Store(tmp_path / "r.db") as store:
        config = store.get_run("supernet/shuffle/0/prefix:3")["config"]
        assert config["sharing"]["kind"] == "prefix" and config["sharing"]["prefix"] == 3
        assert len(store.checkpoints("supernet/shuffle/0/prefix:3")) == 1
    assert main([*base, "--sharing", "group:3:file=" + str(tmp_path / "none.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and "\n" not in err
