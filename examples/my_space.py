"""A search space defined outside wsnas: a chain of layers, each a 3x3 conv, a 5x5 conv or a skip.

Use it from any command, its options as ``--space-option`` (docs/spaces.md explains the contract):

    wsnas supernet --space examples.my_space:make_space --space-option width=8 --epochs 2
    wsnas spaces --space examples.my_space:make_space --arch conv3,skip,conv5

or let ``pip install`` of your package name it, in its pyproject.toml:

    [project.entry-points."wsnas.spaces"]
    chain = "examples.my_space:make_space"
"""

from torch import nn

from wsnas.nn.choice import ChoiceBlock
from wsnas.spaces import Choice, Space, resolve_path

OPS = ("conv3", "conv5", "skip")


def make_op(name: str, c: int) -> nn.Module:
    if name == "skip":
        return nn.Identity()
    k = int(name[-1])
    return nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c), nn.ReLU())


class ChainNet(nn.Module):
    """The supernet (``arch=None``: every op of every layer) or one architecture's network."""

    def __init__(self, space, num_classes, in_channels, arch=None):
        super().__init__()
        c = space.width
        self.space, self.arch = space, arch
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.layers = nn.ModuleList(  # a supernet's block holds every op, a network's only its own
            ChoiceBlock(OPS, lambda op: make_op(op, c), only=None if arch is None else arch.ops[i])
            for i in range(space.depth))
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x, path=None):  # path: an Arch, or one spec per choice (an op index or op weights)
        x = self.stem(x)
        for layer, spec in zip(self.layers, resolve_path(self.space, self.arch, path, "chain")):
            x = layer(x, spec)
        return self.classifier(x.mean((2, 3)))


class ChainSpace(Space):
    name = "chain"

    def __init__(self, width: int = 8, depth: int = 3):
        self.width, self.depth = int(width), int(depth)
        self.choices = tuple(Choice(f"layer{i}", OPS) for i in range(self.depth))

    def describe(self) -> dict:
        return {**super().describe(), "width": self.width, "depth": self.depth}

    def build_network(self, arch, *, num_classes, in_channels=3):
        return ChainNet(self, num_classes, in_channels, self.validate(arch))

    def build_supernet(self, *, num_classes, in_channels=3):
        return ChainNet(self, num_classes, in_channels)


def make_space(**options) -> ChainSpace:
    return ChainSpace(**options)
