"""The mobile chain space of ProxylessNAS (Cai et al., ICLR 2019), the space PA&DA searches on ImageNet.

Network (ProxylessNAS's ``SuperProxylessNASNets`` and the layers of ``proxyless_nas/layers.py``,
mit-han-lab/proxylessnas; written here from their description, not copied):

* stem: 3x3 convolution to 32 channels, stride 2, BN, ReLU6; then an MBConv of expansion 1 and
  kernel 3 to 16 channels (no expansion convolution);
* six stages of widths 24, 40, 80, 96, 192, 320 with 4, 4, 4, 4, 4, 1 layers and strides 2, 2,
  2, 1, 2, 1 (the stride on a stage's first layer); every layer is a choice of an MBConv with
  kernel 3, 5 or 7 and expansion 3 or 6 (``k3e3`` .. ``k7e6``), and every layer but the first of
  a stage may also be skipped (``skip``: the layer is the identity), 6 or 7 options, about
  2.2e17 architectures in all (sampled, never enumerated);
* a 1x1 convolution to 1280 channels, BN, ReLU6, global average pooling, a linear classifier.

An MBConv (``MBInvertedConvLayer``) with ``c_in`` inputs and expansion ``e`` is a 1x1 convolution
to ``round(c_in * e)`` channels, BN, ReLU6 (left out when ``e == 1``); a depthwise ``k x k``
convolution with the layer's stride, BN, ReLU6; a 1x1 projection to the layer's width and BN
(no activation, no squeeze-and-excitation). Convolutions have no bias, BN is affine. A layer
adds its input to its output when its stride is 1 and its width that of its input (every layer
but the first of a stage, and those first layers the widths make so); ``skip`` then leaves only
the input. The supernet holds every option of every layer in a :class:`ChoiceBlock` under the
same key as the standalone network's, so a child's weights are a key lookup.

Names. A layer's choice is ``s<stage>l<layer>`` (``s1l1`` .. ``s6l1``, 21 in all); the canonical
string lists the layers' options stage by stage, ``-`` between layers and ``/`` between stages:
``k5e3-k3e3-skip-skip/k7e3-...`` (:data:`PROXYLESS_MOBILE`). ``parse`` also reads the 21 options
as one list separated by ``-`` or ``,``. The index is the default mixed radix.

Options (:class:`MobileConfig`): ``resolution`` 224 (ImageNet, the default) or 32 (CIFAR-sized
inputs: the stem and the first stage take stride 1 instead of 2, so the network downsamples 8x,
not 32x, as the CIFAR-10 MobileNetV2 of kuangliu/pytorch-cifar ``models/mobilenetv2.py`` does:
"change conv1 stride 2 -> 1" and "change stride 2 -> 1" on its 24-channel stage; 8x8 digits end
at 1x1); ``width`` (a multiplier of every width, rounded as ProxylessNAS does: to a multiple of
8, at least 8, never more than 10% down; the 1280 of the head only grows); ``widths`` (the six
stage widths, ``24,40,80,96,192,320``; the published ProxylessNAS-Mobile has 32 in its first
stage: :data:`PROXYLESS_MOBILE_WIDTHS`); ``bn_momentum`` 0.1 and ``bn_eps`` 1e-3 (the authors'
``bn_param``).

Cost. ``wsnas cost --space mobile --space-option widths=32,40,80,96,192,320 --dataset imagenet
--arch PROXYLESS_MOBILE`` counts the network of the authors' released ``proxyless_mobile.config``
(22 blocks, two of them skipped layers): 4,080,512 parameters (BN scale and shift and the
classifier's bias included; 4.1M as published) and 320,427,584 multiply-adds of convolutions and
the classifier as the authors' ``get_flops`` counts them (a convolution ``out_h * out_w * c_out *
k * k * c_in / groups``, the classifier its weights, no bias: 320M as published);
:func:`wsnas.spaces.cost.count_flops` adds one per output of a layer with a bias (1,000 for the
classifier): 320,428,584, ``MFLOPs 320.43``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from wsnas.core.errors import WsnasError
from wsnas.nn.choice import ChoiceBlock, Spec
from wsnas.nn.ops import Zero
from wsnas.spaces.base import Arch, Choice, Space, resolve_path

MBCONVS = ("k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6")  # ProxylessNAS's conv_candidates, in its order
SKIP = "skip"
OPS = (*MBCONVS, SKIP)
STAGE_LAYERS = (4, 4, 4, 4, 4, 1)
WIDTHS = (24, 40, 80, 96, 192, 320)  # imagenet_arch_search.py --width_stages
# resolution -> (stem stride, the stages' strides)
STRIDES = {224: (2, (2, 2, 2, 1, 2, 1)), 32: (1, (1, 2, 2, 1, 2, 1))}
STEM, FIRST, HEAD = 32, 16, 1280

#: ProxylessNAS-Mobile, the authors' released net (han-cai/files proxylessnas/proxyless_mobile.config,
#: loaded by mit-han-lab/proxylessnas proxyless_nas/model_zoo.py), with :data:`PROXYLESS_MOBILE_WIDTHS`
PROXYLESS_MOBILE = ("k5e3-k3e3-skip-skip/k7e3-k3e3-k5e3-k5e3/k7e6-k5e3-k5e3-k5e3/k5e6-k5e3-k5e3-k5e3/"
                    "k7e6-k7e6-k7e3-k7e3/k7e6")
PROXYLESS_MOBILE_WIDTHS = (32, 40, 80, 96, 192, 320)


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to a multiple of ``divisor``, at least ``divisor``, at most 10% lower (the
    MobileNet rule ProxylessNAS applies to every width)."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


def _widths(value) -> tuple[int, ...]:
    try:
        parts = value.replace("-", ",").split(",") if isinstance(value, str) else list(value)
        widths = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        widths = ()
    if len(widths) != len(STAGE_LAYERS) or min(widths) < 1:
        raise WsnasError(f"widths must be {len(STAGE_LAYERS)} positive integers, one per stage, e.g. "
                         f"{','.join(map(str, WIDTHS))}; got {value!r}")
    return widths


@dataclass(frozen=True)
class MobileConfig:
    """Settings of the mobile networks (defaults: ProxylessNAS's ImageNet search space)."""

    resolution: int = 224              # 224 (ImageNet strides) or 32 (stride 1 in the stem and stage 1)
    width: float = 1.0                 # width multiplier
    widths: tuple[int, ...] = WIDTHS   # the six stage widths before the multiplier
    bn_momentum: float = 0.1           # PyTorch convention
    bn_eps: float = 1e-3

    def __post_init__(self) -> None:
        if self.resolution not in STRIDES:
            raise WsnasError(f"unknown resolution {self.resolution!r}; accepted: "
                             f"{', '.join(map(str, STRIDES))} (ImageNet or CIFAR-sized strides)")
        if isinstance(self.width, bool) or not isinstance(self.width, (int, float)) or not self.width > 0:
            raise WsnasError(f"width must be a positive multiplier, got {self.width!r}")
        object.__setattr__(self, "width", float(self.width))
        object.__setattr__(self, "widths", _widths(self.widths))
        if not 0.0 < self.bn_momentum <= 1.0:
            raise WsnasError(f"bn_momentum {self.bn_momentum} out of range; accepted: (0, 1]")
        if not self.bn_eps > 0:
            raise WsnasError(f"bn_eps must be positive, got {self.bn_eps}")


@dataclass(frozen=True)
class LayerPlan:
    """One searchable layer: its choice, input and output widths and stride."""

    name: str
    c_in: int
    c_out: int
    stride: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.c_in == self.c_out


def _choices() -> tuple[Choice, ...]:
    return tuple(Choice(f"s{s}l{i + 1}", MBCONVS if i == 0 else OPS)
                 for s, n in enumerate(STAGE_LAYERS, start=1) for i in range(n))


class MobileSpace(Space):
    """The ProxylessNAS mobile chain space; ``MobileSpace(resolution=32, width=0.25)`` etc."""

    name = "mobile"

    def __init__(self, **config) -> None:
        self.config = cfg = MobileConfig(**config)
        self.choices = _choices()
        self.ops = OPS
        stem_stride, strides = STRIDES[cfg.resolution]
        self.stem_stride = stem_stride
        self.stem_channels = make_divisible(STEM * cfg.width)
        self.first_channels = make_divisible(FIRST * cfg.width)
        self.head_channels = make_divisible(HEAD * cfg.width) if cfg.width > 1.0 else HEAD
        plan, c, k = [], self.first_channels, 0
        for w, n, stride in zip(cfg.widths, STAGE_LAYERS, strides):
            c_out = make_divisible(w * cfg.width)
            for i in range(n):
                plan.append(LayerPlan(self.choices[k].name, c, c_out, stride if i == 0 else 1))
                c, k = c_out, k + 1
        self.plan: tuple[LayerPlan, ...] = tuple(plan)

    def describe(self) -> dict:
        return {"space": self.name, **asdict(self.config), "widths": list(self.config.widths)}

    # ------------------------------------------------------------------ names
    def format(self, arch: Arch) -> str:
        ops, out, k = self.validate(arch).ops, [], 0
        for n in STAGE_LAYERS:
            out.append("-".join(ops[k:k + n]))
            k += n
        return "/".join(out)

    def parse(self, text: str) -> Arch:
        """Parse ``k5e3-k3e3-skip-skip/k7e3-...`` (stages by ``/``) or the 21 options separated by ``-`` or ``,``."""
        raw = str(text).strip()
        if "/" in raw:
            stages = [s.strip() for s in raw.split("/")]
            if len(stages) != len(STAGE_LAYERS):
                raise WsnasError(f"mobile architecture {raw!r} has {len(stages)} stages; expected "
                                 f"{len(STAGE_LAYERS)} separated by '/' (layers {'-'.join(map(str, STAGE_LAYERS))})")
            ops = []
            for s, (stage, n) in enumerate(zip(stages, STAGE_LAYERS), start=1):
                layers = [p.strip() for p in stage.split("-")]
                if len(layers) != n:
                    raise WsnasError(f"mobile architecture {raw!r}: stage {s} has {len(layers)} layers; "
                                     f"expected {n} separated by '-'")
                ops += layers
        else:
            ops = [p.strip() for p in raw.replace(",", "-").split("-")]
            if len(ops) != len(self.choices):
                raise WsnasError(f"mobile architecture {raw!r} has {len(ops)} layers; expected {len(self.choices)}: "
                                 f"stages separated by '/' and layers by '-', e.g. {PROXYLESS_MOBILE}")
        for choice, op in zip(self.choices, ops):
            if op == SKIP and SKIP not in choice.options:
                raise WsnasError(f"mobile architecture {raw!r}: {choice.name} is the first layer of a stage and "
                                 f"cannot be skipped; accepted: {', '.join(choice.options)}")
        return self.validate(Arch(self.name, tuple(ops)))

    # ------------------------------------------------------------------ networks
    def build_network(self, arch: Arch, *, num_classes: int, in_channels: int = 3) -> MobileNetwork:
        return MobileNetwork(self, num_classes=num_classes, in_channels=in_channels, arch=self.validate(arch))

    def build_supernet(self, *, num_classes: int, in_channels: int = 3, partial_channels: int = 1) -> MobileNetwork:
        """The supernet; ``partial_channels=K`` builds PC-DARTS's mixed ops (1/K of the channels) on the
        layers with a residual (same width, stride 1); the others take every channel."""
        k = partial_channels
        if k < 1 or any(layer.c_in % k for layer in self.plan if layer.residual):
            raise WsnasError(f"partial channels K={k} must divide the width of every layer with a residual "
                             f"({', '.join(sorted({str(p.c_in) for p in self.plan if p.residual}, key=int))})")
        return MobileNetwork(self, num_classes=num_classes, in_channels=in_channels, arch=None, partial=k)


class DepthwiseConv(nn.Conv2d):
    """A depthwise k x k convolution with "same" padding that leaves out the rows and columns of its
    kernel which see only padding: on a map smaller than the kernel (1 x 1 and 2 x 2 in the last
    stages on 8 x 8 digits) only the central ``2 * size - 1`` of them ever meet an input pixel. The
    result is the full convolution's (the weights left out multiply zeros, and get a zero gradient
    either way), several times faster on a CPU; the parameters, their names and the cost count
    (``kernel_size``) are those of the full kernel."""

    def __init__(self, channels: int, kernel: int, stride: int) -> None:
        super().__init__(channels, channels, kernel, stride, kernel // 2, groups=channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size[0]
        keep_h, keep_w = min(k, 2 * x.shape[-2] - 1), min(k, 2 * x.shape[-1] - 1)
        if keep_h == k and keep_w == k:
            return super().forward(x)
        cut_h, cut_w = (k - keep_h) // 2, (k - keep_w) // 2
        weight = self.weight[:, :, cut_h:k - cut_h, cut_w:k - cut_w]
        return F.conv2d(x, weight, None, self.stride, (keep_h // 2, keep_w // 2), 1, self.groups)


class MBConv(nn.Module):
    """ProxylessNAS's MBInvertedConvLayer: 1x1 expansion (unless ``expand == 1``), depthwise k x k, 1x1 projection."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int, bn) -> None:
        super().__init__()
        mid = round(c_in * expand)
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, mid, 1, bias=False), bn(mid), nn.ReLU6()]
        layers += [DepthwiseConv(mid, kernel, stride), bn(mid), nn.ReLU6(),
                   nn.Conv2d(mid, c_out, 1, bias=False), bn(c_out)]
        self.op = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def make_mobile_op(name: str, c_in: int, c_out: int, stride: int, bn) -> nn.Module:
    """``k<kernel>e<expansion>`` or ``skip`` (zeros: with the layer's residual, the identity)."""
    if name == SKIP:
        return Zero(c_in, c_out, stride)
    return MBConv(c_in, c_out, int(name[1]), stride, int(name[3]), bn)


class MobileLayer(nn.Module):
    """One searchable layer: a :class:`ChoiceBlock` of its options, plus its input when it has a residual."""

    def __init__(self, plan: LayerPlan, options: Sequence[str], bn, only: str | None, partial: int = 1) -> None:
        super().__init__()
        self.residual = plan.residual
        k = partial if plan.residual else 1
        self.choice = ChoiceBlock(options, lambda op: make_mobile_op(op, plan.c_in // k, plan.c_out // k,
                                                                     plan.stride, bn),
                                  only=only, partial=k)

    def forward(self, x: torch.Tensor, spec: Spec) -> torch.Tensor:
        out = self.choice(x, spec)
        return out + x if self.residual else out


class MobileNetwork(nn.Module):
    """A mobile network: the supernet (``arch=None``) or the standalone network of one architecture.

    ``forward(x, path)``: ``path`` is an :class:`Arch` (single path) or one spec per layer (see
    :class:`ChoiceBlock`: an op index, op weights, a sampled op); a standalone network needs none.
    """

    def __init__(self, space: MobileSpace, *, num_classes: int, in_channels: int, arch: Arch | None,
                 partial: int = 1) -> None:
        super().__init__()
        cfg = space.config
        self.space, self.arch = space, arch
        bn = batch_norm(cfg)
        s, f, h = space.stem_channels, space.first_channels, space.head_channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, s, 3, space.stem_stride, 1, bias=False), bn(s), nn.ReLU6(),
                                  MBConv(s, f, 3, 1, 1, bn))
        self.layers = nn.ModuleList(
            MobileLayer(p, c.options, bn, None if arch is None else arch.ops[i], partial)
            for i, (p, c) in enumerate(zip(space.plan, space.choices)))
        c_last = space.plan[-1].c_out
        self.head = nn.Sequential(nn.Conv2d(c_last, h, 1, bias=False), bn(h), nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(h, num_classes)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """The part every child shares exactly: the stem convolution and the first MBConv."""
        return self.stem(x)

    def forward(self, x: torch.Tensor, path: Sequence[Spec] | Arch | None = None, *,
                stem: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of ``x`` along ``path``; ``stem`` is ``forward_stem(x)`` when already computed."""
        specs = resolve_path(self.space, self.arch, path, "mobile")
        x = self.stem(x) if stem is None else stem
        for layer, spec in zip(self.layers, specs):
            x = layer(x, spec)
        return self.classifier(self.pool(self.head(x)).flatten(1))


def batch_norm(cfg: MobileConfig):
    """Affine batch norm with the space's momentum and epsilon, by channel count."""
    return partial(nn.BatchNorm2d, momentum=cfg.bn_momentum, eps=cfg.bn_eps)


__all__ = ["MBCONVS", "OPS", "PROXYLESS_MOBILE", "PROXYLESS_MOBILE_WIDTHS", "MobileConfig", "MobileNetwork",
           "MobileSpace", "make_divisible"]
