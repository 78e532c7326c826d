import pytest
import torch
import torch.nn.functional as F

from wsnas.core.errors import WsnasError
from wsnas.evaluator import EvalConfig, evaluate_archs, recalibration_batches


def _trained_supernet(space, data):
    torch.manual_seed(0)
    net = space.build_supernet(num_classes=10, in_channels=1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    archs = list(space.enumerate())
    for i in range(20):
        x, y = data.train.x[i * 8:(i + 1) * 8 + 32], data.train.y[i * 8:(i + 1) * 8 + 32]
        loss = F.cross_entropy(net(x, archs[i % 64]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def _buffers(net):
    return {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}


def _acc(logits, y):
    return (logits.argmax(1) == y).float().mean().item()


def test_running_mode_uses_running_statistics(small_space, small_digits):
    net = _trained_supernet(small_space, small_digits)
    arch = small_space.parse("234")
    before = _buffers(net)
    (acc, loss), = evaluate_archs(net, [arch], small_digits.valid, EvalConfig("running", batch_size=1000))
    net.eval()
    with torch.no_grad():
        logits = net(small_digits.valid.x, arch)
    assert acc == pytest.approx(_acc(logits, small_digits.valid.y))
    assert loss == pytest.approx(F.cross_entropy(logits, small_digits.valid.y).item(), rel=1e-6)
    assert all(torch.equal(before[k], v) for k, v in _buffers(net).items())


def test_batch_mode_uses_batch_statistics_and_restores_buffers(small_space, small_digits):
    net = _trained_supernet(small_space, small_digits)
    arch = small_space.parse("412")
    before = _buffers(net)
    net.train()
    (acc, _), = evaluate_archs(net, [arch], small_digits.valid, EvalConfig("batch", batch_size=1000))
    assert net.training  # mode restored
    assert all(torch.equal(before[k], v) for k, v in _buffers(net).items())
    with torch.no_grad():
        logits = net(small_digits.valid.x, arch)  # train mode: batch statistics
    assert acc == pytest.approx(_acc(logits, small_digits.valid.y))


def test_recal_mode_reestimates_statistics_per_child(small_space, small_digits):
    net = _trained_supernet(small_space, small_digits)
    cfg = EvalConfig("recal", recal_batches=3, recal_batch_size=32, batch_size=1000)
    recal = recalibration_batches(small_digits.train, cfg, seed=0)
    assert len(recal) == 3
    archs = [small_space.parse("111"), small_space.parse("444")]
    before = _buffers(net)
    got = evaluate_archs(net, archs, small_digits.valid, cfg, recal=recal)
    assert all(torch.equal(before[k], v) for k, v in _buffers(net).items())
    for arch, (acc, _) in zip(archs, got):
        ref = _trained_supernet(small_space, small_digits)
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        ref.train()
        with torch.no_grad():
            for x in recal:
                ref(x, arch)
            ref.eval()
            logits = ref(small_digits.valid.x, arch)
        assert acc == pytest.approx(_acc(logits, small_digits.valid.y))
    with pytest.raises(WsnasError, match="unknown BN mode 'train'; accepted: running, batch, recal"):
        EvalConfig("train")


@pytest.mark.parametrize("name, options", [
    ("tiny64", {"channels": 4, "stem_channels": 8}),
    ("nb201", {"channels": 4, "cells_per_stage": 1}),
    ("nb201", {"channels": 4, "cells_per_stage": 1, "affine": False, "track_running_stats": False}),
])
def test_recal_of_many_children_computes_the_stem_once_with_the_numbers_of_each_alone(small_digits, name,
                                                                                       options, monkeypatch):
    from wsnas.spaces import get_space

    space = get_space(name, **options)
    torch.manual_seed(0)
    net = space.build_supernet(num_classes=10, in_channels=1)
    archs = [space.from_index(i) for i in (0, 7, 31, 63)]
    cfg = EvalConfig("recal", recal_batches=3, recal_batch_size=32, batch_size=50)
    recal = recalibration_batches(small_digits.train, cfg, seed=0)
    alone = [evaluate_archs(net, [a], small_digits.valid, cfg, recal=recal)[0] for a in archs]
    stems = []
    real_stem = net.forward_stem
    monkeypatch.setattr(net, "forward_stem", lambda x: stems.append(len(x)) or real_stem(x))
    tensors = {k: v.data_ptr() for k, v in net.state_dict().items()}
    before = _buffers(net)
    net.train()
    together = evaluate_archs(net, archs, small_digits.valid, cfg, recal=recal)
    assert together == alone  # bit for bit: the same operations on the same inputs
    # one stem pass per recalibration and scoring batch for all four children
    assert len(stems) == len(recal) + -(-len(small_digits.valid) // cfg.batch_size)
    assert net.training and all(torch.equal(before[k], v) for k, v in _buffers(net).items())
    assert {k: v.data_ptr() for k, v in net.state_dict().items()} == tensors  # the supernet's own buffers
    # a long list goes a chunk of children at a time (each child's statistics are held meanwhile)
    import wsnas.evaluator as evaluator

    monkeypatch.setattr(evaluator, "_SHARED_STEM_CHUNK", 3)
    stems.clear()
    assert evaluate_archs(net, archs, small_digits.valid, cfg, recal=recal) == alone
    assert len(stems) == 2 * (len(recal) + -(-len(small_digits.valid) // cfg.batch_size))


@pytest.mark.parametrize("bn_mode", ["running", "batch"])
@pytest.mark.parametrize("combine", ["concat", "sum"])
def test_tiny64_children_share_their_first_cell_with_the_scores_of_each_alone(small_digits, bn_mode, combine):
    """Scoring all 64 children together computes the first cell's preprocessing once, each of its
    edges 0->1 and 0->2 once per option and 1->2 once per pair: 1 + 4 + 4 + 16 calls instead of
    64 each, and every later cell once per child; the scores are bit for bit each child's alone."""
    from wsnas.spaces import get_space

    space = get_space("tiny64", channels=4, stem_channels=8, combine=combine)
    net = _trained_supernet(space, small_digits)
    archs = list(space.enumerate())
    cfg = EvalConfig(bn_mode, batch_size=200)
    alone = [evaluate_archs(net, [a], small_digits.valid, cfg)[0] for a in archs]
    calls = {}
    first, second = net.cells[0], net.cells[1]
    modules = {"preprocess": first.preprocess, "0->1": first.edges[0], "0->2": first.edges[1],
               "1->2": first.edges[2], "cell 2 preprocess": second.preprocess}
    for name, module in modules.items():
        module.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls.get(name, 0) + 1))
    together = evaluate_archs(net, archs, small_digits.valid, cfg)
    assert together == alone
    batches = -(-len(small_digits.valid) // cfg.batch_size)
    assert calls == {"preprocess": batches, "0->1": 4 * batches, "0->2": 4 * batches, "1->2": 16 * batches,
                     "cell 2 preprocess": 64 * batches}
