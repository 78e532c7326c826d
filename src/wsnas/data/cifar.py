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
files are read with a restricted unpickler that can build nothing but numpy arrays.

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

from wsnas.core.errors import WsnasError
from wsnas.core.safepickle import NUMPY_ARRAY_GLOBALS, restricted_load
from wsnas.data.augment import check_augment
from wsnas.data.base import Dataset, check_options, make_splits
from wsnas.data.stratify import stratified_split

FOLDER_NAME = "cifar-10-batches-py"
TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
NUM_CLASSES = 10
IMAGE_SIZE = 32
CHANNELS = 3
DEFAULT_VALID_SIZE = 5000
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
    expected = ", ".join((*TRAIN_FILES, TEST_FILE))
    if data_dir is None:
        raise WsnasError(
            f"dataset 'cifar10' needs a data directory holding {FOLDER_NAME} "
            f"({expected}) in the official python format"
        )
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise WsnasError(
            f"cifar10 data directory {str(root)!r} does not exist or is not a directory; "
            f"expected {FOLDER_NAME} or its parent, holding {expected}"
        )
    candidates = [root / FOLDER_NAME, root] if (root / FOLDER_NAME).is_dir() else [root]
    for folder in candidates:
        if all((folder / name).is_file() for name in (*TRAIN_FILES, TEST_FILE)):
            return folder
    folder = candidates[0]
    missing = [name for name in (*TRAIN_FILES, TEST_FILE) if not (folder / name).is_file()]
    raise WsnasError(
        f"cifar10 data directory {str(folder)!r} lacks {', '.join(missing)}; "
        f"expected {expected} (the official python version, {FOLDER_NAME})"
    )


def _field(record: dict, key: str, path: Path) -> Any:
    """``record[key]`` under a bytes or a str key."""
    for candidate in (key.encode("ascii"), key):
        if candidate in record:
            return record[candidate]
    raise WsnasError(f"CIFAR-10 file {str(path)!r} has no {key!r} entry; is it a batch file?")


def _load_pickle(path: Path) -> Any:
    try:
        with path.open("rb") as fileobj:
            return restricted_load(
                fileobj, NUMPY_ARRAY_GLOBALS, encoding="bytes", what=f"CIFAR-10 file {str(path)!r}"
            )
    except OSError as exc:
        raise WsnasError(f"cannot read CIFAR-10 file {str(path)!r}: {exc.strerror or exc}") from exc


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one official CIFAR-10 batch file.

    Returns:
        ``(images, labels)``: uint8 ``N x 3 x 32 x 32`` (channels R, G, B) and int64 ``N``.

    Raises:
        WsnasError: the file cannot be read, is corrupt, refers to anything but numpy
            arrays, or does not hold ``N x 3072`` uint8 data with ``N`` labels in 0..9.
    """
    path = Path(path)
    record = _load_pickle(path)
    if not isinstance(record, dict):
        raise WsnasError(
            f"CIFAR-10 file {str(path)!r} holds a {type(record).__name__}, expected a dict"
        )
    data = _field(record, "data", path)
    raw_labels = _field(record, "labels", path)
    pixels = CHANNELS * IMAGE_SIZE * IMAGE_SIZE
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or (data.shape[1] != pixels)
    ):
        got = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise WsnasError(
            f"CIFAR-10 file {str(path)!r} has data of {got}; expected a uint8 array N x {pixels}"
        )
    try:
        labels = np.asarray(raw_labels)
    except (TypeError, ValueError) as exc:
        raise WsnasError(f"CIFAR-10 file {str(path)!r} has unreadable labels") from exc
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise WsnasError(
            f"CIFAR-10 file {str(path)!r} has labels of shape {labels.shape} and type "
            f"{labels.dtype}; expected {data.shape[0]} integers"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise WsnasError(
            f"CIFAR-10 file {str(path)!r} has labels from {labels.min()} to {labels.max()}; "
            f"expected 0..{NUM_CLASSES - 1}"
        )
    images = data.reshape(-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE)
    return images, labels.astype(np.int64)


def read_class_names(folder: Path) -> tuple[str, ...]:
    """Class names from ``batches.meta`` if present, else the official names."""
    path = folder / META_FILE
    if not path.is_file():
        return DEFAULT_CLASS_NAMES
    record = _load_pickle(path)
    names = _field(record, "label_names", path) if isinstance(record, dict) else None
    if (
        not isinstance(names, (list, tuple))
        or len(names) != NUM_CLASSES
        or not all(isinstance(n, (bytes, str)) for n in names)
    ):
        raise WsnasError(f"CIFAR-10 file {str(path)!r} does not hold {NUM_CLASSES} label names")
    return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names)


def _check_valid_size(valid_size: Any, n_train: int) -> int:
    if (
        isinstance(valid_size, bool)
        or not isinstance(valid_size, (int, np.integer))
        or not (0 <= valid_size < n_train)
    ):
        raise WsnasError(
            f"cifar10 valid_size must be an integer from 0 to {n_train - 1} "
            f"(there are {n_train} training images), got {valid_size!r}"
        )
    return int(valid_size)


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
    valid_size = _check_valid_size(options.get("valid_size", DEFAULT_VALID_SIZE), n)
    train_idx, valid_idx = stratified_split(train_labels, [n - valid_size, valid_size], split_seed)
    splits, mean, std = make_splits(
        {
            "train": train_images[train_idx],
            "valid": train_images[valid_idx],
            "test": test_images,
        },
        {"train": train_labels[train_idx], "valid": train_labels[valid_idx], "test": test_labels},
        max_value=255,
        device=device,
    )
    return Dataset(
        name="cifar10",
        num_classes=NUM_CLASSES,
        in_channels=CHANNELS,
        image_size=IMAGE_SIZE,
        train=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        augment=augment,
        mean=mean,
        std=std,
        device=device,
        split_seed=split_seed,
        class_names=class_names,
        source=str(folder),
    )
