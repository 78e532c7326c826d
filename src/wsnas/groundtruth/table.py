"""A ground-truth table: one accuracy per architecture, however it was obtained.

Tables come from the results store (architectures the user trained from scratch), from a
CSV file, or from a built-in published benchmark table. Metrics only ever see this shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from wsnas.core.errors import WsnasError


@dataclass
class TruthTable:
    """Ground-truth accuracy of a set of architectures.

    Attributes:
        space: name of the search space (e.g. ``tiny64``).
        dataset: name of the dataset the accuracies were measured on.
        archs: canonical architecture strings, one per row.
        indices: integer index of each architecture in its space (same order as ``archs``).
        accuracy: mean accuracy per architecture, as a fraction in [0, 1].
        per_seed: optional accuracy of each independent training, seed -> array like
            ``accuracy`` (NaN where a seed lacks an architecture).
        source: where the table came from (a path or a built-in name), for reports.
    """

    space: str
    dataset: str
    archs: list[str]
    indices: list[int]
    accuracy: np.ndarray
    per_seed: dict[int, np.ndarray] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        self.accuracy = np.asarray(self.accuracy, dtype=float)
        n = len(self.archs)
        if len(self.indices) != n or self.accuracy.shape != (n,):
            raise ValueError("archs, indices and accuracy must have the same length")

    def __len__(self) -> int:
        return len(self.archs)

    def accuracy_of(self, names: Sequence[str]) -> dict[str, float]:
        """Each of ``names`` (as :meth:`position` reads them) -> its accuracy; NaN for one the table
        lacks."""
        out = {}
        for name in names:
            try:
                out[name] = float(self.accuracy[self.position(name)])
            except (KeyError, WsnasError):
                out[name] = math.nan
        return out

    def position(self, key: str | int) -> int:
        """Row of an architecture given by canonical string or integer index (as int or str)."""
        lookup = self._lookup()
        if isinstance(key, str):
            k = key.strip()
            if k in lookup["arch"]:
                return lookup["arch"][k]
            if k.lstrip("-").isdigit() and int(k) in lookup["index"]:
                return lookup["index"][int(k)]
        elif int(key) in lookup["index"]:
            return lookup["index"][int(key)]
        raise WsnasError(
            f"architecture {key!r} is not in the ground truth {self.source or self.dataset!r} "
            f"({len(self)} architectures, e.g. {self.archs[0]!r} or index {self.indices[0]})"
        )

    def _lookup(self) -> dict[str, dict]:
        cache = getattr(self, "_cache", None)
        if cache is None:
            cache = {
                "arch": {a: i for i, a in enumerate(self.archs)},
                "index": {int(x): i for i, x in enumerate(self.indices)},
            }
            self._cache = cache
        return cache

    def ranks(self) -> np.ndarray:
        """Ground-truth rank of each row: 1 is the best; ties share the best rank."""
        acc = self.accuracy
        return 1 + (acc[None, :] > acc[:, None]).sum(axis=1)
