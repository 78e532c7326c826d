"""Dataset names and the loader behind each: the one entry point, :func:`load_dataset`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch

from wsnas.core.errors import WsnasError
from wsnas.data.base import Dataset, check_seed, resolve_device
from wsnas.data.cifar import load_cifar10
from wsnas.data.digits import load_digits_dataset


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
            ones raise :class:`WsnasError`.

    Raises:
        WsnasError: unknown name, device, seed or option, or missing/corrupt files.
    """
    loader = DATASETS.get(name)
    if loader is None:
        raise WsnasError(
            f"unknown dataset {name!r}; accepted datasets: {', '.join(sorted(DATASETS))}"
        )
    return loader(
        data_dir=data_dir,
        device=resolve_device(device),
        split_seed=check_seed(split_seed),
        **options,
    )
