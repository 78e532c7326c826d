"""Primitive operations shared by all spaces (the DARTS family of ops).

Every op maps ``C_in`` channels to ``C_out`` channels with a given stride. Batch norm is
configurable per space: ``affine`` (learnable scale/shift) and ``momentum`` (PyTorch
convention: the weight of the new batch in the running average) and ``track_running_stats``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wsnas.core.errors import WsnasError


@dataclass(frozen=True)
class BNConfig:
    """Batch-norm settings used by every op of a network."""

    affine: bool = False
    momentum: float = 0.1
    track_running_stats: bool = True

    def make(self, channels: int, affine: bool | None = None) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(
            channels,
            affine=self.affine if affine is None else affine,
            momentum=self.momentum,
            track_running_stats=self.track_running_stats,
        )


class ReLUConvBN(nn.Module):
    """ReLU, convolution (no bias), batch norm."""

    def __init__(self, c_in, c_out, kernel, stride, padding, bn: BNConfig, dilation=1):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, bias=False),
            bn.make(c_out),
        )

    def forward(self, x):
        return self.op(x)


class DilConv(nn.Module):
    """ReLU, depthwise (dilated) convolution, pointwise convolution, batch norm."""

    def __init__(self, c_in, c_out, kernel, stride, padding, dilation, bn: BNConfig):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            bn.make(c_out),
        )

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked depthwise-separable convolutions (the DARTS ``sep_conv``)."""

    def __init__(self, c_in, c_out, kernel, stride, padding, bn: BNConfig):
        super().__init__()
        self.op = nn.Sequential(
            DilConv(c_in, c_in, kernel, stride, padding, 1, bn),
            DilConv(c_in, c_out, kernel, 1, padding, 1, bn),
        )

    def forward(self, x):
        return self.op(x)


class Identity(nn.Module):
    def forward(self, x):
        return x


class Zero(nn.Module):
    """The ``none`` op: zeros with the output shape."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.c_out, self.stride = c_out, stride
        self.same = c_in == c_out

    def forward(self, x):
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.same:
            return x.mul(0.0)
        shape = list(x.shape)
        shape[1] = self.c_out
        return x.new_zeros(shape)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset stride-2 1x1 convolutions, concatenated."""

    def __init__(self, c_in, c_out, bn: BNConfig):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even c_out, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = bn.make(c_out)

    def forward(self, x):
        x = self.relu(x)
        out = torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1)
        return self.bn(out)


class MaxPool3x3(nn.Module):
    """3x3 max pooling, stride 1, padding 1 (``nn.MaxPool2d(3, 1, 1)``, bit for bit).

    Without autograd (evaluation) it runs as two separable shifted maxima, about ten times
    faster on CPU for the small feature maps of NAS cells than PyTorch's NCHW kernel, which also
    computes indices; when a gradient is needed it uses PyTorch's kernel, whose backward is
    the faster one.
    """

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            return F.max_pool2d(x, 3, 1, 1)
        p = F.pad(x, (1, 1, 1, 1), value=float("-inf"))
        r = torch.maximum(torch.maximum(p[..., :-2], p[..., 1:-1]), p[..., 2:])
        return torch.maximum(torch.maximum(r[..., :-2, :], r[..., 1:-1, :]), r[..., 2:, :])


class AvgPool3x3(nn.Module):
    """3x3 average pooling, padding 1, the padding not counted.

    The same function as ``nn.AvgPool2d(3, stride, 1, count_include_pad=False)`` up to float
    rounding, and no parameters or buffers (a network's ``state_dict`` is unchanged). On CPU
    PyTorch's NCHW pooling kernel is 5-9x slower, forward and backward, than a depthwise
    convolution with a kernel of ones, so there the window sums come from that convolution and
    are divided by the number of in-bounds pixels of each window. On other devices it is
    PyTorch's pooling kernel.
    """

    # nn.AvgPool2d's attributes, for code that inspects a network's structure
    kernel_size = 3
    padding = 1
    count_include_pad = False

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride
        self._consts: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # ones kernel, counts

    def extra_repr(self) -> str:
        return f"kernel_size=3, stride={self.stride}, padding=1, count_include_pad=False"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4:
            return F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)
        c, h, w = x.shape[1:]
        key = (c, h, w, x.dtype)
        consts = self._consts.get(key)
        if consts is None:
            ones = torch.ones(c, 1, 3, 3, dtype=x.dtype)
            counts = F.conv2d(torch.ones(1, 1, h, w, dtype=x.dtype), ones[:1], stride=self.stride, padding=1)
            consts = self._consts[key] = (ones, counts)
        ones, counts = consts
        return F.conv2d(x, ones, stride=self.stride, padding=1, groups=c) / counts


class PoolBN(nn.Module):
    """A 3x3 pooling followed by batch norm (how DARTS-style supernets use pooling)."""

    def __init__(self, kind: str, c, stride, bn: BNConfig):
        super().__init__()
        if kind == "max":
            self.pool = MaxPool3x3() if stride == 1 else nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            self.pool = AvgPool3x3(stride)
        self.bn = bn.make(c)

    def forward(self, x):
        return self.bn(self.pool(x))


OpFactory = Callable[[int, int, BNConfig], nn.Module]

# name -> factory(C, stride, bn) for ops that keep the channel count (DARTS-family cells)
DARTS_OPS: dict[str, OpFactory] = {
    "none": lambda c, s, bn: Zero(c, c, s),
    "max_pool_3x3": lambda c, s, bn: PoolBN("max", c, s, bn),
    "avg_pool_3x3": lambda c, s, bn: PoolBN("avg", c, s, bn),
    "skip_connect": lambda c, s, bn: Identity() if s == 1 else FactorizedReduce(c, c, bn),
    "sep_conv_3x3": lambda c, s, bn: SepConv(c, c, 3, s, 1, bn),
    "sep_conv_5x5": lambda c, s, bn: SepConv(c, c, 5, s, 2, bn),
    "dil_conv_3x3": lambda c, s, bn: DilConv(c, c, 3, s, 2, 2, bn),
    "dil_conv_5x5": lambda c, s, bn: DilConv(c, c, 5, s, 4, 2, bn),
}


def make_op(name: str, channels: int, stride: int, bn: BNConfig,
            table: dict[str, OpFactory] = DARTS_OPS) -> nn.Module:
    """Build the op ``name`` from ``table``; unknown names raise a WsnasError."""
    try:
        factory = table[name]
    except KeyError:
        raise WsnasError(f"unknown op {name!r}; accepted: {', '.join(table)}") from None
    return factory(channels, stride, bn)
