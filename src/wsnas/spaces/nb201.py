"""The NAS-Bench-201 (NATS-Bench topology) cell space.

A cell has four nodes; node ``j`` is the sum over ``i < j`` of ``op_{j<-i}(node i)``, which
gives six edges, in this order: ``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``. Each edge picks one of

====  ================  =============================================================
 0    ``none``          zeros
 1    ``skip_connect``  identity
 2    ``nor_conv_1x1``  ReLU-Conv1x1-BN
 3    ``nor_conv_3x3``  ReLU-Conv3x3-BN
 4    ``avg_pool_3x3``  AvgPool2d(3, stride 1, padding 1, count_include_pad=False)
====  ================  =============================================================

so the space has 5**6 = 15,625 cells. The canonical string is the official one,
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (node 1; node 2; node 3, ``~i`` naming the input).

The integer index is the official benchmark index: all cells listed by
``itertools.product(ops, repeat=6)`` over the edges in the order above, then shuffled with
``random.Random(88).shuffle``; the permutation is computed once, on first use.

Network (identical to the benchmark's): stem Conv3x3(in->C, no bias)-BN; three stages of N
cells with C, 2C and 4C channels, separated by a ResNet basic block of stride 2
(ReLU-Conv3x3/2-BN, ReLU-Conv3x3-BN, plus a shortcut AvgPool2d(2, 2)-Conv1x1); then BN-ReLU,
global average pooling and a linear classifier. The shortcut's pooling rounds up
(``ceil_mode``), which changes nothing for the benchmark's even sizes (32, 16, 8) and lets an odd
size (an image folder's ``size=30``) halve as the strided convolution does. Options (:class:`NB201Config`): ``channels``
(C, 16), ``cells_per_stage`` (N, 5), ``affine`` and ``track_running_stats`` of the batch norms
inside the cells (True/True: the benchmark's standalone networks; the weight-sharing papers'
supernets use ``affine=False, track_running_stats=False``), ``bn_momentum`` (0.1, PyTorch
convention, every batch norm). The stem, the basic blocks and the last BN are always affine
with running statistics, as in the official code.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache

import torch
from torch import nn

from wsnas.core.errors import WsnasError
from wsnas.nn.choice import ChoiceBlock, Spec
from wsnas.nn.ops import AvgPool3x3, BNConfig, Identity, ReLUConvBN, Zero
from wsnas.spaces.base import Arch, Choice, Space, resolve_path

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), in choice order
EDGE_NAMES = tuple(f"{j}<-{i}" for j, i in EDGES)
OFFICIAL_SEED = 88


@lru_cache(maxsize=1)
def official_order() -> tuple[tuple[int, ...], ...]:
    """Option indices (one per edge) of every cell, in official benchmark index order."""
    cells = list(itertools.product(range(len(OPS)), repeat=len(EDGES)))
    random.Random(OFFICIAL_SEED).shuffle(cells)
    return tuple(cells)


@lru_cache(maxsize=1)
def _official_index() -> dict[tuple[int, ...], int]:
    return {cell: i for i, cell in enumerate(official_order())}


@dataclass(frozen=True)
class NB201Config:
    """Settings of the NB201 networks (defaults: the benchmark's standalone networks)."""

    channels: int = 16              # C of the first stage (2C, 4C after)
    cells_per_stage: int = 5        # N
    affine: bool = True             # cell BNs; the papers' supernets use False
    track_running_stats: bool = True  # cell BNs; the papers' supernets use False
    bn_momentum: float = 0.1        # PyTorch convention

    def __post_init__(self) -> None:
        for name in ("channels", "cells_per_stage"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WsnasError(f"{name} must be a positive integer, got {value!r}")
        for name in ("affine", "track_running_stats"):
            value = getattr(self, name)
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                object.__setattr__(self, name, value.lower() in ("true", "1"))
            elif value in (0, 1):
                object.__setattr__(self, name, bool(value))
            else:
                raise WsnasError(f"{name} must be true or false, got {value!r}")
        if isinstance(self.bn_momentum, bool) or not isinstance(self.bn_momentum, (int, float)) \
                or not 0.0 < self.bn_momentum <= 1.0:
            raise WsnasError(f"bn_momentum {self.bn_momentum!r} out of range; accepted: (0, 1]")


def make_nb201_op(name: str, channels: int, bn: BNConfig) -> nn.Module:
    """One NB201 candidate op at stride 1 keeping ``channels``."""
    if name == "none":
        return Zero(channels, channels, 1)
    if name == "skip_connect":
        return Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0, bn)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1, bn)
    if name == "avg_pool_3x3":
        return AvgPool3x3(1)
    raise WsnasError(f"unknown op {name!r}; accepted: {', '.join(OPS)}")


