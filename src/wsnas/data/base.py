"""The in-memory dataset shape every loader returns, and helpers loaders share.

A :class:`Dataset` holds three :class:`Split` objects whose images are already
normalised float32 tensors on the compute device, so training never touches the disk or
the host again. Loaders hand raw integer images (``N x C x H x W``) to
:func:`make_splits`, which computes the train split's per-channel statistics exactly
and converts each split to the device once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from wsnas.core.errors import WsnasError

#: Names accepted by :meth:`Dataset.split`, in order.
SPLIT_NAMES: tuple[str, ...] = ("train", "valid", "test")


@dataclass
class Split:
    """Images and labels of one split, resident on one device.

    Attributes:
        x: float32 images, ``N x C x H x W``, normalised.
        y: int64 class labels, ``N``, on the same device as ``x``.
    """

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if self.x.dim() != 4 or self.x.dtype != torch.float32:
            raise ValueError(f"x must be float32 N x C x H x W, got {self.x.dtype} {self.x.shape}")
        if self.y.shape != (self.x.shape[0],) or self.y.dtype != torch.int64:
            raise ValueError(f"y must be int64 of shape ({self.x.shape[0]},), got {self.y.shape}")
        if self.x.device != self.y.device:
            raise ValueError(f"x is on {self.x.device} but y is on {self.y.device}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def device(self) -> torch.device:
        """The device the tensors live on."""
        return self.x.device


@dataclass
class Dataset:
    """A classification dataset with train/valid/test splits resident on ``device``.

    Attributes:
        name: registry name (``digits``, ``cifar10``, ...).
        num_classes: number of classes; labels are ``0 .. num_classes - 1``.
        in_channels: image channels (``C``).
        image_size: image height and width (square images).
        train: the split models are trained on.
        valid: held out from the training data, for selection and early stopping.
        test: the official test split (or a held-out part where there is none).
        augment: the training augmentation this dataset is meant to be used with
            (``"crop_flip"``) or ``None``; :func:`wsnas.data.iterate_batches` applies it
            when asked.
        mean: per-channel mean of the train split, pixel values scaled to [0, 1].
        std: per-channel standard deviation of the train split, same scale. Images were
            normalised as ``(pixel / max_value - mean) / std``.
        device: where every tensor lives.
        split_seed: the seed that decided the train/valid(/test) split.
        class_names: a readable name per class.
        source: where the data came from (a directory, a file, or a bundled data set's name).
    """

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    train: Split
    valid: Split
    test: Split
    augment: str | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device
    split_seed: int = 0
    class_names: tuple[str, ...] = field(default_factory=tuple)
    source: str = ""
    limit: int | None = None  # at most this many images per split (a class-balanced subset), if set
    valid_before_limit: int | None = None  # the valid split's size before ``limit`` cut it
    #: the loader's own options as they were given (``limit`` aside): what reloads the same data
    options: dict[str, Any] = field(default_factory=dict)
    #: choices beyond the sizes that decide the data (e.g. which valid/test split); part of describe()
    settings: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        """The split called ``name`` (``train``, ``valid`` or ``test``)."""
        if name not in SPLIT_NAMES:
            raise WsnasError(
                f"unknown split {name!r} of dataset {self.name!r}; "
                f"expected one of {', '.join(SPLIT_NAMES)}"
            )
        return getattr(self, name)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for run configs: sizes, classes, split seed, augmentation."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "sizes": {name: len(self.split(name)) for name in SPLIT_NAMES},
            "split_seed": self.split_seed,
            "augment": self.augment,
            "mean": [float(m) for m in self.mean],
            "std": [float(s) for s in self.std],
            "class_names": list(self.class_names),
            "source": self.source,
            **({"limit": self.limit} if self.limit is not None else {}),
            **({"settings": dict(self.settings)} if self.settings else {}),
            # the loader's options as given: with name, source, split seed and limit they reload
            # the same data (``wsnas select`` on a finished search does)
            **({"options": dict(self.options)} if self.options else {}),
        }


def resolve_device(device: str | torch.device) -> torch.device:
    """Parse ``device`` and check that it can be used; raises :class:`WsnasError` if not."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise WsnasError(
            f"unknown device {device!r}; expected e.g. 'cpu', 'cuda' or 'cuda:0'"
        ) from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise WsnasError(f"device {str(device)!r} requested but CUDA is not available")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise WsnasError(
                f"device {str(device)!r} does not exist; "
                f"{torch.cuda.device_count()} CUDA device(s) are visible"
            )
    return resolved


def check_options(dataset: str, options: Mapping[str, Any], accepted: Mapping[str, str]) -> None:
    """Raise :class:`WsnasError` if ``options`` has a key that ``accepted`` lacks.

    Args:
        dataset: the dataset's name, for the message.
        options: the keyword options the user passed.
        accepted: accepted option name -> a short description, for the message.
    """
    for key in options:
        if key not in accepted:
            listing = "; ".join(f"{k} ({v})" for k, v in accepted.items()) or "none"
            raise WsnasError(
                f"unknown option {key!r} for dataset {dataset!r}; accepted options: {listing}"
            )


