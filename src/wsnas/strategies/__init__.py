"""Supernet-training strategies. ``get_strategy(name, **options)`` builds one by name."""

from __future__ import annotations

from wsnas.core.errors import WsnasError
from wsnas.strategies.base import SinglePathStrategy, StepResult, Strategy
from wsnas.strategies.differentiable import DartsStrategy, GdasStrategy, PcDartsStrategy
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


def get_strategy(name: str, **options) -> Strategy:
    key = ALIASES.get(name, name).replace("-", "_")
    try:
        cls = STRATEGIES[key]
    except KeyError:
        raise WsnasError(
            f"unknown strategy {name!r}; accepted: {', '.join(STRATEGIES)} (aliases: {', '.join(ALIASES)})"
        ) from None
    try:
        return cls(**options)
    except TypeError as exc:
        raise WsnasError(f"bad option for strategy {name!r}: {exc}") from None


def strategy_for(name: str, sharing=None, **options) -> Strategy:
    """The strategy ``name`` for a supernet with ``sharing`` (a :class:`Sharing`, default full).

    Under group sharing ``name`` is the order of the children inside each group
    (:class:`~wsnas.strategies.groups.GroupStrategy`); otherwise it is the strategy itself.
    """
    if sharing is None or sharing.kind != "group" or sharing.is_full:
        return get_strategy(name, **options)
    from wsnas.strategies.groups import GroupStrategy

    key = ALIASES.get(name, name).replace("-", "_")
    return GroupStrategy(sharing, order=key, order_seed=options.get("order_seed"))


__all__ = ["STRATEGIES", "strategy_for", "SinglePathStrategy", "StepResult", "Strategy", "get_strategy"]
