"""Datasets resident on the compute device, mini-batching and on-device augmentation.

Typical use::

    from wsnas.data import iterate_batches, load_dataset

    data = load_dataset("digits", device="cpu", split_seed=0)
    gen = torch.Generator().manual_seed(1)
    for x, y in iterate_batches(data.train, 64, shuffle=True, generator=gen,
                                augment=data.augment):
        ...
"""

from wsnas.data.augment import (
    AUGMENTATIONS,
    CropFlipParams,
    apply_augmentation,
    check_augment,
    crop_flip,
    cutout,
    random_crop_flip,
    sample_crop_flip,
)
from wsnas.data.base import SPLIT_NAMES, Dataset, Split, resolve_device
from wsnas.data.batching import epoch_order, iterate_batches, num_batches
from wsnas.data.cifar import find_cifar10_dir, load_cifar10, read_cifar_batch
from wsnas.data.digits import digits_split_sizes, load_digits_dataset
from wsnas.data.registry import DATASETS, DatasetLoader, load_dataset
from wsnas.data.stratify import proportional_counts, stratified_split

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "SPLIT_NAMES",
    "CropFlipParams",
    "Dataset",
    "DatasetLoader",
    "Split",
    "apply_augmentation",
    "check_augment",
    "crop_flip",
    "cutout",
    "digits_split_sizes",
    "epoch_order",
    "find_cifar10_dir",
    "iterate_batches",
    "load_cifar10",
    "load_dataset",
    "load_digits_dataset",
    "num_batches",
    "proportional_counts",
    "random_crop_flip",
    "read_cifar_batch",
    "resolve_device",
    "sample_crop_flip",
    "stratified_split",
]
