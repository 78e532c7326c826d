"""CIFAR-10 read from the official "python version" files in a user-given directory.

Expected layout (as unpacked from ``cifar-10-python.tar.gz``)::

    cifar-10-batches-py/
        data_batch_1 ... data_batch_5   training images
        test_batch                      test images
        batches.meta                    optional: class names

``data_dir`` may be that folder or the folder holding it. Every batch file is a pickle
(written by Python 2) of a dict with the keys ``batch_label``, ``labels`` (a list of
ints), ``data`` (a uint8 array ``N x 3072``: per image the 1024 red, then 1024 green,
then 1024 blue values of a 32 x 32 image, each plane row by row) and ``filenames``. The
files are read with a restricted unpickler that can build nothing but numpy arrays (the
readers in :mod:`wsnas.data.official`, shared with CIFAR-100 and ImageNet16).

The training images are split into train and a seeded, stratified validation part of
``valid_size`` images (default 5000); the test split is ``test_batch``. Images are
normalised with the per-channel mean and standard deviation of the train part, computed
on load. Training is meant to use ``crop_flip`` augmentation (on by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsnas.data.augment import check_augment
from wsnas.data.base import Dataset, build_dataset, check_count, check_options
from wsnas.data.official import find_data_dir, read_label_names, read_planar_batch
from wsnas.data.stratify import stratified_split

FOLDER_NAME = "cifar-10-batches-py"
TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
NUM_CLASSES = 10
IMAGE_SIZE = 32
CHANNELS = 3
DEFAULT_VALID_SIZE = 5000
KIND = "CIFAR-10 file"  # how a file is named in messages
#: Class names used when ``batches.meta`` is absent (the official order).
DEFAULT_CLASS_NAMES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

_OPTIONS = {
    "valid_size": f"training images held out for validation (default {DEFAULT_VALID_SIZE})",
    "augment": "augmentation for training: crop_flip or none (default crop_flip)",
}


def find_cifar10_dir(data_dir: str | Path | None) -> Path:
    """The folder holding the batch files: ``data_dir`` itself or its ``cifar-10-batches-py``.

    Raises:
        WsnasError: no directory was given, it does not exist, or neither it nor its
            ``cifar-10-batches-py`` subfolder holds every expected batch file.
    """
    return find_data_dir(data_dir, dataset="cifar10", folder_name=FOLDER_NAME, files=(*TRAIN_FILES, TEST_FILE),
                         layout="the official python version")


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one official CIFAR-10 batch file.

    Returns:
        ``(images, labels)``: uint8 ``N x 3 x 32 x 32`` (channels R, G, B) and int64 ``N``.

    Raises:
        WsnasError: the file cannot be read, is corrupt, refers to anything but numpy
            arrays, or does not hold ``N x 3072`` uint8 data with ``N`` labels in 0..9.
    """
    return read_planar_batch(path, kind=KIND, channels=CHANNELS, size=IMAGE_SIZE, label_key="labels",
                             label_range=(0, NUM_CLASSES - 1))


def read_class_names(folder: Path) -> tuple[str, ...]:
    """Class names from ``batches.meta`` if present, else the official names."""
    path = folder / META_FILE
    if not path.is_file():
        return DEFAULT_CLASS_NAMES
    return read_label_names(path, kind=KIND, key="label_names", count=NUM_CLASSES)


def load_cifar10(
    *,
    data_dir: str | Path | None,
    device: torch.device,
    split_seed: int,
    **options: Any,
) -> Dataset:
    """Load CIFAR-10 from ``data_dir`` as a device-resident :class:`Dataset`.

    Args:
        data_dir: ``cifar-10-batches-py`` or the directory holding it.
        device: where the tensors go.
        split_seed: seed of the stratified train/valid split.
        **options: ``valid_size`` (default 5000) and ``augment`` (``"crop_flip"``,
            the default, or ``None``/``"none"``).
    """
    check_options("cifar10", options, _OPTIONS)
    augment = check_augment(options.get("augment", "crop_flip"))
    folder = find_cifar10_dir(data_dir)
    batches = [read_cifar_batch(folder / name) for name in TRAIN_FILES]
    train_images = np.concatenate([images for images, _ in batches])
    train_labels = np.concatenate([labels for _, labels in batches])
    del batches
    test_images, test_labels = read_cifar_batch(folder / TEST_FILE)
    class_names = read_class_names(folder)
    n = len(train_labels)
    valid_size = check_count("cifar10", "valid_size", options.get("valid_size", DEFAULT_VALID_SIZE), n)
    train_idx, valid_idx = stratified_split(train_labels, [n - valid_size, valid_size], split_seed)
    return build_dataset(
        {
            "train": train_images[train_idx],
            "valid": train_images[valid_idx],
            "test": test_images,
        },
        {"train": train_labels[train_idx], "valid": train_labels[valid_idx], "test": test_labels},
        max_value=255,
        device=device,
        name="cifar10",
        num_classes=NUM_CLASSES,
        in_channels=CHANNELS,
        image_size=IMAGE_SIZE,
        augment=augment,
        split_seed=split_seed,
        class_names=class_names,
        source=str(folder),
    )
