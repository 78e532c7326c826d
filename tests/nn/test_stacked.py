"""Stacked evaluation (many children per forward pass) gives the scores of one-at-a-time evaluation."""

import pytest
import torch
from torch import nn

from wsnas.data.registry import load_dataset
from wsnas.evaluator import EvalConfig, evaluate_archs, preserved_bn_state
from wsnas.nn.stacked import Stacked, grouped_batchnorm, stacked_path
from wsnas.spaces import get_space
from wsnas.supernet.sharing import make_bank, parse_sharing

SPACES = {
    "tiny64": {"channels": 4, "stem_channels": 8},
    # the papers' NB201 supernet: cell BNs without affine and running statistics (batch statistics always)
    "nb201": {"channels": 4, "cells_per_stage": 1, "affine": False, "track_running_stats": False},
    "nb201-affine": {"channels": 4, "cells_per_stage": 1},
}


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits")


def _trained(name, data):
    """A supernet whose running statistics and weights have moved away from their initial values."""
    torch.manual_seed(0)
    space = get_space(name.split("-")[0], **SPACES[name])
    net = space.build_supernet(num_classes=data.num_classes, in_channels=data.in_channels)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    archs = list(space.enumerate())
    net.train()
    for step in range(6):
        x, y = data.train.x[64 * step: 64 * (step + 1)], data.train.y[64 * step: 64 * (step + 1)]
        opt.zero_grad()
        nn.functional.cross_entropy(net(x, archs[(37 * step) % len(archs)]), y).backward()
        opt.step()
    return space, net


@pytest.mark.parametrize("name", sorted(SPACES))
@pytest.mark.parametrize("bn_mode", ["running", "batch", "recal"])
def test_stacked_scores_equal_one_at_a_time(data, name, bn_mode):
    space, net = _trained(name, data)
    archs = list(space.enumerate())[::97][:13] if len(space) > 64 else list(space.enumerate())[:13]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    # recal: 3 batches of 100, the last of 50 rows (another size, as the evaluation's last batch)
    recal = [data.train.x[:100], data.train.x[100:200], data.train.x[200:250]] if bn_mode == "recal" else None
    plain = evaluate_archs(net, archs, data.valid, EvalConfig(bn_mode=bn_mode, batch_size=200), recal=recal)
    # 5 per pass: chunks of 5, 5 and 3; batch 200: a last data batch of another size
    fast = evaluate_archs(net, archs, data.valid, EvalConfig(bn_mode=bn_mode, batch_size=200, arch_batch=5),
                          recal=recal)
    assert [a for a, _ in fast] == [a for a, _ in plain]
    assert [loss for _, loss in fast] == pytest.approx([loss for _, loss in plain], rel=1e-5, abs=1e-6)
    for key, value in net.state_dict().items():  # evaluation leaves the supernet as it was
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("name", ["nb201", "tiny64"])
def test_stacked_scores_under_bf16_autocast(data, name):
    """--precision bf16: ops of one edge return bf16 (convolutions) or fp32 (skip, none, pooling);
    the stacked rows take the wider type, and the scores match one at a time in bf16's rounding."""
    from wsnas.core.runtime import prepare_model

    space, net = _trained(name, data)
    prepare_model(net, "bf16")
    archs = list(space.enumerate())[::97][:13] if len(space) > 64 else list(space.enumerate())[:13]
    plain = evaluate_archs(net, archs, data.valid, EvalConfig(batch_size=200))
    fast = evaluate_archs(net, archs, data.valid, EvalConfig(batch_size=200, arch_batch=5))
    assert [loss for _, loss in fast] == pytest.approx([loss for _, loss in plain], rel=2e-2)
    assert max(abs(a - b) for (a, _), (b, _) in zip(fast, plain)) <= 0.02


def test_a_weight_bank_falls_back_to_one_at_a_time(data):
    space, net = _trained("tiny64", data)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    bank = make_bank(net, opt, space, parse_sharing("group:4"))
    archs = list(space.enumerate())[:6]
    plain = evaluate_archs(net, archs, data.valid, EvalConfig(), bank=bank)
    assert evaluate_archs(net, archs, data.valid, EvalConfig(arch_batch=4), bank=bank) == plain


def test_grouped_batchnorm_normalises_every_block_on_its_own():
    bn = nn.BatchNorm2d(3, affine=True)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    bn.train()
    x = torch.randn(4 * 6, 3, 5, 5) * torch.arange(1, 25).view(-1, 1, 1, 1)
    expected = torch.cat([nn.functional.batch_norm(x[6 * k: 6 * (k + 1)], None, None, bn.weight, bn.bias,
                                                   training=True, eps=bn.eps) for k in range(4)])
    with preserved_bn_state(bn), grouped_batchnorm(bn, 6):
        out = bn(x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert "forward" not in bn.__dict__  # the class's forward is back


def test_stacked_path_names_every_architectures_option():
    space = get_space("tiny64")
    archs = [space.from_option_indices(ix) for ix in ([0, 1, 2], [3, 3, 0])]
    assert stacked_path(space, archs, 7) == [Stacked((0, 3), 7), Stacked((1, 3), 7), Stacked((2, 0), 7)]


def test_bad_arch_batch_is_refused():
    from wsnas.core.errors import WsnasError

    with pytest.raises(WsnasError, match="arch_batch must be at least 1, got 0"):
        EvalConfig(arch_batch=0)


@pytest.mark.parametrize("value", ["0", "many", "-3"])
def test_bad_eval_arch_batch_on_the_command_line(tmp_path, capsys, value):
    from wsnas.cli import main

    assert main(["supernet", "--run-dir", str(tmp_path), "--eval-arch-batch", value, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--eval-arch-batch must be a positive integer or auto, got {value!r}" in err and "\n" not in err


def test_auto_scores_one_at_a_time_on_a_cpu():
    import argparse

    from wsnas.commands.common import eval_config_from_args

    args = argparse.Namespace(bn_mode="running", recal_batches=10, eval_arch_batch="auto", device="cpu")
    assert eval_config_from_args(args).arch_batch == 1
    args.eval_arch_batch = "8"
    assert eval_config_from_args(args).arch_batch == 8
