"""The search space ``demo``: ``depth`` convolution layers (2 by default), each with a 1x1, 3x3 or
5x5 kernel, then average or max pooling over the image, then a linear classifier: 3 x 3 x 2 = 18
children. Its choices do not all offer the same options (the pooling's are its own), which every
wsnas strategy handles. The contract a space fulfils is wsnas's docs/spaces.md."""

from __future__ import annotations

from torch import nn

from wsnas.core.errors import WsnasError
from wsnas.nn.choice import ChoiceBlock
from wsnas.spaces import Choice, Space, resolve_path

KERNELS = ("conv1", "conv3", "conv5")
POOLS = ("avg", "max")


def make_op(name: str, c: int) -> nn.Module:
    if name in POOLS:
        return nn.AdaptiveAvgPool2d(1) if name == "avg" else nn.AdaptiveMaxPool2d(1)
    k = int(name[-1])
    return nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c), nn.ReLU())


class DemoNet(nn.Module):
    """The supernet (``arch=None``: every option of every choice) or one architecture's network."""

    def __init__(self, space: DemoSpace, num_classes: int, in_channels: int, arch=None):
        super().__init__()
        c = space.width
        self.space, self.arch = space, arch
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.blocks = nn.ModuleList(
            ChoiceBlock(choice.options, lambda op: make_op(op, c), only=None if arch is None else arch.ops[i])
            for i, choice in enumerate(space.choices))
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x, path=None):  # path: an Arch, or one spec per choice
        x = self.stem(x)
        for block, spec in zip(self.blocks, resolve_path(self.space, self.arch, path, "demo")):
            x = block(x, spec)
        return self.classifier(x.flatten(1))


class DemoSpace(Space):
    name = "demo"

    def __init__(self, width: int = 8, depth: int = 2):
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise WsnasError(f"demo space: width must be a positive integer, got {width!r}")
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 6:
            raise WsnasError(f"demo space: depth must be an integer from 1 to 6, got {depth!r}")
        self.width, self.depth = width, depth
        self.choices = (*(Choice(f"layer{i}", KERNELS) for i in range(depth)), Choice("pool", POOLS))

    def describe(self) -> dict:
        return {**super().describe(), "width": self.width, "depth": self.depth}

    def build_network(self, arch, *, num_classes, in_channels=3):
        return DemoNet(self, num_classes, in_channels, self.validate(arch))

    def build_supernet(self, *, num_classes, in_channels=3):
        return DemoNet(self, num_classes, in_channels)


def make_space(**options) -> DemoSpace:
    """The factory the entry point names: ``--space-option`` values become ``options``."""
    return DemoSpace(**options)
