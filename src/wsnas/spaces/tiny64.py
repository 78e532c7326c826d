"""The 64-child space of "Deeper Insights into Weight Sharing in NAS" (Zhang et al., 2020).

A cell has one input x0 (the previous cell's output through ReLU-Conv1x1-BN) and two
intermediate nodes: ``x1 = O01(x0)`` and ``x2 = O02(x0) + O12(x1)``. Each of the three edges
picks one of four ops, numbered 1..4:

====  ================  =============================================
 1    ``max_pool_3x3``  3x3 max pooling then BN (affine=False)
 2    ``sep_conv_3x3``  DARTS separable conv
 3    ``sep_conv_5x5``  DARTS separable conv
 4    ``dil_conv_5x5``  DARTS dilated conv (authors' code; ``dil="3x3"`` gives the paper text's
                        ``dil_conv_3x3``)
====  ================  =============================================

A child is named by three digits ``d01 d02 d12`` (``111`` .. ``444``) and has index
``16*(d01-1) + 4*(d02-1) + (d12-1)``, the order of the published ground-truth file. A name has
exactly three digits, each 1-4; an index (``0`` .. ``63``) is written without leading zeros, so
no string is both, and one like ``011`` is neither (an error, not index 11).

Network: stem Conv3x3(in->48)-BN-Conv3x3(48->48)-BN, then 4 identical cells with C=16 and no
reduction, each fed only by the previous cell, then global average pooling and a linear
classifier. The cell output concatenates x1 and x2 (2C channels; the authors' code) or sums
them (``combine="sum"``, the paper text). Every batch norm uses momentum 0.4 (PyTorch
convention), as in the authors' runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from wsnas.core.errors import WsnasError, shown
from wsnas.nn.choice import ChoiceBlock, Spec
from wsnas.nn.ops import BNConfig, make_op
from wsnas.spaces.base import Arch, Choice, Space, resolve_path

EDGES = ("0->1", "0->2", "1->2")


@dataclass(frozen=True)
class Tiny64Config:
    """Settings of the tiny64 networks (defaults: the authors' code)."""

    dil: str = "5x5"            # kernel of op 4: "5x5" (code) or "3x3" (paper text)
    combine: str = "concat"     # cell output: "concat" (code) or "sum" (paper text)
    bn_momentum: float = 0.4    # PyTorch convention
    channels: int = 16          # C of every cell
    stem_channels: int = 48
    cells: int = 4

    def __post_init__(self) -> None:
        if self.dil not in ("5x5", "3x3"):
            raise WsnasError(f"unknown dil {self.dil!r}; accepted: 5x5, 3x3")
        if self.combine not in ("concat", "sum"):
            raise WsnasError(f"unknown combine {self.combine!r}; accepted: concat, sum")
        if isinstance(self.bn_momentum, bool) or not isinstance(self.bn_momentum, (int, float)) \
                or not 0.0 < self.bn_momentum <= 1.0:
            raise WsnasError(f"bn_momentum {self.bn_momentum!r} out of range; accepted: (0, 1]")
        for name in ("channels", "stem_channels", "cells"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise WsnasError(f"{name} must be a positive integer, got {v!r}")


class Tiny64Space(Space):
    """The 64-child space; ``Tiny64Space(dil="3x3", combine="sum", bn_momentum=0.1)`` etc."""

    name = "tiny64"
    depth_options = ("cells",)

    def __init__(self, **config) -> None:
        self.config = Tiny64Config(**config)
        ops = ("max_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", f"dil_conv_{self.config.dil}")
        self.ops = ops
        self.choices = tuple(Choice(e, ops) for e in EDGES)

    def describe(self) -> dict:
        return {"space": self.name, **asdict(self.config)}

    # ------------------------------------------------------------------ names
    def format(self, arch: Arch) -> str:
        return "".join(str(k + 1) for k in self.option_indices(arch))

    def parse(self, text: str) -> Arch:
        """Parse ``"434"`` (three digits 1..4, per edge 0->1, 0->2, 1->2) or comma-separated op names."""
        raw = str(text).strip()
        if "," in raw:
            parts = [p.strip() for p in raw.split(",")]
            if len(parts) != 3:
                raise WsnasError(
                    f"tiny64 architecture {shown(raw)} has {len(parts)} ops; expected 3 "
                    f"(edges {', '.join(EDGES)})"
                )
            return self.validate(Arch(self.name, tuple(parts)))
        if len(raw) != 3:
            raise WsnasError(
                f"tiny64 architecture {shown(raw)} must be 3 digits 1-4 (one per edge "
                f"{', '.join(EDGES)}), e.g. '434'"
            )
        idx = []
        for edge, ch in zip(EDGES, raw):
            if ch not in "1234":
                raise WsnasError(
                    f"tiny64 architecture {shown(raw)}: bad op {ch!r} on edge {edge}; accepted: "
                    + ", ".join(f"{i + 1}={o}" for i, o in enumerate(self.ops))
                )
            idx.append(int(ch) - 1)
        return self.from_option_indices(idx)

    # ------------------------------------------------------------------ networks
    def build_network(self, arch: Arch, *, num_classes: int, in_channels: int = 3) -> Tiny64Network:
        return Tiny64Network(self, num_classes=num_classes, in_channels=in_channels,
                             arch=self.validate(arch))

    def build_supernet(self, *, num_classes: int, in_channels: int = 3, partial_channels: int = 1) -> Tiny64Network:
        """The supernet; ``partial_channels=K`` builds PC-DARTS's mixed ops (1/K of the channels)."""
        _check_partial(self.config.channels, partial_channels)
        return Tiny64Network(self, num_classes=num_classes, in_channels=in_channels, arch=None,
                             partial=partial_channels)


def _check_partial(channels: int, k: int) -> None:
    if k < 1 or channels % k:
        raise WsnasError(f"partial channels K={k} must divide the {channels} channels of an edge")


class Tiny64Cell(nn.Module):
    def __init__(self, space: Tiny64Space, c_in: int, bn: BNConfig, fixed: Arch | None, partial: int = 1):
        super().__init__()
        cfg = space.config
        c = cfg.channels
        self.combine = cfg.combine
        self.preprocess = nn.Sequential(
            nn.ReLU(inplace=False), nn.Conv2d(c_in, c, 1, bias=False), bn.make(c, affine=False)
        )
        self.edges = nn.ModuleList(
            ChoiceBlock(space.ops, lambda name: make_op(name, c // partial, 1, bn),
                        only=None if fixed is None else fixed.ops[e], partial=partial)
            for e in range(3)
        )

    def forward(self, x: torch.Tensor, path: Sequence[Spec], memo: dict | None = None) -> torch.Tensor:
        """The cell on ``x``; ``memo`` (children of one input, scored one after another, see
        :meth:`Tiny64Network.forward`) keeps each piece under the options it depends on, so a
        piece two children share is computed once: the same operations on the same tensors."""
        if memo is None or not all(isinstance(s, int) for s in path):
            x0 = self.preprocess(x)
            x1 = self.edges[0](x0, path[0])
            x2 = self.edges[1](x0, path[1]) + self.edges[2](x1, path[2])
        else:
            x0 = _once(memo, ("x0",), lambda: self.preprocess(x))
            x1 = _once(memo, ("x1", path[0]), lambda: self.edges[0](x0, path[0]))
            x2 = (_once(memo, ("0->2", path[1]), lambda: self.edges[1](x0, path[1]))
                  + _once(memo, ("1->2", path[0], path[2]), lambda: self.edges[2](x1, path[2])))
        return torch.cat([x1, x2], dim=1) if self.combine == "concat" else x1 + x2


def _once(memo: dict, key: tuple, compute) -> torch.Tensor:
    out = memo.get(key)
    if out is None:
        out = memo[key] = compute()
    return out


class Tiny64Network(nn.Module):
    """A tiny64 network: the supernet (``arch=None``) or the standalone network of one child.

    ``forward(x, path)``: ``path`` holds one spec per edge (see :class:`ChoiceBlock`), used
    by every cell; a standalone network needs none. ``forward(x, arch)`` with an
    :class:`Arch` runs that child's single path.
    """

    #: ``forward`` takes :class:`~wsnas.nn.stacked.Stacked` specs (batched evaluation)
    supports_stacking = True
    #: ``forward`` takes ``memo``: children scored on one stem share the first cell's pieces
    supports_memo = True

    def __init__(self, space: Tiny64Space, *, num_classes: int, in_channels: int,
                 arch: Arch | None, partial: int = 1):
        super().__init__()
        cfg = space.config
        self.space = space
        self.arch = arch
        bn = BNConfig(affine=False, momentum=cfg.bn_momentum)
        s = cfg.stem_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, s, 3, padding=1, bias=False), bn.make(s, affine=True),
            nn.Conv2d(s, s, 3, padding=1, bias=False), bn.make(s, affine=True),
        )
        c_out = 2 * cfg.channels if cfg.combine == "concat" else cfg.channels
        cells = []
        c_in = s
        for _ in range(cfg.cells):
            cells.append(Tiny64Cell(space, c_in, bn, arch, partial))
            c_in = c_out
        self.cells = nn.ModuleList(cells)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_out, num_classes)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """The part of the network every child shares exactly (it has no choice point)."""
        return self.stem(x)

    def forward(self, x: torch.Tensor, path: Sequence[Spec] | Arch | None = None, *,
                stem: torch.Tensor | None = None, memo: dict | None = None) -> torch.Tensor:
        """Logits of ``x`` along ``path``; ``stem`` is ``forward_stem(x)`` when already computed.

        ``memo``: a dict given to every child scored on the same ``stem`` (a fresh one per
        ``stem``): the first cell's input is the stem for all of them, so its preprocessing, each
        edge's output per option and the edge 1->2 per pair of options are computed once and
        reused (every child of tiny64 has 16 or 4 siblings with the same first-cell pieces). The
        logits are those of computing each child alone, bit for bit. Only for children scored
        with the same weights and batch-norm statistics (not under recalibration or private
        copies), without gradients.
        """
        path = resolve_path(self.space, self.arch, path, "tiny64")
        x = self.stem(x) if stem is None else stem
        for k, cell in enumerate(self.cells):
            x = cell(x, path, memo if k == 0 and stem is not None else None)
        return self.classifier(self.pool(x).flatten(1))
