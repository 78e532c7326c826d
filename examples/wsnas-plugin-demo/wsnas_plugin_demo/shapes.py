"""The dataset ``shapes``: grey ``size x size`` images of a square, a disc, a cross or a ring, each
drawn at a random place and size with noise. Nothing is downloaded: the images come from a seed
(option ``seed``), so every machine draws the same ones; the split seed only decides which
training images are held out for validation.

Options (``--data-option KEY=VALUE``): ``per_class`` images of each class for training and as
many for the test split (default 150), ``size`` (default 12, at least 8), ``seed`` (default 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsnas.core.errors import WsnasError
from wsnas.data import Dataset, dataset_from_arrays
from wsnas.data.base import check_options

CLASSES = ("square", "disc", "cross", "ring")
OPTIONS = {"per_class": "images of each class in train and in test (default 150)",
           "size": "image side in pixels, at least 8 (default 12)",
           "seed": "seed of the drawing (default 0)"}


def draw(per_class: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of every class (uint8, ``N x size x size``) in shuffled order, and labels."""
    labels = rng.permutation(np.repeat(np.arange(len(CLASSES)), per_class))
    rows, cols = np.mgrid[0:size, 0:size]
    images = np.empty((len(labels), size, size), dtype=np.uint8)
    for i, label in enumerate(labels):
        r = int(rng.integers(2, size // 3 + 1))  # the shape's half-width
        cy, cx = rng.integers(r, size - r, size=2)
        dy, dx = np.abs(rows - cy), np.abs(cols - cx)
        ring = dy**2 + dx**2
        mask = [np.maximum(dy, dx) == r,  # square (its outline)
                ring <= r * r,  # disc
                ((dy == 0) & (dx <= r)) | ((dx == 0) & (dy <= r)),  # cross
                (ring <= r * r) & (ring >= (r - 1) ** 2)][label]  # ring
        noise = rng.normal(40.0, 25.0, size=(size, size))
        images[i] = np.clip(noise + 180.0 * mask, 0, 255).astype(np.uint8)
    return images, labels


def load_shapes(*, data_dir: str | Path | None = None, device: torch.device, split_seed: int,
                **options: Any) -> Dataset:
    """The wsnas dataset loader (``data_dir`` is not used): train and test drawn apart, a tenth of
    the training images held out for validation (stratified, by ``split_seed``)."""
    check_options("shapes", options, OPTIONS)
    values = {}
    for key, default, low in (("per_class", 150, 2), ("size", 12, 8), ("seed", 0, 0)):
        value = options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise WsnasError(f"dataset shapes: {key} must be an integer of at least {low}, got {value!r}")
        values[key] = value
    rng = np.random.default_rng(values["seed"])
    x_train, y_train = draw(values["per_class"], values["size"], rng)
    x_test, y_test = draw(values["per_class"], values["size"], rng)
    return dataset_from_arrays(x_train, y_train, x_test, y_test, class_names=CLASSES, name="shapes",
                               device=device, split_seed=split_seed)
