"""Magnitude selection: the architecture the architecture weights rank highest."""

from __future__ import annotations

from wsnas.core.errors import WsnasError
from wsnas.data import Dataset
from wsnas.selection.base import Selector
from wsnas.spaces import Arch


def select_magnitude(strategy) -> Arch:
    """The argmax architecture of a differentiable strategy's current weights (decided edges kept)."""
    if not strategy.differentiable:
        raise WsnasError(f"magnitude selection needs a differentiable search, not {strategy.name!r}")
    weights = strategy.arch.selection_weights()
    for e, op in strategy.decided.items():
        if op is not None:
            weights[e] = 0.0
            weights[e, op] = 1.0
    keep = None
    if any(op is None for op in strategy.decided.values()):
        keep = [e for e in range(len(weights)) if strategy.decided.get(e, 0) is not None]
    if keep is not None:
        return strategy.relaxation.discretize(weights, exclude=strategy.exclude, keep=keep)
    return strategy.relaxation.discretize(weights, exclude=strategy.exclude)


class MagnitudeSelector(Selector):
    """The argmax of the architecture weights per edge; reads the supernet, changes nothing."""

    name = "magnitude"

    def select(self, trainer, data: Dataset, *, progress: bool = True) -> Arch:
        return select_magnitude(trainer.strategy)


__all__ = ["MagnitudeSelector", "select_magnitude"]
