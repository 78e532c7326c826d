"""Every new dataset trains a tiny64 and an nb201 supernet: the spaces take the dataset's classes,
channels and image size (16 x 16 ImageNet16 with 120 classes, odd sizes, one channel)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import write_cifar100, write_imagenet16

from wsnas.data import iterate_batches, load_dataset
from wsnas.spaces import get_space
from wsnas.strategies import StrategyContext, get_strategy

SPACES = {"tiny64": {"channels": 4, "stem_channels": 8}, "nb201": {"channels": 4, "cells_per_stage": 1}}


def _dataset(kind: str, root):
    if kind == "cifar100":
        write_cifar100(root / "cifar-100-python")
        return load_dataset("cifar100", data_dir=root)
    if kind == "ImageNet16-120":
        write_imagenet16(root / "ImageNet16")
        return load_dataset("ImageNet16-120", data_dir=root)
    if kind == "npz":  # one channel, 7 x 7, channels last
        rng = np.random.default_rng(0)
        np.savez(root / "grey.npz", x_train=rng.integers(0, 256, (30, 7, 7, 1), dtype=np.uint8),
                 y_train=np.arange(30) % 5, x_test=rng.integers(0, 256, (10, 7, 7, 1), dtype=np.uint8),
                 y_test=np.arange(10) % 5)
        return load_dataset(f"npz:{root / 'grey.npz'}", augment="crop_flip_pad2")
    image = pytest.importorskip("PIL.Image")
    for c in range(3):  # folder: RGB resized to 9 x 9
        (root / "pics" / f"class{c}").mkdir(parents=True)
        for i in range(4):
            image.new("RGB", (12, 10), (80 * c, 20 * i, 0)).save(root / "pics" / f"class{c}" / f"{i}.png")
    return load_dataset(f"folder:{root / 'pics'}", size=9, augment="crop_flip")


@pytest.mark.parametrize("space_name", sorted(SPACES))
@pytest.mark.parametrize("kind", ["cifar100", "ImageNet16-120", "npz", "folder"])
def test_a_supernet_step_on_the_dataset(tmp_path, kind, space_name):
    data = _dataset(kind, tmp_path)
    space = get_space(space_name, **SPACES[space_name])
    net = space.build_supernet(num_classes=data.num_classes, in_channels=data.in_channels)
    strategy = get_strategy("uniform")
    strategy.setup(StrategyContext(supernet=net, space=space, optimizer=torch.optim.SGD(net.parameters(), lr=0.05),
                                   seed=0))
    x, y = next(iter(iterate_batches(data.train, 8, shuffle=True, generator=torch.Generator().manual_seed(0),
                                     augment=data.augment)))
    assert x.shape == (8, data.in_channels, data.image_size, data.image_size)
    result = strategy.step(x, y)
    assert torch.isfinite(result.loss) and result.count == 8
    with torch.no_grad():
        logits = net.eval()(data.valid.x[:4], strategy.next_arch())
    assert logits.shape == (min(4, len(data.valid)), data.num_classes)
