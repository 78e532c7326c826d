"""Shared fixtures: small data and small networks so every test takes seconds."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from wsnas.data import Split, load_dataset
from wsnas.spaces import get_space


def shrink(data, train: int = 192, valid: int = 64, test: int = 64):
    """The first images of each split (the splits are already shuffled and stratified)."""
    def cut(split: Split, n: int) -> Split:
        return Split(split.x[:n].clone(), split.y[:n].clone())

    return dataclasses.replace(data, train=cut(data.train, train), valid=cut(data.valid, valid),
                               test=cut(data.test, test))


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def small_digits(digits):
    return shrink(digits)


@pytest.fixture
def small_space():
    """tiny64 with narrow networks: same choices, same structure, a fraction of the compute."""
    return get_space("tiny64", channels=4, stem_channels=8)


# One thread: the tests' networks are tiny, and some tests run subprocesses beside pytest;
# oversubscribing two cores with OpenMP threads slows everything down many times over.
torch.set_num_threads(1)


def randomise_bn(net) -> None:
    """Give every BN layer non-trivial statistics (and affine values) so outputs depend on them."""
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
