"""Magnitude selection: the architecture the architecture weights rank highest."""

from __future__ import annotations

from wsnas.data import Dataset
from wsnas.selection.base import Selector, select_magnitude
from wsnas.spaces import Arch


class MagnitudeSelector(Selector):
    """The argmax of the architecture weights per edge; reads the supernet, changes nothing."""

    name = "magnitude"

    def select(self, trainer, data: Dataset, *, progress: bool = True) -> Arch:
        return select_magnitude(trainer.strategy)


__all__ = ["MagnitudeSelector", "select_magnitude"]
