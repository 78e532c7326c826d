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
from contextvars import ContextVar
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Stacked", "grouped_batchnorm", "per_arch_batchnorm", "run_stacked", "stacked_loss_and_correct",
           "stacked_path"]

# the positions of the architectures whose rows the op running now sees (set by run_stacked);
# unset: every stacked architecture, in order
_ROWS: ContextVar[tuple[int, ...] | None] = ContextVar("wsnas_stacked_rows", default=None)


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
        token = _ROWS.set(tuple(archs))
        try:
            y = candidates[options[option]](x.index_select(0, rows))
        finally:
            _ROWS.reset(token)
        if out is None:
            out = y.new_empty((x.shape[0], *y.shape[1:]))
        # under bf16 autocast a convolution returns bf16 and skip, none and pooling fp32: the rows
        # take the wider type, as the sum at the next node does for a single architecture
        dtype = torch.promote_types(out.dtype, y.dtype)
        if out.dtype != dtype:
            out = out.to(dtype)
        out.index_copy_(0, rows, y.to(dtype))
    return out


def _grouped_forward(bn: nn.modules.batchnorm._BatchNorm, n: int):
    """``bn``'s forward with batch statistics taken over every ``n`` consecutive rows."""
    plain = bn.forward

    def forward(x: torch.Tensor) -> torch.Tensor:
        if not (bn.training or bn.running_mean is None) or x.shape[0] == n:
            return plain(x)  # running statistics, or a single architecture: unchanged
        y, _, _ = _normalise_groups(x.reshape(x.shape[0] // n, n, *x.shape[1:]), bn.eps)
        return _scale_shift(bn, y.reshape(x.shape))

    return forward


def _normalise_groups(xs: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``xs`` (groups x rows x C x ...) normalised with each group's batch statistics; with the
    statistics (biased variance)."""
    var, mean = torch.var_mean(xs, dim=(1, *range(3, xs.dim())), correction=0, keepdim=True)
    return (xs - mean) * torch.rsqrt(var + eps), mean, var


def _scale_shift(bn: nn.modules.batchnorm._BatchNorm, y: torch.Tensor) -> torch.Tensor:
    if not bn.affine:
        return y
    shape = (1, -1) + (1,) * (y.dim() - 2)
    return y * bn.weight.reshape(shape) + bn.bias.reshape(shape)


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


class _PerArchStats:
    """Running statistics of one BN layer per stacked architecture (cumulative averages)."""

    def __init__(self, archs: int, bn: nn.modules.batchnorm._BatchNorm):
        self.mean = bn.running_mean.new_zeros((archs, bn.num_features))
        self.var = bn.running_var.new_zeros((archs, bn.num_features))
        self.count = torch.zeros(archs, dtype=torch.long, device=bn.running_mean.device)


class PerArchBN:
    """What :func:`per_arch_batchnorm` yields: set ``n`` (rows per architecture) before every
    forward pass, and ``recalibrating`` to False once the recalibration batches are through."""

    def __init__(self, archs: int):
        self.archs, self.n, self.recalibrating = archs, 0, True


def _per_arch_forward(bn: nn.modules.batchnorm._BatchNorm, ctl: PerArchBN, stats: _PerArchStats | None):
    def forward(x: torch.Tensor) -> torch.Tensor:
        n = ctl.n
        g = x.shape[0] // n
        rows = _ROWS.get() or tuple(range(ctl.archs))
        if len(rows) != g:
            raise RuntimeError(f"a BN layer saw {g} stacked architectures, expected {len(rows)}")
        xs = x.reshape(g, n, *x.shape[1:])
        shape = (g, 1, -1) + (1,) * (x.dim() - 2)
        idx = None if stats is None else torch.tensor(rows, device=x.device)
        if stats is not None and not ctl.recalibrating:  # each architecture's recalibrated statistics
            count = stats.count[idx].unsqueeze(1)
            seen = count > 0  # an architecture that never ran this layer keeps the reset values
            mean = torch.where(seen, stats.mean[idx] / count.clamp(min=1), 0.0)
            var = torch.where(seen, stats.var[idx] / count.clamp(min=1), 1.0)
            y = (xs - mean.reshape(shape)) * torch.rsqrt(var.reshape(shape) + bn.eps)
        else:
            y, mean, var = _normalise_groups(xs, bn.eps)
            if stats is not None:  # accumulate: the batch mean and unbiased variance, as PyTorch
                m = xs[0].numel() // xs.shape[2]
                stats.mean.index_add_(0, idx, mean.reshape(g, -1))
                stats.var.index_add_(0, idx, var.reshape(g, -1) * (m / max(m - 1, 1)))
                stats.count.index_add_(0, idx, torch.ones_like(idx))
        return _scale_shift(bn, y.reshape(x.shape))

    return forward


@contextmanager
def per_arch_batchnorm(model: nn.Module, archs: int) -> Iterator[PerArchBN]:
    """BN recalibration of ``archs`` stacked architectures at once.

    Inside, while ``recalibrating``, every BN layer normalises each architecture's rows with
    their batch statistics and, if it keeps running statistics, accumulates them per
    architecture (a cumulative average: ``momentum=None`` after a reset, as one-at-a-time
    recalibration does); afterwards each architecture's rows are normalised with its own
    averages. Layers without running statistics always use batch statistics. The layers' own
    buffers are not touched.
    """
    ctl = PerArchBN(archs)
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in layers:
        stats = None if m.running_mean is None else _PerArchStats(archs, m)
        m.forward = _per_arch_forward(m, ctl, stats)
    try:
        yield ctl
    finally:
        for m in layers:
            del m.forward


def stacked_loss_and_correct(logits: torch.Tensor, y: torch.Tensor, archs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy (float64) and correct count of each of ``archs`` stacked architectures."""
    n = y.shape[0]
    per_row = F.cross_entropy(logits, y.repeat(archs), reduction="none").view(archs, n)
    correct = (logits.argmax(1).view(archs, n) == y).sum(1)
    return per_row.double().sum(1), correct
