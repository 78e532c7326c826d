"""Batch augmentation done with tensor operations on the batch's own device.

``crop_flip`` is the standard CIFAR recipe: pad the image by ``padding`` zeros (4) on every
side, cut a random ``H x W`` window out of it and mirror it left-right with probability
one half; ``crop_flip_pad2`` is the same with a padding of 2, NAS-Bench-201's recipe for
its 16 x 16 ImageNet16 images. It is applied to whole batches at once by gathering pixels through computed
indices, so there is no Python loop over samples and no host round trip. Note that the
padding is added to the normalised images, so padded pixels equal the train mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from wsnas.core.errors import WsnasError


@dataclass
class CropFlipParams:
    """Per-sample parameters of a crop-and-flip.

    Attributes:
        top: row of the window's top edge in the padded image, ``0 .. 2 * padding``.
        left: column of the window's left edge in the padded image, ``0 .. 2 * padding``.
        flip: whether the window is mirrored left-right.
    """

    top: Tensor
    left: Tensor
    flip: Tensor


def _check_padding(padding: int) -> int:
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise WsnasError(f"crop padding must be a non-negative integer, got {padding!r}")
    return padding


def sample_crop_flip(
    n: int,
    padding: int,
    generator: torch.Generator | None,
    device: torch.device | str,
) -> CropFlipParams:
    """Draw crop offsets and flips for ``n`` samples.

    Draws, in this order from ``generator``: ``n`` top offsets, ``n`` left offsets, ``n``
    flip coins. Numbers are drawn on the generator's device (the default generator's
    device, the CPU, when ``generator`` is None) and returned on ``device``.
    """
    padding = _check_padding(padding)
    draw_device = generator.device if generator is not None else torch.device("cpu")
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=draw_device)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=draw_device)
    flip = torch.randint(0, 2, (n,), generator=generator, device=draw_device).bool()
    return CropFlipParams(top=top.to(device), left=left.to(device), flip=flip.to(device))


def crop_flip(x: Tensor, params: CropFlipParams, padding: int) -> Tensor:
    """Apply given crops and flips to a batch.

    For sample ``i`` the result equals, in slicing terms,
    ``p = pad(x[i], padding)``; ``w = p[:, top:top + H, left:left + W]``; and
    ``w.flip(-1)`` where ``flip[i]``.

    Args:
        x: images ``N x C x H x W`` (any floating dtype, any device).
        params: per-sample parameters, e.g. from :func:`sample_crop_flip`.
        padding: zeros added on every side before cropping.

    Returns:
        A new contiguous tensor shaped like ``x``.
    """
    padding = _check_padding(padding)
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding)) if padding else x
    width = w + 2 * padding
    device = x.device
    top = params.top.to(device=device, dtype=torch.long)
    left = params.left.to(device=device, dtype=torch.long)
    flip = params.flip.to(device=device, dtype=torch.bool)
    rows = top[:, None] + torch.arange(h, device=device)[None, :]  # N x H
    cols_fwd = torch.arange(w, device=device)
    cols = left[:, None] + torch.where(flip[:, None], (w - 1) - cols_fwd, cols_fwd)  # N x W
    flat = (rows[:, :, None] * width + cols[:, None, :]).reshape(n, 1, h * w)
    gathered = padded.reshape(n, c, -1).gather(2, flat.expand(n, c, h * w))
    return gathered.reshape(n, c, h, w)


def random_crop_flip(x: Tensor, generator: torch.Generator | None, padding: int = 4) -> Tensor:
    """Zero-pad, randomly crop back to ``H x W`` and flip left-right with probability 0.5.

    Every sample gets its own window and coin; the random numbers come from
    ``generator`` (see :func:`sample_crop_flip` for the order), so the same generator
    state gives the same result. The work happens on ``x``'s device.
    """
    params = sample_crop_flip(x.shape[0], padding, generator, x.device)
    return crop_flip(x, params, padding)


def cutout(x: Tensor, length: int, generator: torch.Generator | None) -> Tensor:
    """Zero a ``length`` x ``length`` square at a uniformly drawn centre of each image.

    The square is clipped at the borders (DeVries & Taylor, 2017, as the DARTS evaluation
    recipe uses it with length 16); done with one mask on ``x``'s device, no loop over samples.
    """
    if length <= 0:
        return x
    n, _, h, w = x.shape
    draw = generator.device if generator is not None else torch.device("cpu")
    cy = torch.randint(0, h, (n,), generator=generator, device=draw).to(x.device)
    cx = torch.randint(0, w, (n,), generator=generator, device=draw).to(x.device)
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    half = length // 2
    in_rows = (rows[None, :] >= (cy - half)[:, None]) & (rows[None, :] < (cy + length - half)[:, None])
    in_cols = (cols[None, :] >= (cx - half)[:, None]) & (cols[None, :] < (cx + length - half)[:, None])
    hole = in_rows[:, :, None] & in_cols[:, None, :]
    return x * (~hole)[:, None, :, :].to(x.dtype)


#: Augmentation name -> function of ``(batch, generator)``.
AUGMENTATIONS: dict[str, Callable[[Tensor, torch.Generator | None], Tensor]] = {
    "crop_flip": random_crop_flip,
    "crop_flip_pad2": partial(random_crop_flip, padding=2),
}


def check_augment(augment: str | None) -> str | None:
    """Validate an augmentation name; ``None`` and ``"none"`` both mean no augmentation."""
    if augment is None or augment == "none":
        return None
    if augment not in AUGMENTATIONS:
        raise WsnasError(
            f"unknown augmentation {augment!r}; expected one of "
            f"{', '.join(sorted(AUGMENTATIONS))} or none"
        )
    return augment


def apply_augmentation(augment: str | None, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Apply the augmentation called ``augment`` to batch ``x`` (``None``: return ``x``)."""
    name = check_augment(augment)
    if name is None:
        return x
    return AUGMENTATIONS[name](x, generator)