class NB201Space(Space):
    """The 15,625-cell NB201 space; ``NB201Space(affine=False, track_running_stats=False)`` etc."""

    name = "nb201"
    depth_options = ("cells_per_stage",)

    def __init__(self, **config) -> None:
        self.config = NB201Config(**config)
        self.ops = OPS
        self.choices = tuple(Choice(e, OPS) for e in EDGE_NAMES)

    def describe(self) -> dict:
        return {"space": self.name, **asdict(self.config)}

    # ------------------------------------------------------------------ official order
    def index(self, arch: Arch) -> int:
        return _official_index()[self.option_indices(arch)]

    def from_index(self, index: int) -> Arch:
        return self.from_option_indices(official_order()[self.check_index(index)])

    def enumerate(self):
        for cell in official_order():
            yield self.from_option_indices(cell)

    # ------------------------------------------------------------------ names
    def format(self, arch: Arch) -> str:
        ops = self.validate(arch).ops
        nodes = []
        for j in (1, 2, 3):
            nodes.append("|" + "|".join(f"{ops[e]}~{i}" for e, (t, i) in enumerate(EDGES) if t == j) + "|")
        return "+".join(nodes)

    def parse(self, text: str) -> Arch:
        """Parse the official string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
        raw = str(text).strip()
        example = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
        nodes = raw.split("+")
        if len(nodes) != 3:
            raise WsnasError(
                f"nb201 architecture {raw!r} has {len(nodes)} nodes separated by '+'; expected 3, "
                f"e.g. {example}"
            )
        ops: list[str] = []
        for j, node in enumerate(nodes, start=1):
            node = node.strip()
            if len(node) < 2 or not (node.startswith("|") and node.endswith("|")):
                raise WsnasError(
                    f"nb201 architecture {raw!r}: node {j} {node!r} must look like |op~0|...|, "
                    f"e.g. {example}"
                )
            edges = node[1:-1].split("|")
            if len(edges) != j:
                raise WsnasError(
                    f"nb201 architecture {raw!r}: node {j} {node!r} has {len(edges)} edges; expected {j} "
                    f"(inputs {', '.join(f'~{i}' for i in range(j))})"
                )
            for i, part in enumerate(edges):
                op, sep, src = part.strip().partition("~")
                src = src.strip()
                if not sep or not (src.isascii() and src.isdigit()):
                    raise WsnasError(
                        f"nb201 architecture {raw!r}: edge {part!r} of node {j} must look like op~{i}"
                    )
                if src.lstrip("0") != (str(i) if i else ""):  # compared as text: src may have any length
                    raise WsnasError(
                        f"nb201 architecture {raw!r}: edge {part!r} of node {j} has input {src}; "
                        f"expected ~{i} (node {j} lists inputs 0..{j - 1} in order)"
                    )
                op = op.strip()
                if op not in OPS:
                    raise WsnasError(
                        f"nb201 architecture {raw!r}: unknown op {op!r} on edge {j}<-{i}; accepted: "
                        + ", ".join(OPS)
                    )
                ops.append(op)
        # the string lists node by node, which is already the edge order
        return self.validate(Arch(self.name, tuple(ops)))

    # ------------------------------------------------------------------ networks
    def build_network(self, arch: Arch, *, num_classes: int, in_channels: int = 3) -> NB201Network:
        return NB201Network(self, num_classes=num_classes, in_channels=in_channels,
                            arch=self.validate(arch))

    def build_supernet(self, *, num_classes: int, in_channels: int = 3, partial_channels: int = 1) -> NB201Network:
        """The supernet; ``partial_channels=K`` builds PC-DARTS's mixed ops (1/K of the channels)."""
        _check_partial(self.config.channels, partial_channels)
        return NB201Network(self, num_classes=num_classes, in_channels=in_channels, arch=None,
                            partial=partial_channels)


