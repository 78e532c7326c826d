"""Supernet-training strategies. ``get_strategy(name, **options)`` builds one by name.

:data:`STRATEGIES` is the registry (name -> class); :func:`strategy_names` lists its names,
all of them or only the differentiable searches (``wsnas search``) or only the single-path
strategies (``wsnas supernet``). Partial sharing needs no strategy of its own here: the trainer
asks the user's strategy for :meth:`~wsnas.strategies.base.Strategy.with_sharing`.

How to add a strategy: one new module with a :class:`~wsnas.strategies.base.Strategy`
subclass (``name``, ``setup``, ``step``, ``state_dict``/``load_state_dict``, ``describe``,
and whichever optional hooks it needs; see :mod:`wsnas.strategies.base`) and one line in
:data:`STRATEGIES`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from wsnas.core.errors import WsnasError
from wsnas.strategies.base import Recipe, SinglePathStrategy, StepResult, Strategy, StrategyContext
from wsnas.strategies.differentiable import DartsStrategy, GdasStrategy, PcDartsStrategy
from wsnas.strategies.groups import GroupStrategy
from wsnas.strategies.pada import FairNasStrategy, PadaDataStrategy, PadaPathStrategy, PadaStrategy
from wsnas.strategies.uniform import (
    FixedOrderSampler,
    RoundRobinSampler,
    ShuffleSampler,
    UniformSampler,
)

STRATEGIES: dict[str, type[Strategy]] = {
    "round_robin": RoundRobinSampler,
    "fixed_order": FixedOrderSampler,
    "shuffle": ShuffleSampler,
    "uniform": UniformSampler,
    "pada": PadaStrategy,
    "pada_path": PadaPathStrategy,
    "pada_data": PadaDataStrategy,
    "fairnas": FairNasStrategy,
    "darts": DartsStrategy,
    "gdas": GdasStrategy,
    "pcdarts": PcDartsStrategy,
}
# the names the papers use
ALIASES = {"spos": "uniform", "rr": "round_robin", "random_order": "fixed_order",
           "reshuffle": "shuffle"}


def strategy_names(differentiable: bool | None = None) -> tuple[str, ...]:
    """The registry's names in registry order: every one (None), or only those whose class is
    (True) or is not (False) a differentiable search (``Strategy.differentiable``)."""
    return tuple(k for k, cls in STRATEGIES.items() if differentiable is None or cls.differentiable == differentiable)


def strategy_class(name: str) -> type[Strategy]:
    """The registry's class of ``name`` (an alias or a dashed spelling allowed)."""
    key = ALIASES.get(name, name).replace("-", "_")
    try:
        return STRATEGIES[key]
    except KeyError:
        raise WsnasError(
            f"unknown strategy {name!r}; accepted: {', '.join(STRATEGIES)} (aliases: {', '.join(ALIASES)})"
        ) from None


def strategy_options(name: str) -> dict[str, Any]:
    """The options ``name`` takes by keyword, with their defaults: its class's keyword-only
    constructor parameters (``pada``: ``per_edge``, ``credit``). The positional ones, where a
    class has any, are set by whoever builds it (``pada-path``'s halves, a sampler's
    ``order_seed``), not chosen as a variant of the strategy."""
    signature = inspect.signature(strategy_class(name).__init__)
    return {p.name: p.default for p in signature.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def get_strategy(name: str, **options) -> Strategy:
    cls = strategy_class(name)
    try:
        return cls(**options)
    except TypeError as exc:
        raise WsnasError(f"bad option for strategy {name!r}: {exc}") from None


def strategy_from_description(description: Mapping[str, Any]) -> Strategy:
    """The strategy a run's stored description (:meth:`Strategy.describe`) names, built with the
    settings of the description that its class's constructor takes.

    A run trained under group sharing describes its group schedule (``groups``); that gives the
    sampler it orders the groups' children with (``order``, ``order_seed``), which the trainer
    adapts to the run's sharing again. Settings a constructor does not take (set by a subclass,
    such as ``pada-path``'s ``paths``) are left to the class; a checkpoint's resume compares the
    rebuilt strategy's description with the stored one, so nothing is silently different.
    """
    d = dict(description)
    if "strategy" not in d:
        raise WsnasError(f"a stored strategy description {d!r} does not name its strategy")
    name = d.pop("strategy")
    if name == GroupStrategy.name:
        return get_strategy(d.get("order", "round_robin"), order_seed=d.get("order_seed"))
    taken = inspect.signature(strategy_class(name).__init__).parameters
    return get_strategy(name, **{k: v for k, v in d.items() if k in taken and k != "self"})


__all__ = ["ALIASES", "STRATEGIES", "Recipe", "SinglePathStrategy", "StepResult", "Strategy", "StrategyContext",
           "get_strategy", "strategy_class", "strategy_from_description", "strategy_names", "strategy_options"]
