"""What the readers of datasets distributed as their authors' files share.

* :func:`find_data_dir`: the folder holding a dataset's files, ``data_dir`` itself or its
  conventional sub-folder (``cifar-10-batches-py``, ``cifar-100-python``, ``ImageNet16``),
  with one-line errors naming what is missing.
* :func:`load_record`, :func:`record_field`, :func:`read_planar_batch`,
  :func:`read_label_names`: pickled batch files (CIFAR-10, CIFAR-100, the down-sampled
  ImageNet) read with :func:`wsnas.core.safepickle.restricted_load`, which builds nothing but
  numpy arrays, and Python 2 strings kept as bytes (``encoding="bytes"``); keys are looked
  up as bytes or as str. A batch's ``data`` is a uint8 array with one row per image: the
  image's channel planes one after the other (all red values, then green, then blue), each
  plane row by row, which reshapes to ``N x C x H x W``.
* :func:`benchmark_splits`: the train/valid/test split of a dataset with an official
  training and test set, either NAS-Bench-201's (``split=nb201``: every training image
  trains, and the test set is halved into valid and test) or a held-out part of the training
  set (``split=holdout``, as ``cifar10`` does); :func:`read_nb201_split_file` reads the
  authors' own halves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wsnas.core.errors import WsnasError
from wsnas.core.safepickle import NUMPY_ARRAY_GLOBALS, restricted_load
from wsnas.data.base import check_count
from wsnas.data.stratify import stratified_split

#: Ways to split a dataset that has an official training set and test set.
SPLITS = ("nb201", "holdout")

#: Data options :func:`benchmark_splits` reads, with a short description for messages.
SPLIT_OPTIONS = {
    "split": "nb201 (train on every training image; valid and test are halves of the test set; "
             "default) or holdout (valid held out of the training images; test is the test set)",
    "split_file": "with split=nb201: the authors' split file (JSON with xvalid and xtest indices) "
                  "instead of seeded stratified halves",
    "valid_size": "with split=holdout: training images held out for validation (default a tenth)",
}


def find_data_dir(
    data_dir: str | Path | None,
    *,
    dataset: str,
    folder_name: str,
    files: Sequence[str],
    layout: str,
) -> Path:
    """The folder holding every one of ``files``: ``data_dir`` itself or its ``folder_name``.

    Args:
        data_dir: what the user gave (``--data-dir``).
        dataset: the dataset's name, for messages.
        folder_name: the conventional name of the folder (e.g. ``cifar-10-batches-py``).
        files: the file names that must be there.
        layout: how the files are described in messages (e.g. ``the official python version``).

    Raises:
        WsnasError: no directory was given, it does not exist, or neither it nor its
            ``folder_name`` sub-folder holds every expected file.
    """
    expected = ", ".join(files)
    if data_dir is None:
        raise WsnasError(
            f"dataset {dataset!r} needs a data directory holding {folder_name} "
            f"({expected}) in {layout}"
        )
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise WsnasError(
            f"{dataset} data directory {str(root)!r} does not exist or is not a directory; "
            f"expected {folder_name} or its parent, holding {expected}"
        )
    candidates = [root / folder_name, root] if (root / folder_name).is_dir() else [root]
    for folder in candidates:
        if all((folder / name).is_file() for name in files):
            return folder
    folder = candidates[0]
    missing = [name for name in files if not (folder / name).is_file()]
    raise WsnasError(
        f"{dataset} data directory {str(folder)!r} lacks {', '.join(missing)}; "
        f"expected {expected} ({layout}, {folder_name})"
    )


def load_record(path: Path, kind: str) -> dict:
    """Unpickle ``path`` (numpy arrays only) and check that it holds a dict.

    ``kind`` names the file in messages, e.g. ``"CIFAR-10 file"``.
    """
    what = f"{kind} {str(path)!r}"
    try:
        with path.open("rb") as fileobj:
            record = restricted_load(fileobj, NUMPY_ARRAY_GLOBALS, encoding="bytes", what=what)
    except OSError as exc:
        raise WsnasError(f"cannot read {what}: {exc.strerror or exc}") from exc
    if not isinstance(record, dict):
        raise WsnasError(f"{what} holds a {type(record).__name__}, expected a dict")
    return record


def record_field(record: Mapping, key: str, path: Path, kind: str) -> Any:
    """``record[key]`` under a bytes or a str key."""
    for candidate in (key.encode("ascii"), key):
        if candidate in record:
            return record[candidate]
    raise WsnasError(f"{kind} {str(path)!r} has no {key!r} entry; is it a batch file?")


def read_planar_batch(
    path: str | Path,
    *,
    kind: str,
    channels: int,
    size: int,
    label_key: str,
    label_range: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickled batch of channel-planar images.

    Args:
        path: the file.
        kind: how the file is named in messages (``"CIFAR-10 file"``).
        channels, size: every image is ``channels x size x size``.
        label_key: the entry holding the labels (``labels``, ``fine_labels``).
        label_range: the smallest and the largest valid label.

    Returns:
        ``(images, labels)``: uint8 ``N x C x H x W`` and int64 ``N``.

    Raises:
        WsnasError: the file cannot be read, is corrupt, refers to anything but numpy
            arrays, or does not hold ``N x (C*H*W)`` uint8 data with ``N`` labels in range.
    """
    path = Path(path)
    record = load_record(path, kind)
    data = record_field(record, "data", path, kind)
    raw_labels = record_field(record, label_key, path, kind)
    pixels = channels * size * size
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != pixels:
        got = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise WsnasError(f"{kind} {str(path)!r} has data of {got}; expected a uint8 array N x {pixels}")
    try:
        labels = np.asarray(raw_labels)
    except (TypeError, ValueError) as exc:
        raise WsnasError(f"{kind} {str(path)!r} has unreadable labels") from exc
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise WsnasError(
            f"{kind} {str(path)!r} has {label_key} of shape {labels.shape} and type "
            f"{labels.dtype}; expected {data.shape[0]} integers"
        )
    low, high = label_range
    if labels.size and (labels.min() < low or labels.max() > high):
        raise WsnasError(
            f"{kind} {str(path)!r} has {label_key} from {labels.min()} to {labels.max()}; "
            f"expected {low}..{high}"
        )
    return data.reshape(-1, channels, size, size), labels.astype(np.int64)


