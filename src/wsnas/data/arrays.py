"""Any image classification data given as numpy arrays in one ``.npz`` file: ``--data npz:PATH``,
or as arrays or tensors in memory: :func:`dataset_from_arrays` (from Python, docs/python.md).

The file (``numpy.savez`` / ``savez_compressed``) holds:

==========================  ==============================================================
``x_train``, ``y_train``    training images and labels (required)
``x_test``, ``y_test``      test images and labels (required)
``x_valid``, ``y_valid``    validation images and labels (optional; both or neither)
``class_names``             a string per class (optional)
==========================  ==============================================================

It is read with ``numpy.load(..., allow_pickle=False)``, so it can hold no Python objects; any
other key is refused, as a likely misspelling.

Images: ``N x H x W`` (one channel) or four axes. The layout of four axes is the ``layout``
option (``nchw`` or ``nhwc``), else decided from ``x_train``'s shape ``N x A x B x C``: NHWC
when ``C <= 4 < A`` (channels last), otherwise NCHW when ``A <= 4``; when neither axis is a
plausible channel count (more than 4 entries) the file is refused. So 3 x 3 images with 3
channels are taken as NCHW; say ``layout=nhwc`` when that is wrong. Images must be square and
every split must have the same channels and size. ``uint8`` images are scaled to [0, 1];
floating-point images are used as they are (they must be finite); other types are refused.

Labels: integers ``0 .. C-1`` with one per image; the number of classes is the largest label
of any split plus one.

Splits: without ``x_valid``, a seeded stratified ``valid_size`` images (default a tenth) are
held out of the training images. Every split is normalised with the train split's
per-channel mean and standard deviation. No augmentation unless ``augment`` asks for one.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsnas.core.errors import WsnasError
from wsnas.data.augment import check_augment
from wsnas.data.base import Dataset, build_dataset, check_count, check_options, check_seed, resolve_device
from wsnas.data.stratify import stratified_split

PREFIX = "npz:"
REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("x_valid", "y_valid", "class_names")
LAYOUTS = ("nchw", "nhwc")
MAX_CHANNELS = 4

_OPTIONS = {
    "valid_size": "training images held out for validation when the file has no x_valid (default a tenth)",
    "layout": "nchw or nhwc: the axes of 4-D images (default: decided from the shape)",
    "augment": "augmentation for training: crop_flip, crop_flip_pad2 or none (default none)",
}


def _open(path: Path) -> Any:
    where = f"npz file {str(path)!r}"
    if not path.is_file():
        raise WsnasError(f"{where} does not exist or is not a file; expected a numpy .npz archive "
                         f"with {', '.join(REQUIRED)}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise WsnasError(f"cannot read {where}: {' '.join(str(exc).split())} "
                         "(expected a .npz archive written by numpy.savez)") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise WsnasError(f"{where} holds a single array, expected a .npz archive with {', '.join(REQUIRED)}")
    return archive


def _member(archive: Any, key: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(archive[key])
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise WsnasError(f"npz file {str(path)!r} has an unreadable {key}: {' '.join(str(exc).split())}") from exc


def _layout(x: np.ndarray, layout: Any, where: str) -> str:
    if layout is not None:
        if layout not in LAYOUTS:
            raise WsnasError(f"{where}: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        return layout
    a, c = x.shape[1], x.shape[3]
    if c <= MAX_CHANNELS < a:
        return "nhwc"
    if a <= MAX_CHANNELS:
        return "nchw"
    raise WsnasError(f"{where}: x_train of shape {x.shape} has no channel axis (axis 1 or 3 with "
                     f"at most {MAX_CHANNELS} entries); give layout=nchw or layout=nhwc")


def _images(x: np.ndarray, key: str, layout: str, where: str) -> np.ndarray:
    where = f"{where}: {key}"
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        x = x.transpose(0, 3, 1, 2) if layout == "nhwc" else x
    else:
        raise WsnasError(f"{where} has shape {x.shape}; expected N x H x W, N x C x H x W or N x H x W x C")
    if x.dtype != np.uint8 and x.dtype.kind != "f":
        raise WsnasError(f"{where} has dtype {x.dtype}; expected uint8 (scaled to [0, 1]) or floating point")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise WsnasError(f"{where} holds NaN or infinite values")
    if x.shape[2] != x.shape[3]:
        raise WsnasError(f"{where} has images of {x.shape[2]} x {x.shape[3]} pixels ({layout}); expected square images")
    return x


def _labels(y: np.ndarray, key: str, n: int, where: str) -> np.ndarray:
    where = f"{where}: {key}"
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise WsnasError(f"{where} has shape {y.shape} and dtype {y.dtype}; expected {n} integer labels")
    if n and y.min() < 0:
        raise WsnasError(f"{where} has a negative label ({y.min()}); expected 0 .. number of classes - 1")
    return y.astype(np.int64)


def load_npz(
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    device: torch.device,
    split_seed: int,
    **options: Any,
) -> Dataset:
    """Load the arrays of the ``.npz`` file ``path`` as a device-resident :class:`Dataset`.

    Args:
        path: the file (``--data npz:PATH``).
        data_dir: not used (the path is part of the name).
        device: where the tensors go.
        split_seed: seed of the stratified train/valid split (without ``x_valid``).
        **options: ``valid_size``, ``layout`` (``nchw``/``nhwc``) and ``augment`` (default none).
    """
    check_options(f"{PREFIX}{path}", options, _OPTIONS)
    check_augment(options.get("augment"))  # before the file is read
    path = Path(path)
    with _open(path) as archive:
        keys = set(archive.files)
        unknown = sorted(keys - set(REQUIRED) - set(OPTIONAL))
        missing = [k for k in REQUIRED if k not in keys]
        if unknown or missing:
            what = f"lacks {', '.join(missing)}" if missing else f"has unknown array(s) {', '.join(unknown)}"
            raise WsnasError(f"npz file {str(path)!r} {what}; accepted arrays: {', '.join(REQUIRED + OPTIONAL)} "
                             "(x_valid and y_valid optional)")
        arrays = {key: _member(archive, key, path) for key in REQUIRED + OPTIONAL if key in keys}
    return _dataset(arrays, where=f"npz file {str(path)!r}", name=f"{PREFIX}{path}", source=str(path),
                    device=device, split_seed=split_seed, **options)


def dataset_from_arrays(
    x_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray | torch.Tensor,
    x_test: np.ndarray | torch.Tensor,
    y_test: np.ndarray | torch.Tensor,
    *,
    x_valid: np.ndarray | torch.Tensor | None = None,
    y_valid: np.ndarray | torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
    name: str = "arrays",
    device: str | torch.device = "cpu",
    split_seed: int = 0,
    valid_size: int | None = None,
    layout: str | None = None,
    augment: str | None = None,
) -> Dataset:
    """A device-resident :class:`Dataset` from images and labels in memory: numpy arrays or torch
    tensors (on any device), read exactly as the arrays of an ``npz:PATH`` file (the module
    docstring: shapes, layouts, dtypes, labels, the held-out valid split, the normalisation);
    ``valid_size``, ``layout`` and ``augment`` are that loader's options.

    ``name`` is what the run records as the dataset's name (a run on it cannot be reloaded by a
    command, which knows no such dataset; a run from Python needs nothing else). Bad arrays are a
    one-line :class:`WsnasError` naming the array, as for a file.
    """
    given = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
             "x_valid": x_valid, "y_valid": y_valid}
    arrays = {k: _numpy(v) for k, v in given.items() if v is not None}
    if class_names is not None:
        arrays["class_names"] = np.asarray(list(class_names), dtype=str)
    options = {k: v for k, v in (("valid_size", valid_size), ("layout", layout), ("augment", augment))
               if v is not None}
    return _dataset(arrays, where=f"dataset {name!r}", name=name, source="", device=resolve_device(device),
                    split_seed=check_seed(split_seed), **options)


def _numpy(values: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _dataset(arrays: dict[str, np.ndarray], *, where: str, name: str, source: str, device: torch.device,
             split_seed: int, **options: Any) -> Dataset:
    """The :class:`Dataset` of ``arrays`` (the keys of :data:`REQUIRED` and :data:`OPTIONAL`);
    ``where`` names them in messages."""
    augment = check_augment(options.get("augment"))
    keys = set(arrays)
    if ("x_valid" in keys) != ("y_valid" in keys):
        raise WsnasError(f"{where} has only one of x_valid and y_valid; give both or neither")
    names = ["train", "test"] + (["valid"] if "x_valid" in keys else [])
    raw = {split: arrays[f"x_{split}"] for split in names}
    layout = _layout(raw["train"], options.get("layout"), where) if raw["train"].ndim == 4 else "nchw"
    images = {split: _images(raw[split], f"x_{split}", layout, where) for split in names}
    labels = {split: _labels(arrays[f"y_{split}"], f"y_{split}", len(images[split]), where) for split in names}
    class_names = arrays.get("class_names")
    shape = images["train"].shape[1:]
    for split in names:
        if images[split].shape[1:] != shape:
            raise WsnasError(f"{where}: x_{split} images are {images[split].shape[1:]} (C, H, W) but "
                             f"x_train's are {shape}")
        if images[split].dtype != images["train"].dtype:
            raise WsnasError(f"{where}: x_{split} has dtype {images[split].dtype} but x_train "
                             f"{images['train'].dtype}")
    if len(labels["train"]) == 0:
        raise WsnasError(f"{where} has no training images")
    if "valid" in images:
        if "valid_size" in options:
            raise WsnasError(f"{where} has x_valid, so valid_size does not apply")
    else:
        n = len(labels["train"])
        valid_size = check_count(name, "valid_size", options.get("valid_size", round(n / 10)), n)
        keep, held = stratified_split(labels["train"], [n - valid_size, valid_size], split_seed)
        images["valid"], labels["valid"] = images["train"][held], labels["train"][held]
        images["train"], labels["train"] = images["train"][keep], labels["train"][keep]
    num_classes = 1 + max(int(y.max()) for y in labels.values() if len(y))
    if class_names is None:
        class_names = tuple(str(c) for c in range(num_classes))
    elif class_names.shape != (num_classes,) or class_names.dtype.kind not in "US":
        raise WsnasError(f"{where}: class_names has shape {class_names.shape} and dtype "
                         f"{class_names.dtype}; expected {num_classes} strings")
    else:
        class_names = tuple(c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c)
                            for c in class_names.tolist())
    uint8 = images["train"].dtype == np.uint8
    return build_dataset(
        images, labels, max_value=255 if uint8 else 1, device=device,
        name=name,
        num_classes=num_classes,
        in_channels=int(shape[0]),
        image_size=int(shape[1]),
        augment=augment,
        split_seed=split_seed,
        class_names=class_names,
        source=source,
        settings={"layout": layout} if raw["train"].ndim == 4 else {},
    )
