"""The DARTS evaluation recipe: cutout, auxiliary loss and the drop-path schedule."""

import dataclasses
import math

import pytest
import torch

from wsnas.cli import main
from wsnas.core.errors import Diverged, WsnasError
from wsnas.data import Split, cutout
from wsnas.spaces import get_space
from wsnas.spaces.darts import DARTS_V2
from wsnas.training.standalone import RECIPES, default_config, train_from_scratch


def test_cutout_zeroes_one_clipped_square_per_image():
    x = torch.ones(64, 3, 10, 10)
    out = cutout(x, 4, torch.Generator().manual_seed(0))
    zeros = (out == 0).all(dim=1).sum(dim=(1, 2))  # zeroed pixels per image, all channels alike
    assert zeros.max() == 16 and zeros.min() >= 4  # a full 4x4 square, or clipped at a corner
    assert ((out == 0) | (out == 1)).all()
    assert torch.equal(cutout(x, 4, torch.Generator().manual_seed(0)), out)
    assert torch.equal(cutout(x, 0, None), x)


def test_darts_eval_recipe_is_the_published_one():
    r = RECIPES["darts-eval"]
    assert (r.epochs, r.batch_size, r.lr, r.weight_decay, r.grad_clip) == (600, 96, 0.025, 3e-4, 5.0)
    assert (r.cutout, r.auxiliary_weight, r.drop_path_prob) == (16, 0.4, 0.2)
    with pytest.raises(WsnasError, match="unknown recipe 'nope'; accepted: darts-eval"):
        default_config("cifar10", "nope")


def test_darts_network_trains_with_auxiliary_head_and_drop_path(digits):
    space = get_space("darts", channels=4, layers=5)
    net = space.build_network(space.parse(DARTS_V2_TEXT()), num_classes=10, in_channels=3)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (24,), generator=g)
    data = dataclasses.replace(digits, train=Split(x[:16], y[:16]), valid=Split(x[16:20], y[16:20]),
                               test=Split(x[20:], y[20:]), in_channels=3, image_size=32, augment="crop_flip")
    seen = []
    cfg = RECIPES["darts-eval"].with_overrides(epochs=2, batch_size=8, cutout=8)
    forward = net.forward

    def spy(inp):
        seen.append((net.training, net.drop_path_prob))
        return forward(inp)

    net.forward = spy
    result = train_from_scratch(net, data, cfg, seed=0)
    assert 0 <= result["test_acc"] <= 1 and result["train_loss"] > 0
    train_calls = [p for training, p in seen if training]
    assert train_calls[:2] == [0.0, 0.0] and train_calls[-1] == pytest.approx(0.1)


def test_a_loss_that_becomes_nan_stops_the_training_at_its_epoch(small_space, small_digits):
    net = small_space.build_network(small_space.parse("111"), num_classes=10, in_channels=1)
    evaluated = []
    net.register_forward_pre_hook(lambda module, inputs: evaluated.append(module.training))
    cfg = default_config("digits").with_overrides(epochs=3, batch_size=64, lr=1e30)
    with pytest.raises(Diverged) as info:
        train_from_scratch(net, small_digits, cfg, seed=0)
    assert info.value.epoch == 1 and not math.isfinite(info.value.loss)
    assert str(info.value).startswith("training diverged at epoch 1 (loss ")
    assert len(evaluated) == 3 and all(evaluated)  # one epoch of 3 batches, then no evaluation


def DARTS_V2_TEXT():
    from wsnas.spaces.darts import format_genotype

    return format_genotype(DARTS_V2)


def test_groundtruth_runs_a_darts_genotype_with_the_recipe(tmp_path, capsys):
    code = main(["groundtruth", "--space", "darts", "--archs", DARTS_V2_TEXT(), "--recipe", "darts-eval",
                 "--epochs", "1", "--batch-size", "128", "--cutout", "4", "--space-option", "channels=4",
                 "--space-option", "layers=5", "--space-option", "auxiliary=false", "--auxiliary-weight", "0",
                 "--store", str(tmp_path / "g.db"), "--no-progress", "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    assert "1 trained" in capsys.readouterr().out