def read_label_names(path: Path, *, kind: str, key: str, count: int) -> tuple[str, ...]:
    """The ``count`` class names under ``key`` of the pickled meta file ``path``."""
    record = load_record(path, kind)
    names = record_field(record, key, path, kind)
    if (
        not isinstance(names, (list, tuple))
        or len(names) != count
        or not all(isinstance(n, (bytes, str)) for n in names)
    ):
        raise WsnasError(f"{kind} {str(path)!r} does not hold {count} label names under {key!r}")
    return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names)


# --------------------------------------------------------------------------------------------
# NAS-Bench-201's valid/test halves


def _indices(value: Any) -> list[int] | None:
    """The index list of an NB201 split entry (``["int", ["1", "3", ...]]`` or a plain list)."""
    if isinstance(value, list) and len(value) == 2 and value[0] == "int" and isinstance(value[1], list):
        value = value[1]
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        if isinstance(item, bool):
            return None
        if isinstance(item, int):
            out.append(item)
        elif isinstance(item, str) and item.strip().isdigit():
            out.append(int(item))
        else:
            return None
    return out


def read_nb201_split_file(path: str | Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The valid and test halves of an ``n``-image test set from NAS-Bench-201's split file.

    The authors' files (``cifar100-test-split.txt``, ``imagenet-16-120-test-split.txt`` in
    their ``configs/nas-benchmark/``) are JSON objects whose ``xvalid`` and ``xtest`` entries
    are ``["int", [indices as strings]]``: positions in the official test set (for
    ImageNet16-120, in ``val_data`` after keeping classes 1..120). Plain lists of integers are
    accepted too.

    Returns:
        ``(valid, test)``: sorted int64 index arrays.

    Raises:
        WsnasError: unreadable file, not such JSON, an index out of ``0..n-1``, a repeated
            index, or an empty half.
    """
    path = Path(path).expanduser()
    where = f"NB201 split file {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WsnasError(f"cannot read {where}: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    halves = [_indices(record.get(key)) if isinstance(record, dict) else None for key in ("xvalid", "xtest")]
    if halves[0] is None or halves[1] is None:
        raise WsnasError(f"{where} is not a JSON object with xvalid and xtest lists of indices")
    valid, test = (np.asarray(sorted(h), dtype=np.int64) for h in halves)
    for name, idx in (("xvalid", valid), ("xtest", test)):
        if idx.size == 0:
            raise WsnasError(f"{where} has an empty {name}")
        if idx.min() < 0 or idx.max() >= n:
            raise WsnasError(f"{where} has {name} indices up to {idx.max()}; the test set has {n} images (0..{n - 1})")
    both = np.concatenate([valid, test])
    if len(np.unique(both)) != len(both):
        raise WsnasError(f"{where} lists an index twice (xvalid and xtest must be disjoint)")
    return valid, test


def benchmark_splits(
    dataset: str,
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    *,
    split_seed: int,
    options: Mapping[str, Any],
) -> tuple[dict[str, tuple[str, np.ndarray | None]], dict[str, Any]]:
    """Where each split's images come from, by the ``split`` data option.

    * ``split=nb201`` (default): train is every training image; valid and test are the two
      halves of the test set (``n // 2`` and the rest): stratified by class and seeded by
      ``split_seed``, or the authors' halves read from ``split_file``.
    * ``split=holdout``: train and valid are a seeded stratified split of the training images
      (``valid_size``, default a tenth of them); test is the whole test set.

    Returns:
        ``({"train"|"valid"|"test": (source, indices)}, settings)``: ``source`` is ``"train"``
        or ``"test"`` (which official set the indices point into; ``None``: all of it, in
        order); ``settings`` records the choice for :meth:`Dataset.describe`.
    """
    split = options.get("split", "nb201")
    if split not in SPLITS:
        raise WsnasError(f"{dataset} split must be one of {', '.join(SPLITS)}, got {split!r}")
    n_train, n_test = len(train_labels), len(test_labels)
    if split == "nb201":
        if "valid_size" in options:
            raise WsnasError(
                f"{dataset} valid_size applies to split=holdout; with split=nb201 (the default) "
                "valid and test are the two halves of the test set"
            )
        split_file = options.get("split_file")
        if split_file is not None:
            valid, test = read_nb201_split_file(str(split_file), n_test)
            settings = {"split": split, "split_file": str(Path(str(split_file)).expanduser().resolve())}
        else:
            valid, test = stratified_split(test_labels, [n_test // 2, n_test - n_test // 2], split_seed)
            settings = {"split": split}
        return {"train": ("train", None), "valid": ("test", valid), "test": ("test", test)}, settings
    if "split_file" in options:
        raise WsnasError(f"{dataset} split_file applies to split=nb201, not split=holdout")
    valid_size = check_count(dataset, "valid_size", options.get("valid_size", round(n_train / 10)), n_train)
    train, valid = stratified_split(train_labels, [n_train - valid_size, valid_size], split_seed)
    return (
        {"train": ("train", train), "valid": ("train", valid), "test": ("test", None)},
        {"split": split},
    )


def gather(
    sets: Mapping[str, tuple[np.ndarray, np.ndarray]], parts: Mapping[str, tuple[str, np.ndarray | None]]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The images and labels of every split of ``parts`` (from :func:`benchmark_splits`), taken
    from ``sets`` (``"train"``/``"test"`` -> ``(images, labels)``); a whole set is not copied."""
    images, labels = {}, {}
    for name, (source, idx) in parts.items():
        x, y = sets[source]
        images[name], labels[name] = (x, y) if idx is None else (x[idx], y[idx])
    return images, labels
