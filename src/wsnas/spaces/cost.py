"""Cost of a network: parameter count and FLOPs, counted as NAS-Bench-201 counts them.

Conventions (they reproduce the benchmark's figures exactly: the all-``nor_conv_3x3`` NB201
cell on CIFAR-10 has 1,531,546 parameters and 220.12 MFLOPs):

* **parameters**: every element of every learnable tensor (``model.parameters()``), batch-norm
  scale and shift and the classifier included; buffers (BN running statistics) excluded.
* **FLOPs**: multiply-accumulates of ``nn.Conv2d`` and ``nn.Linear`` layers only, for one
  image: a convolution costs ``k_h * k_w * C_in / groups`` per output element, a linear layer
  ``in_features`` per output element, plus one per output element for a bias (the benchmark's
  counter adds the bias too). Batch norm, activations, pooling (the basic block's shortcut
  pooling included), additions and zeros cost nothing. ``mflops`` is that count / 1e6,
  rounded to 2 decimals. For the all-``nor_conv_3x3`` cell: 220,119,040 conv MACs + 650
  classifier MACs (640 weights + 10 bias) = 220,119,690 -> 220.12.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch import nn

from wsnas.core.errors import WsnasError
from wsnas.spaces.base import Arch, Space

# name -> (classes, input channels, input size)
DATASETS: dict[str, tuple[int, int, int]] = {
    "cifar10": (10, 3, 32),
    "cifar100": (100, 3, 32),
    "ImageNet16-120": (120, 3, 16),
    "digits": (10, 1, 8),
    "imagenet": (1000, 3, 224),
}


def count_parameters(model: nn.Module) -> int:
    """Number of learnable scalars of ``model`` (buffers excluded)."""
    return int(sum(p.numel() for p in model.parameters()))


def count_flops(model: nn.Module, input_shape: Sequence[int], forward_kwargs: dict | None = None) -> int:
    """Multiply-adds of the Conv2d and Linear layers of ``model`` for ONE input.

    ``input_shape`` is ``(C, H, W)`` or ``(N, C, H, W)`` (the count is divided by N). The
    model runs once in eval mode without gradients on zeros; its mode is restored after.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or min(shape) < 1:
        raise WsnasError(f"input shape {tuple(input_shape)} must be (C, H, W) or (N, C, H, W) of positive sizes")
    total = 0

    def conv_hook(module: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        per_out = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += output.numel() * (per_out + (1 if module.bias is not None else 0))

    def linear_hook(module: nn.Linear, inputs, output) -> None:
        nonlocal total
        total += output.numel() * (module.in_features + (1 if module.bias is not None else 0))

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(shape, device=device), **(forward_kwargs or {}))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total // shape[0]


def dataset_shape(dataset: str) -> tuple[int, int, int]:
    """(classes, input channels, input size) of a dataset name (any case); errors list the accepted ones."""
    for name, shape in DATASETS.items():
        if str(dataset).lower() == name.lower():
            return shape
    raise WsnasError(f"unknown dataset {dataset!r}; accepted: {', '.join(DATASETS)}")


def cost_of(space: Space, arch: Arch, dataset: str = "cifar10") -> dict:
    """Parameters and MFLOPs of ``arch``'s standalone network built for ``dataset``.

    Returns ``{"params": int, "params_m": params / 1e6, "mflops": MACs / 1e6 rounded to
    2 decimals, "macs": int}``.
    """
    classes, channels, size = dataset_shape(dataset)
    return network_cost(space, arch, num_classes=classes, in_channels=channels, image_size=size)


def network_cost(space: Space, arch: Arch, *, num_classes: int, in_channels: int, image_size: int) -> dict:
    """:func:`cost_of` for any input: ``num_classes`` classes, ``in_channels`` x ``image_size`` squared."""
    net = space.build_network(arch, num_classes=num_classes, in_channels=in_channels)
    params = count_parameters(net)
    macs = count_flops(net, (in_channels, image_size, image_size))
    return {"params": params, "params_m": params / 1e6, "mflops": round(macs / 1e6, 2), "macs": macs}


#: Forward passes before timing, and timed ones, of :func:`measure_latency`.
LATENCY_WARMUP = 5
LATENCY_REPEATS = 10


@torch.no_grad()
def measure_latency(model: nn.Module, input_shape: Sequence[int], device: torch.device | str = "cpu", *,
                    warmup: int = LATENCY_WARMUP, repeats: int = LATENCY_REPEATS) -> float:
    """Median wall-clock milliseconds of one forward pass of ``model`` (eval mode, no gradients)
    on a zero input of ``input_shape`` (``(N, C, H, W)``; batch 1 for a deployment latency), on
    ``device``, after ``warmup`` untimed passes; CUDA is synchronised around every timed pass."""
    device = torch.device(device)
    model = model.to(device).eval()
    x = torch.zeros(tuple(int(s) for s in input_shape), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *a: None)
    for _ in range(warmup):
        model(x)
    sync(device)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        model(x)
        sync(device)
        times.append(time.perf_counter() - start)
    times.sort()
    mid = len(times) // 2
    median = times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2
    return median * 1000.0
