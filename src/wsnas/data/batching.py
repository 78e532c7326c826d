"""Mini-batches cut from a device-resident split, without copying the split.

Each epoch's order is a permutation drawn from a caller-given ``torch.Generator`` (or an
order the caller supplies); each batch is gathered from the split's tensors by index on
their device, and augmented there. The same generator seed gives the same batches, as
long as the generator lives on the same kind of device (CPU and CUDA generators produce
different streams; a CPU generator gives the same batches everywhere).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from wsnas.core.errors import WsnasError
from wsnas.data.augment import apply_augmentation, check_augment
from wsnas.data.base import Split


def num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    """How many batches :func:`iterate_batches` yields for ``n`` samples."""
    _check_batch_size(batch_size)
    return n // batch_size if drop_last else -(-n // batch_size)


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise WsnasError(f"batch size must be a positive integer, got {batch_size!r}")


def epoch_order(
    split: Split,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    indices: Tensor | None = None,
) -> Tensor | None:
    """The index order of one epoch on the split's device, or None for ``0 .. N-1``.

    ``indices`` is used as given (it may repeat or omit samples); otherwise a
    permutation is drawn from ``generator`` when ``shuffle`` is set.
    """
    n = len(split)
    device = split.device
    if indices is not None:
        if shuffle:
            raise ValueError("pass shuffle=False with indices: indices already fix the order")
        if indices.dim() != 1 or indices.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"indices must be a 1-D integer tensor, got {indices.dtype} "
                f"of shape {tuple(indices.shape)}"
            )
        order = indices.to(device=device, dtype=torch.long)
        if order.numel() and bool(((order < 0) | (order >= n)).any()):
            raise IndexError(f"indices must lie in 0 .. {n - 1}")
        return order
    if not shuffle:
        return None
    draw_device = generator.device if generator is not None else torch.device("cpu")
    return torch.randperm(n, generator=generator, device=draw_device).to(device)


def iterate_batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    augment: str | None = None,
    indices: Tensor | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(x, y)`` batches of one epoch over ``split``.

    Args:
        split: the split to cut batches from (its tensors are never copied whole).
        batch_size: samples per batch; the last batch may be smaller unless
            ``drop_last``.
        shuffle: visit the samples in a random order drawn from ``generator``.
        generator: source of the epoch permutation and of augmentation randomness;
            ``None`` uses torch's global generator (not reproducible unless seeded).
        drop_last: drop the final batch if it is smaller than ``batch_size``.
        augment: augmentation applied to each batch on the device (``"crop_flip"``)
            or ``None``.
        indices: the epoch's order, chosen by the caller (e.g. sampled with
            replacement); it replaces shuffling (pass ``shuffle=False``).

    Yields:
        ``x`` (``B x C x H x W`` float32) and ``y`` (``B`` int64), on the split's device.
        Without shuffling, indices or augmentation they are views into the split:
        do not modify them in place.

    Arguments are checked when this is called, before the first batch is taken. The
    permutation is drawn first, then each batch's augmentation in turn.
    """
    _check_batch_size(batch_size)
    augment = check_augment(augment)
    order = epoch_order(split, shuffle=shuffle, generator=generator, indices=indices)
    total = len(split) if order is None else int(order.numel())
    count = num_batches(total, batch_size, drop_last)
    return _batches(split, order, batch_size, count, augment, generator)


def _batches(
    split: Split,
    order: Tensor | None,
    batch_size: int,
    count: int,
    augment: str | None,
    generator: torch.Generator | None,
) -> Iterator[tuple[Tensor, Tensor]]:
    for b in range(count):
        start = b * batch_size
        stop = start + batch_size
        if order is None:  # sequential: views, no copy
            x, y = split.x[start:stop], split.y[start:stop]
        else:
            idx = order[start:stop]
            x, y = split.x.index_select(0, idx), split.y.index_select(0, idx)
        yield apply_augmentation(augment, x, generator), y
