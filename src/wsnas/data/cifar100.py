"""CIFAR-100 read from the official "python version" files in a user-given directory.

Expected layout (as unpacked from ``cifar-100-python.tar.gz``)::

    cifar-100-python/
        train    50,000 training images
        test     10,000 test images
        meta     optional: class names

``data_dir`` may be that folder or the folder holding it. ``train`` and ``test`` are pickles
(written by Python 2) of a dict with the keys ``batch_label``, ``fine_labels`` and
``coarse_labels`` (lists of ints), ``data`` (a uint8 array ``N x 3072``, laid out as
CIFAR-10's: per image the red, green and blue 32 x 32 planes, each row by row) and
``filenames``; ``meta`` holds ``fine_label_names`` and ``coarse_label_names``. The 100 classes
are the fine labels. Files are read with the restricted unpickler of
:mod:`wsnas.data.official` (numpy arrays only), as CIFAR-10's are.

Splits (data option ``split``):

* ``nb201`` (default), NAS-Bench-201's protocol, which its CIFAR-100 results (``x-valid``,
  ``x-test``) and so ``--truth nb201-cifar100`` use: train on all 50,000 training images;
  valid and test are two halves of the official test set, 5,000 images each. The authors fix
  the halves in ``cifar100-test-split.txt`` (their ``configs/nas-benchmark/``), which is not
  shipped here: give it as ``split_file=PATH`` to use their halves, else the test set is
  halved by a seeded stratified split (``split_seed``), so the images differ from theirs but
  the protocol is the same.
* ``holdout``: as ``cifar10``: ``valid_size`` training images (default 5,000) held out by a
  seeded stratified split; test is the whole test set.

Images are normalised with the train split's per-channel statistics, computed on load, and
trained with ``crop_flip`` (padding 4, horizontal flip), as CIFAR-10.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsnas.data.augment import check_augment
from wsnas.data.base import Dataset, build_dataset, check_options
from wsnas.data.official import (
    SPLIT_OPTIONS,
    benchmark_splits,
    find_data_dir,
    gather,
    read_label_names,
    read_planar_batch,
)

NAME = "cifar100"
FOLDER_NAME = "cifar-100-python"
TRAIN_FILE = "train"
TEST_FILE = "test"
META_FILE = "meta"
NUM_CLASSES = 100
IMAGE_SIZE = 32
CHANNELS = 3
KIND = "CIFAR-100 file"  # how a file is named in messages

_OPTIONS = {
    **SPLIT_OPTIONS,
    "augment": "augmentation for training: crop_flip or none (default crop_flip)",
}


def find_cifar100_dir(data_dir: str | Path | None) -> Path:
    """The folder holding ``train`` and ``test``: ``data_dir`` itself or its ``cifar-100-python``."""
    return find_data_dir(data_dir, dataset=NAME, folder_name=FOLDER_NAME, files=(TRAIN_FILE, TEST_FILE),
                         layout="the official python version")


def read_cifar100_file(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images, fine labels)`` of one official CIFAR-100 file: uint8 ``N x 3 x 32 x 32``, int64 ``N``."""
    return read_planar_batch(path, kind=KIND, channels=CHANNELS, size=IMAGE_SIZE, label_key="fine_labels",
                             label_range=(0, NUM_CLASSES - 1))


def load_cifar100(
    *,
    data_dir: str | Path | None,
    device: torch.device,
    split_seed: int,
    **options: Any,
) -> Dataset:
    """Load CIFAR-100 (100 fine classes) from ``data_dir`` as a device-resident :class:`Dataset`.

    Args:
        data_dir: ``cifar-100-python`` or the directory holding it.
        device: where the tensors go.
        split_seed: seed of the stratified split (the test set's halves, or the held-out part).
        **options: ``split`` (``nb201``, the default, or ``holdout``), ``split_file``
            (NB201's own halves), ``valid_size`` (``holdout`` only) and ``augment``
            (``"crop_flip"``, the default, or ``"none"``).
    """
    check_options(NAME, options, _OPTIONS)
    augment = check_augment(options.get("augment", "crop_flip"))
    folder = find_cifar100_dir(data_dir)
    sets = {"train": read_cifar100_file(folder / TRAIN_FILE), "test": read_cifar100_file(folder / TEST_FILE)}
    meta = folder / META_FILE
    class_names = (
        read_label_names(meta, kind=KIND, key="fine_label_names", count=NUM_CLASSES)
        if meta.is_file()
        else tuple(str(c) for c in range(NUM_CLASSES))
    )
    parts, settings = benchmark_splits(NAME, sets["train"][1], sets["test"][1], split_seed=split_seed,
                                       options=options)
    return build_dataset(
        *gather(sets, parts), max_value=255, device=device,
        name=NAME,
        num_classes=NUM_CLASSES,
        in_channels=CHANNELS,
        image_size=IMAGE_SIZE,
        augment=augment,
        split_seed=split_seed,
        class_names=class_names,
        source=str(folder),
        settings=settings,
    )
