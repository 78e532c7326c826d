"""Images in a folder, one sub-folder per class: ``--data folder:DIR``.

Layout: ``DIR/<class>/<image>``; the sorted names of the (non-hidden) sub-folders are the
classes, numbered 0, 1, ... in that order. If ``DIR`` holds both a ``train/`` and a ``test/``
folder, those are the two parts, each with the same class folders (``DIR/train/<class>/...``,
``DIR/test/<class>/...``; the classes are ``train``'s, and ``test`` may lack some but has no
others). Files whose names end in a known image suffix (:data:`IMAGE_SUFFIXES`, any case) are
images; other files and hidden ones are ignored. A class folder without images is refused.

Every image is decoded with Pillow (``pip install 'wsnas[images]'``), converted to RGB and
resized to ``size`` x ``size`` pixels (option ``size``, default 32; bilinear, the aspect ratio
is not kept), so ``in_channels`` is 3 and ``image_size`` is ``size``.

Splits: with ``train/`` and ``test/``, test is ``test/`` and ``valid_size`` images (default a
tenth) are held out of ``train/`` by a seeded stratified split; otherwise all images are split
by one seeded stratified split into train, ``valid_size`` (default a tenth) and ``test_size``
(default a fifth). Every split is normalised with the train split's per-channel statistics;
no augmentation unless ``augment`` asks for one.

Cache: the decoded images are saved beside them, ``DIR/.wsnas-cache-<size>-<hash>.pt``, where
the hash covers every image's relative path, size in bytes and modification time (and the
cache's format), so any added, removed or changed image makes a new one; older caches of the
same size are then removed. The file is written to a temporary name and renamed (atomic), and
read with ``torch.load(weights_only=True)``; an unreadable or unexpected cache is ignored and
rewritten. Where ``DIR`` is not writable the images are decoded every time (with a warning).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsnas.core.errors import WsnasError
from wsnas.data.augment import check_augment
from wsnas.data.base import Dataset, build_dataset, check_count, check_options
from wsnas.data.stratify import stratified_split

PREFIX = "folder:"
DEFAULT_SIZE = 32
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
CACHE_PREFIX = ".wsnas-cache-"
CACHE_VERSION = 1
INSTALL_HINT = "pip install 'wsnas[images]'"

_OPTIONS = {
    "size": f"side in pixels every image is resized to (default {DEFAULT_SIZE})",
    "valid_size": "training images held out for validation (default a tenth)",
    "test_size": "images held out for test when DIR has no train/ and test/ (default a fifth)",
    "augment": "augmentation for training: crop_flip, crop_flip_pad2 or none (default none)",
}


def decode_image(path: Path, size: int) -> np.ndarray:
    """One image file as uint8 ``3 x size x size`` (RGB, bilinear resize), decoded by Pillow.

    Raises:
        WsnasError: Pillow is not installed, or the file is not an image it can decode.
    """
    try:
        from PIL import Image
    except ImportError:
        raise WsnasError(f"decoding images for folder datasets needs Pillow: {INSTALL_HINT}") from None
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(rgb, dtype=np.uint8)
    except Exception as exc:  # Pillow reports a bad file with many exception types
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise WsnasError(f"cannot decode image {str(path)!r}: {detail}") from exc
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _class_dirs(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir()
         if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: p.name,
    )


def scan_folder(root: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """The class names and, per part (``all``, or ``train`` and ``test``), the images with their class.

    Raises:
        WsnasError: ``root`` is no directory, has no class folders, a class folder has no
            images, or ``test/`` has a class that ``train/`` lacks.
    """
    if not root.is_dir():
        raise WsnasError(f"image folder {str(root)!r} does not exist or is not a directory; expected "
                         "one sub-folder of images per class (or train/ and test/ holding such sub-folders)")
    split_layout = (root / "train").is_dir() and (root / "test").is_dir()
    part_roots = {"train": root / "train", "test": root / "test"} if split_layout else {"all": root}
    first = next(iter(part_roots.values()))
    classes = [p.name for p in _class_dirs(first)]
    if not classes:
        raise WsnasError(f"image folder {str(first)!r} has no class sub-folders; expected one sub-folder of "
                         "images per class")
    parts: dict[str, list[tuple[Path, int]]] = {}
    for part, part_root in part_roots.items():
        entries: list[tuple[Path, int]] = []
        for folder in _class_dirs(part_root):
            if folder.name not in classes:
                raise WsnasError(f"image folder {str(folder)!r} is a class that {str(first)!r} lacks; "
                                 f"its classes are {', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''}")
            files = _images_in(folder)
            if not files:
                raise WsnasError(f"class folder {str(folder)!r} holds no images "
                                 f"(files ending in {', '.join(IMAGE_SUFFIXES)})")
            entries += [(f, classes.index(folder.name)) for f in files]
        parts[part] = entries
    return classes, parts


def _fingerprint(root: Path, size: int, parts: dict[str, list[tuple[Path, int]]]) -> str:
    digest = hashlib.sha256(f"wsnas folder cache {CACHE_VERSION} size {size}\n".encode())
    for part, entries in parts.items():
        for path, label in entries:
            stat = path.stat()
            rel = path.relative_to(root).as_posix()
            digest.update(f"{part}\t{rel}\t{label}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def cache_path(root: Path, size: int, parts: dict[str, list[tuple[Path, int]]]) -> Path:
    """Where the decoded images of ``root`` at ``size`` are cached."""
    return root / f"{CACHE_PREFIX}{size}-{_fingerprint(root, size, parts)}.pt"


def _read_cache(path: Path, classes: list[str], parts: dict[str, list[tuple[Path, int]]],
                size: int) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """The cached ``part -> (images, labels)``, or None when the cache is absent or not as expected."""
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved["version"] != CACHE_VERSION or saved["classes"] != classes:
            return None
        out = {}
        for part, entries in parts.items():
            images, labels = saved["parts"][part]["images"], saved["parts"][part]["labels"]
            if (images.dtype != torch.uint8 or tuple(images.shape) != (len(entries), 3, size, size)
                    or labels.tolist() != [label for _, label in entries]):
                return None
            out[part] = (images.numpy(), labels.numpy().astype(np.int64))
        return out
    except Exception:  # a cache is disposable: any failure means decode again
        return None


def _write_cache(path: Path, classes: list[str], decoded: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    payload = {
        "version": CACHE_VERSION,
        "classes": list(classes),
        "parts": {part: {"images": torch.from_numpy(x), "labels": torch.from_numpy(y)}
                  for part, (x, y) in decoded.items()},
    }
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{CACHE_PREFIX}tmp-", suffix=".pt")
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        warnings.warn(f"cannot write the image cache {str(path)!r} ({exc.strerror or exc}); "
                      "the images will be decoded again next time", stacklevel=3)
        return
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    size_prefix = path.name[: path.name.rindex("-") + 1]
    for stale in path.parent.glob(f"{size_prefix}*.pt"):
        if stale != path:
            stale.unlink(missing_ok=True)


def read_folder(root: Path, size: int) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]], Path]:
    """Classes and decoded ``part -> (uint8 N x 3 x size x size, int64 labels)``, from the cache
    when it is current, else decoded (:func:`decode_image`) and cached; also the cache's path."""
    classes, parts = scan_folder(root)
    cache = cache_path(root, size, parts)
    decoded = _read_cache(cache, classes, parts, size)
    if decoded is None:
        decoded = {}
        for part, entries in parts.items():
            images = np.empty((len(entries), 3, size, size), dtype=np.uint8)
            for i, (path, _) in enumerate(entries):
                images[i] = decode_image(path, size)
            decoded[part] = (images, np.array([label for _, label in entries], dtype=np.int64))
        _write_cache(cache, classes, decoded)
    return classes, decoded, cache


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise WsnasError(f"folder size must be a positive number of pixels, got {size!r}")
    return int(size)


