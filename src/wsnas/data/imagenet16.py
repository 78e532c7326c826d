"""ImageNet16-120: NAS-Bench-201's 120-class subset of the 16 x 16 down-sampled ImageNet.

The down-sampled ImageNet of Chrabaszcz, Loshchilov & Hutter (2017), as the NAS-Bench-201
authors use it (their ``ImageNet16`` folder)::

    ImageNet16/
        train_data_batch_1 ... train_data_batch_10   1,281,167 training images
        val_data                                     50,000 validation images

``data_dir`` may be that folder or the folder holding it. Each file is a pickle of a dict
with ``data`` (a uint8 array ``N x 768``: per image the red, green and blue 16 x 16 planes
one after the other, each row by row) and ``labels`` (a list of ints, 1..1000; the training
batches also hold a ``mean``, not used). Files are read with the restricted unpickler of
:mod:`wsnas.data.official` (numpy arrays only), one at a time, keeping only the images of
classes 1..120, whose labels become 0..119: 151,700 training and 6,000 validation images,
the counts the authors' code asserts.

Splits (data option ``split``), as for ``cifar100``:

* ``nb201`` (default), NAS-Bench-201's protocol behind its ``x-valid``/``x-test`` results and
  so ``--truth nb201-ImageNet16-120``: train on all 151,700 training images; valid and test
  are two halves (3,000 each) of the 6,000 validation images. The authors fix the halves in
  ``imagenet-16-120-test-split.txt`` (their ``configs/nas-benchmark/``; indices into the
  6,000 images in file order), which is not shipped here: give it as ``split_file=PATH``,
  else the halves are a seeded stratified split (``split_seed``).
* ``holdout``: ``valid_size`` training images (default a tenth) held out; test is all 6,000.

Normalisation uses NAS-Bench-201's fixed ImageNet16 statistics, not the train split's (see
:data:`MEAN`); training uses ``crop_flip_pad2`` (random crop with padding 2, horizontal flip),
their ImageNet16 augmentation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsnas.data.augment import check_augment
from wsnas.data.base import Dataset, build_dataset, check_options
from wsnas.data.official import SPLIT_OPTIONS, benchmark_splits, find_data_dir, gather, read_planar_batch

NAME = "ImageNet16-120"
FOLDER_NAME = "ImageNet16"
TRAIN_FILES: tuple[str, ...] = tuple(f"train_data_batch_{i}" for i in range(1, 11))
VALID_FILE = "val_data"
NUM_CLASSES = 120
ALL_CLASSES = 1000
IMAGE_SIZE = 16
CHANNELS = 3
KIND = "ImageNet16 file"  # how a file is named in messages

# The per-channel mean and std NAS-Bench-201's code normalises every ImageNet16 variant with:
# get_datasets() in xautodl/datasets/get_dataset_with_transform.py of D-X-Y/AutoDL-Projects
# (values on the 0..255 scale there: mean 122.68, 116.66, 104.01; std 63.22, 61.26, 65.09).
MEAN: tuple[float, ...] = (122.68 / 255, 116.66 / 255, 104.01 / 255)
STD: tuple[float, ...] = (63.22 / 255, 61.26 / 255, 65.09 / 255)

_OPTIONS = {
    **SPLIT_OPTIONS,
    "augment": "augmentation for training: crop_flip_pad2, crop_flip or none (default crop_flip_pad2)",
}


def find_imagenet16_dir(data_dir: str | Path | None) -> Path:
    """The folder holding the ten training batches and ``val_data``: ``data_dir`` or its ``ImageNet16``."""
    return find_data_dir(data_dir, dataset=NAME, folder_name=FOLDER_NAME, files=(*TRAIN_FILES, VALID_FILE),
                         layout="the down-sampled ImageNet 16x16 pickles")


def read_imagenet16_file(path: str | Path, classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """The images of classes ``1..classes`` in one file, ``(uint8 N x 3 x 16 x 16, int64 labels 0..classes-1)``."""
    images, labels = read_planar_batch(path, kind=KIND, channels=CHANNELS, size=IMAGE_SIZE, label_key="labels",
                                       label_range=(1, ALL_CLASSES))
    keep = labels <= classes
    return images[keep], labels[keep] - 1


def load_imagenet16_120(
    *,
    data_dir: str | Path | None,
    device: torch.device,
    split_seed: int,
    **options: Any,
) -> Dataset:
    """Load ImageNet16-120 from ``data_dir`` as a device-resident :class:`Dataset`.

    Args:
        data_dir: ``ImageNet16`` or the directory holding it.
        device: where the tensors go.
        split_seed: seed of the stratified split (the validation images' halves, or the
            held-out part).
        **options: ``split`` (``nb201``, the default, or ``holdout``), ``split_file``
            (NB201's own halves), ``valid_size`` (``holdout`` only) and ``augment``
            (``"crop_flip_pad2"``, the default, ``"crop_flip"`` or ``"none"``).
    """
    check_options(NAME, options, _OPTIONS)
    augment = check_augment(options.get("augment", "crop_flip_pad2"))
    folder = find_imagenet16_dir(data_dir)
    batches = [read_imagenet16_file(folder / name) for name in TRAIN_FILES]
    sets = {
        "train": (np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])),
        "test": read_imagenet16_file(folder / VALID_FILE),
    }
    del batches
    parts, settings = benchmark_splits(NAME, sets["train"][1], sets["test"][1], split_seed=split_seed,
                                       options=options)
    return build_dataset(
        *gather(sets, parts), max_value=255, device=device, stats=(MEAN, STD),
        name=NAME,
        num_classes=NUM_CLASSES,
        in_channels=CHANNELS,
        image_size=IMAGE_SIZE,
        augment=augment,
        split_seed=split_seed,
        class_names=tuple(str(c) for c in range(1, NUM_CLASSES + 1)),
        source=str(folder),
        settings=settings,
    )