def check_seed(split_seed: Any) -> int:
    """Return ``split_seed`` as an int, or raise :class:`WsnasError` if it is not one >= 0."""
    if isinstance(split_seed, bool) or not isinstance(split_seed, (int, np.integer)):
        raise WsnasError(f"split_seed must be a non-negative integer, got {split_seed!r}")
    if split_seed < 0:
        raise WsnasError(f"split_seed must be a non-negative integer, got {split_seed}")
    return int(split_seed)


def check_count(dataset: str, option: str, value: Any, n: int, what: str = "training images") -> int:
    """``value`` as an int from 0 to ``n - 1`` (images held out of ``n``), or a one-line
    :class:`WsnasError` naming ``dataset``, ``option`` and the accepted range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (0 <= value < n):
        raise WsnasError(
            f"{dataset} {option} must be an integer from 0 to {n - 1} "
            f"(there are {n} {what}), got {value!r}"
        )
    return int(value)


def channel_stats(
    images: np.ndarray, max_value: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and (population) standard deviation of integer images.

    Args:
        images: integer array ``N x C x H x W`` with values in ``0 .. max_value``.
        max_value: the largest possible pixel value; statistics are divided by it so
            they are on the [0, 1] scale.

    Returns:
        ``(mean, std)``, one float per channel. Computed from per-channel value
        histograms, so they are exact, cheap in memory and the same on every machine.
        A channel with zero spread gets std 1.0 so normalising never divides by zero.
    """
    values = np.arange(max_value + 1, dtype=np.float64)
    means: list[float] = []
    stds: list[float] = []
    for c in range(images.shape[1]):
        hist = np.bincount(images[:, c].ravel(), minlength=max_value + 1).astype(np.float64)
        count = hist.sum()
        if count == 0:
            means.append(0.0)
            stds.append(1.0)
            continue
        mean = float((hist * values).sum() / count)
        var = float((hist * (values - mean) ** 2).sum() / count)
        means.append(mean / max_value)
        stds.append(float(np.sqrt(var)) / max_value if var > 0 else 1.0)
    return tuple(means), tuple(stds)


def float_channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) standard deviation of floating images ``N x C x H x W``.

    Summed in float64, one channel at a time; a channel with zero spread gets std 1.0.
    """
    means: list[float] = []
    stds: list[float] = []
    for c in range(images.shape[1]):
        values = images[:, c].astype(np.float64, copy=False)
        if values.size == 0:
            means.append(0.0)
            stds.append(1.0)
            continue
        mean = float(values.mean())
        std = float(np.sqrt(np.mean((values - mean) ** 2)))
        means.append(mean)
        stds.append(std if std > 0 else 1.0)
    return tuple(means), tuple(stds)


def to_split(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    max_value: int,
    device: torch.device,
) -> Split:
    """Move integer images to ``device`` once and normalise them there.

    ``x = (images / max_value - mean[c]) / std[c]`` in float32; labels become int64.
    """
    raw = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    x = raw.to(torch.float32).div_(float(max_value))
    shape = (1, -1, 1, 1)
    x.sub_(torch.tensor(mean, dtype=torch.float32, device=device).view(shape))
    x.div_(torch.tensor(std, dtype=torch.float32, device=device).view(shape))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    return Split(x=x, y=y)


def make_splits(
    images: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    *,
    max_value: int,
    device: torch.device,
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> tuple[dict[str, Split], tuple[float, ...], tuple[float, ...]]:
    """Normalise every split with the train split's statistics and move it to ``device``.

    Args:
        images: split name -> unsigned integer images ``N x C x H x W``; must hold
            ``train``, ``valid`` and ``test``. Floating images (already on their own scale)
            are accepted with ``max_value=1``.
        labels: split name -> integer labels.
        max_value: the largest possible pixel value (255 for 8-bit images; 1 for floats).
        device: where the tensors go.
        stats: ``(mean, std)`` per channel on the [0, 1] scale to use instead of the train
            split's own (a dataset whose authors fixed them).

    Returns:
        ``(splits, mean, std)`` with ``mean``/``std`` per channel on the [0, 1] scale.
    """
    if stats is not None:
        mean, std = tuple(map(float, stats[0])), tuple(map(float, stats[1]))
    elif images["train"].dtype.kind == "f":
        mean, std = float_channel_stats(images["train"])
    else:
        mean, std = channel_stats(images["train"], max_value)
    splits = {
        name: to_split(
            images[name], labels[name], mean=mean, std=std, max_value=max_value, device=device
        )
        for name in SPLIT_NAMES
    }
    return splits, mean, std


def build_dataset(
    images: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    *,
    max_value: int,
    device: torch.device,
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    **fields: Any,
) -> Dataset:
    """A :class:`Dataset` from per-split integer (or float) images: :func:`make_splits` then the
    dataset's own ``fields`` (``name``, ``num_classes``, ``in_channels``, ``image_size``,
    ``augment``, ``split_seed``, ``class_names``, ``source``, ``settings`` ...).

    The splits, ``mean``, ``std`` and ``device`` come from :func:`make_splits`; a reader passes
    only what is its own.
    """
    splits, mean, std = make_splits(images, labels, max_value=max_value, device=device, stats=stats)
    return Dataset(train=splits["train"], valid=splits["valid"], test=splits["test"],
                   mean=mean, std=std, device=device, **fields)
