"""The handwritten digits bundled with scikit-learn: a tiny dataset for fast runs.

``sklearn.datasets.load_digits()`` ships 1797 grey images of 8 x 8 pixels with values
0..16 and ten classes; no download is needed, so ``data_dir`` is ignored. They are split
60/20/20 % into train/valid/test with :func:`wsnas.data.stratify.stratified_split`:

==========  ======
split       images
==========  ======
train       1079
valid       359
test        359
==========  ======

(valid and test get ``round(0.2 * 1797) = 359`` each, train the remaining 1079; every
class's count in every split is within one image of proportional.) Images are
normalised with the train split's mean and standard deviation. There is no augmentation
unless the ``augment`` option asks for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsnas.data.augment import check_augment
from wsnas.data.base import Dataset, build_dataset, check_options
from wsnas.data.stratify import stratified_split

#: Fractions of the images in the valid and test splits; train gets the rest.
VALID_FRACTION = 0.2
TEST_FRACTION = 0.2

_OPTIONS = {"augment": "augmentation for training: crop_flip or none (default none)"}


def digits_split_sizes(n: int) -> tuple[int, int, int]:
    """Train/valid/test sizes for ``n`` images: ``round(0.2 n)`` each for valid and test."""
    valid = round(VALID_FRACTION * n)
    test = round(TEST_FRACTION * n)
    return n - valid - test, valid, test


def load_digits_dataset(
    *,
    data_dir: str | Path | None,
    device: torch.device,
    split_seed: int,
    **options: Any,
) -> Dataset:
    """Load scikit-learn's digits as a device-resident :class:`Dataset`.

    Args:
        data_dir: ignored (the data ships with scikit-learn).
        device: where the tensors go.
        split_seed: seed of the stratified train/valid/test split.
        **options: ``augment`` (``"crop_flip"`` or ``None``; default ``None``).
    """
    from sklearn.datasets import load_digits

    check_options("digits", options, _OPTIONS)
    augment = check_augment(options.get("augment"))
    bunch = load_digits()
    images = np.rint(bunch.images).astype(np.uint8)[:, None, :, :]  # N x 1 x 8 x 8
    labels = np.asarray(bunch.target, dtype=np.int64)
    parts = stratified_split(labels, digits_split_sizes(len(labels)), split_seed)
    names = ("train", "valid", "test")
    return build_dataset(
        {name: images[idx] for name, idx in zip(names, parts, strict=True)},
        {name: labels[idx] for name, idx in zip(names, parts, strict=True)},
        max_value=16,
        device=device,
        name="digits",
        num_classes=10,
        in_channels=1,
        image_size=8,
        augment=augment,
        split_seed=split_seed,
        class_names=tuple(str(int(t)) for t in bunch.target_names),
        source="sklearn.datasets.load_digits",
    )
