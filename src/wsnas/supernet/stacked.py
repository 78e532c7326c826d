"""Many architectures in one forward pass of a single-path supernet.

Scoring children one at a time runs every op of every path separately: for small images the
time goes to kernel launches and Python, not arithmetic. Stacking runs ``A`` architectures
together: the input holds ``A`` copies of a batch of ``n`` images (architecture ``k`` owns rows
``k*n .. (k+1)*n - 1``), and each choice block gets a :class:`Stacked` spec naming every
architecture's option. The block runs each option once, on the rows of the architectures that
chose it, and writes the outputs back in place, so a block costs at most one call per option
whatever ``A`` is.

Every row then sees exactly the computation it would see alone, except batch normalisation
with batch statistics (train mode, or ``track_running_stats=False`` as in the NB201 supernets
of the papers): :func:`grouped_batchnorm` makes every BN layer compute its statistics over each
architecture's ``n`` rows separately. Results equal the one-at-a-time path up to floating-point
rounding (different batch sizes can pick different kernels); the tests compare the two.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Stacked", "grouped_batchnorm", "run_stacked", "stacked_loss_and_correct", "stacked_path"]


class Stacked(NamedTuple):
    """The options of ``len(indices)`` architectures stacked along the batch, ``batch`` rows each."""

    indices: tuple[int, ...]
    batch: int


def stacked_path(space, archs: Sequence, batch: int) -> list[Stacked]:
    """One :class:`Stacked` spec per choice of ``space`` for ``archs`` (``batch`` rows each)."""
    columns = zip(*(space.option_indices(a) for a in archs))
    return [Stacked(tuple(int(i) for i in col), batch) for col in columns]


def run_stacked(candidates: nn.ModuleDict, options: Sequence[str], x: torch.Tensor,
                spec: Stacked) -> torch.Tensor:
    """Each option once, on the rows of the architectures that chose it."""
    groups: dict[int, list[int]] = {}
    for k, option in enumerate(spec.indices):
        groups.setdefault(option, []).append(k)
    if len(groups) == 1:
        return candidates[options[spec.indices[0]]](x)
    n = spec.batch
    out = None
    for option, archs in groups.items():
        rows = torch.cat([torch.arange(k * n, (k + 1) * n, device=x.device) for k in archs])
        y = candidates[options[option]](x.index_select(0, rows))
        if out is None:
            out = y.new_empty((x.shape[0], *y.shape[1:]))
        out.index_copy_(0, rows, y)
    return out


def _grouped_forward(bn: nn.modules.batchnorm._BatchNorm, n: int):
    """``bn``'s forward with batch statistics taken over every ``n`` consecutive rows."""
    plain = bn.forward

    def forward(x: torch.Tensor) -> torch.Tensor:
        if not (bn.training or bn.running_mean is None) or x.shape[0] == n:
            return plain(x)  # running statistics, or a single architecture: unchanged
        g = x.shape[0] // n
        xs = x.reshape(g, n, *x.shape[1:])
        dims = (1, *range(3, xs.dim()))
        var, mean = torch.var_mean(xs, dim=dims, correction=0, keepdim=True)
        y = (xs - mean) * torch.rsqrt(var + bn.eps)
        y = y.reshape(x.shape)
        if bn.affine:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            y = y * bn.weight.reshape(shape) + bn.bias.reshape(shape)
        return y

    return forward


@contextmanager
def grouped_batchnorm(model: nn.Module, n: int) -> Iterator[None]:
    """Inside: every BN layer of ``model`` that normalises with batch statistics does so per
    block of ``n`` rows (one architecture's batch), and updates no running statistics."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in layers:
        m.forward = _grouped_forward(m, n)
    try:
        yield
    finally:
        for m in layers:
            del m.forward  # back to the class's forward


def stacked_loss_and_correct(logits: torch.Tensor, y: torch.Tensor, archs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy (float64) and correct count of each of ``archs`` stacked architectures."""
    n = y.shape[0]
    per_row = F.cross_entropy(logits, y.repeat(archs), reduction="none").view(archs, n)
    correct = (logits.argmax(1).view(archs, n) == y).sum(1)
    return per_row.double().sum(1), correct
