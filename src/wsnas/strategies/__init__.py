"""Supernet-training strategies. ``get_strategy(name, **options)`` builds one by name."""

from __future__ import annotations

from wsnas.errors import WsnasError
from wsnas.strategies.base import SinglePathStrategy, StepResult, Strategy
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


__all__ = ["STRATEGIES", "SinglePathStrategy", "StepResult", "Strategy", "get_strategy"]