def _check_partial(channels: int, k: int) -> None:
    if k < 1 or channels % k:
        raise WsnasError(f"partial channels K={k} must divide the {channels} channels of the first stage")


class NB201Cell(nn.Module):
    """One cell: six choice points; node j sums its incoming edges."""

    def __init__(self, channels: int, bn: BNConfig, fixed: Arch | None, partial: int = 1):
        super().__init__()
        self.edges = nn.ModuleList(
            ChoiceBlock(OPS, lambda name: make_nb201_op(name, channels // partial, bn),
                        only=None if fixed is None else fixed.ops[e], partial=partial)
            for e in range(len(EDGES))
        )

    def forward(self, x: torch.Tensor, path: Sequence[Spec]) -> torch.Tensor:
        nodes = [x]
        e = 0
        for j in (1, 2, 3):
            out = None
            for i in range(j):
                y = self.edges[e](nodes[i], path[e])
                out = y if out is None else out + y
                e += 1
            nodes.append(out)
        return nodes[3]


class NB201ResBlock(nn.Module):
    """The official reduction block: ReLU-Conv3x3/2-BN, ReLU-Conv3x3-BN, + AvgPool-Conv1x1."""

    def __init__(self, c_in: int, c_out: int, bn: BNConfig):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, bn)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, bn)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),  # odd sizes: as the strided conv
            nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor, path=None) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """An NB201 network: the supernet (``arch=None``) or the standalone network of one cell.

    ``forward(x, path)``: ``path`` holds one spec per edge (see :class:`ChoiceBlock`), used by
    every cell; a standalone network needs none. ``forward(x, arch)`` with an :class:`Arch`
    runs that cell's single path.
    """

    #: ``forward`` takes :class:`~wsnas.nn.stacked.Stacked` specs (batched evaluation)
    supports_stacking = True

    def __init__(self, space: NB201Space, *, num_classes: int, in_channels: int, arch: Arch | None,
                 partial: int = 1):
        super().__init__()
        cfg = space.config
        self.space = space
        self.arch = arch
        fixed = BNConfig(affine=True, momentum=cfg.bn_momentum, track_running_stats=True)
        cell_bn = BNConfig(affine=cfg.affine, momentum=cfg.bn_momentum,
                           track_running_stats=cfg.track_running_stats)
        c = cfg.channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), fixed.make(c))
        cells: list[nn.Module] = []
        c_prev = c
        for stage, c_cur in enumerate((c, 2 * c, 4 * c)):
            if stage > 0:
                cells.append(NB201ResBlock(c_prev, c_cur, fixed))
            for _ in range(cfg.cells_per_stage):
                cells.append(NB201Cell(c_cur, cell_bn, arch, partial))
            c_prev = c_cur
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(fixed.make(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """The part of the network every child shares exactly (it has no choice point)."""
        return self.stem(x)

    def forward(self, x: torch.Tensor, path: Sequence[Spec] | Arch | None = None, *,
                stem: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of ``x`` along ``path``; ``stem`` is ``forward_stem(x)`` when already computed."""
        path = resolve_path(self.space, self.arch, path, "nb201")
        x = self.stem(x) if stem is None else stem
        for cell in self.cells:
            x = cell(x, path)
        x = self.lastact(x)
        return self.classifier(self.global_pooling(x).flatten(1))