def load_folder(
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    device: torch.device,
    split_seed: int,
    **options: Any,
) -> Dataset:
    """Load the images under ``path`` as a device-resident :class:`Dataset`.

    Args:
        path: the folder (``--data folder:DIR``).
        data_dir: not used (the folder is part of the name).
        device: where the tensors go.
        split_seed: seed of the stratified splits.
        **options: ``size`` (default 32), ``valid_size``, ``test_size`` (without
            ``train/``/``test/``) and ``augment`` (default none).
    """
    name = f"{PREFIX}{path}"
    check_options(name, options, _OPTIONS)
    augment = check_augment(options.get("augment"))
    size = _check_size(options.get("size", DEFAULT_SIZE))
    root = Path(path)
    classes, decoded, _ = read_folder(root, size)
    if "all" in decoded:
        x, y = decoded["all"]
        n = len(y)
        test_size = check_count(name, "test_size", options.get("test_size", round(n / 5)), n, "images")
        valid_size = check_count(name, "valid_size", options.get("valid_size", round(n / 10)), n - test_size,
                                 "images left after test_size")
        parts = stratified_split(y, [n - valid_size - test_size, valid_size, test_size], split_seed)
        images = {s: x[idx] for s, idx in zip(("train", "valid", "test"), parts)}
        labels = {s: y[idx] for s, idx in zip(("train", "valid", "test"), parts)}
    else:
        if "test_size" in options:
            raise WsnasError(f"{name} has train/ and test/ folders, so test_size does not apply")
        x, y = decoded["train"]
        n = len(y)
        valid_size = check_count(name, "valid_size", options.get("valid_size", round(n / 10)), n,
                                 "images in train/")
        keep, held = stratified_split(y, [n - valid_size, valid_size], split_seed)
        images = {"train": x[keep], "valid": x[held], "test": decoded["test"][0]}
        labels = {"train": y[keep], "valid": y[held], "test": decoded["test"][1]}
    return build_dataset(
        images, labels, max_value=255, device=device,
        name=name,
        num_classes=len(classes),
        in_channels=3,
        image_size=size,
        augment=augment,
        split_seed=split_seed,
        class_names=tuple(classes),
        source=str(root),
        settings={"layout": "all" if "all" in decoded else "train/test"},
    )
