"""Datasets resident on the compute device, mini-batching and on-device augmentation.

Datasets: ``digits`` (bundled), ``cifar10``, ``cifar100`` and ``ImageNet16-120`` (their
authors' files), ``npz:PATH`` (numpy arrays; :func:`dataset_from_arrays` for arrays or tensors
in memory), ``folder:DIR`` (image files), and plugins
(``package.module:function`` or an entry point of the group ``wsnas.datasets``); see
:mod:`wsnas.data.registry`.

Typical use::

    from wsnas.data import iterate_batches, load_dataset

    data = load_dataset("digits", device="cpu", split_seed=0)
    gen = torch.Generator().manual_seed(1)
    for x, y in iterate_batches(data.train, 64, shuffle=True, generator=gen,
                                augment=data.augment):
        ...
"""

from wsnas.data.arrays import dataset_from_arrays, load_npz
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
from wsnas.data.base import SPLIT_NAMES, Dataset, Split, build_dataset, make_splits, resolve_device
from wsnas.data.batching import epoch_order, iterate_batches, num_batches
from wsnas.data.cifar import find_cifar10_dir, load_cifar10, read_cifar_batch
from wsnas.data.cifar100 import load_cifar100, read_cifar100_file
from wsnas.data.digits import digits_split_sizes, load_digits_dataset
from wsnas.data.folder import decode_image, load_folder
from wsnas.data.imagenet16 import load_imagenet16_120, read_imagenet16_file
from wsnas.data.official import read_nb201_split_file
from wsnas.data.registry import (
    DATASETS,
    ENTRY_POINT_GROUP,
    NAME_FORMS,
    DatasetLoader,
    accepted_names,
    load_dataset,
    plugin_datasets,
    reload_described,
    resolve_dataset,
)
from wsnas.data.stratify import proportional_counts, stratified_split

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "ENTRY_POINT_GROUP",
    "NAME_FORMS",
    "SPLIT_NAMES",
    "CropFlipParams",
    "Dataset",
    "DatasetLoader",
    "Split",
    "accepted_names",
    "apply_augmentation",
    "build_dataset",
    "check_augment",
    "crop_flip",
    "cutout",
    "dataset_from_arrays",
    "decode_image",
    "digits_split_sizes",
    "epoch_order",
    "find_cifar10_dir",
    "iterate_batches",
    "load_cifar10",
    "load_cifar100",
    "load_dataset",
    "load_digits_dataset",
    "load_folder",
    "load_imagenet16_120",
    "load_npz",
    "make_splits",
    "num_batches",
    "plugin_datasets",
    "reload_described",
    "proportional_counts",
    "random_crop_flip",
    "read_cifar100_file",
    "read_cifar_batch",
    "read_imagenet16_file",
    "read_nb201_split_file",
    "resolve_dataset",
    "resolve_device",
    "sample_crop_flip",
    "stratified_split",
]
