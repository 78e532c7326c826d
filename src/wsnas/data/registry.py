"""Dataset names and the loader behind each: the one entry point, :func:`load_dataset`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from wsnas.core.errors import WsnasError
from wsnas.data.base import SPLIT_NAMES, Dataset, Split, check_seed, resolve_device
from wsnas.data.cifar import load_cifar10
from wsnas.data.digits import load_digits_dataset
from wsnas.data.stratify import stratified_split


class DatasetLoader(Protocol):
    """A function that builds a :class:`Dataset` (options are dataset-specific)."""

    def __call__(
        self,
        *,
        data_dir: str | Path | None,
        device: torch.device,
        split_seed: int,
        **options: Any,
    ) -> Dataset: ...


#: Dataset name -> loader. A new dataset plugs in by adding its loader here.
DATASETS: dict[str, DatasetLoader] = {
    "digits": load_digits_dataset,
    "cifar10": load_cifar10,
}


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    split_seed: int = 0,
    **options: Any,
) -> Dataset:
    """Load dataset ``name`` with every split resident on ``device``.

    Args:
        name: a key of :data:`DATASETS` (``digits``, ``cifar10``).
        data_dir: where the files are, for datasets that are not bundled.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... or a ``torch.device``.
        split_seed: seed of the stratified split into train/valid(/test); the same seed
            gives the same split on every machine.
        **options: dataset-specific options (e.g. ``valid_size``, ``augment``); unknown
            ones raise :class:`WsnasError`. One option every dataset takes: ``limit=N``
            keeps at most N images of each split, a class-balanced subset (seeded by
            ``split_seed``) in the split's order, for quick trials and tests; the
            normalisation stays that of the whole train split.

    Raises:
        WsnasError: unknown name, device, seed or option, or missing/corrupt files.
    """
    loader = DATASETS.get(name)
    if loader is None:
        raise WsnasError(
            f"unknown dataset {name!r}; accepted datasets: {', '.join(sorted(DATASETS))}"
        )
    limit = check_limit(options.pop("limit", None))
    split_seed = check_seed(split_seed)
    data = loader(data_dir=data_dir, device=resolve_device(device), split_seed=split_seed, **options)
    return data if limit is None else limit_dataset(data, limit)


def check_limit(limit: Any) -> int | None:
    """``limit`` as a positive int (strings from the command line included), or None."""
    if limit is None:
        return None
    try:
        value = int(str(limit))
    except ValueError:
        value = 0
    if value < 1:
        raise WsnasError(f"data option limit must be a positive number of images per split, got {limit!r}")
    return value


def limit_dataset(data: Dataset, limit: int) -> Dataset:
    """``data`` with at most ``limit`` images per split: a stratified subset (each class within
    one image of its share), drawn with the dataset's split seed, kept in the split's order."""
    cut = {}
    for name in SPLIT_NAMES:
        split = data.split(name)
        n = len(split.y)
        if n <= limit:
            cut[name] = split
            continue
        labels = split.y.cpu().numpy()
        keep = stratified_split(labels, (limit, n - limit), data.split_seed)[0]
        idx = torch.from_numpy(np.asarray(keep)).to(split.y.device)
        cut[name] = Split(split.x[idx], split.y[idx])
    return dataclasses.replace(data, **cut, limit=limit, valid_before_limit=len(data.valid))
