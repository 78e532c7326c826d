"""Single-path samplers ("uniform generation" of the 64-child study, and SPOS).

* ``uniform`` — every step an i.i.d. uniform child (SPOS / random search with weight sharing);
  each choice is drawn independently, which is uniform over the whole space.
* ``round_robin`` — children in index order 0, 1, ..., n-1, 0, 1, ... (the paper's default).
* ``fixed_order`` — one seeded random permutation of the children, repeated every cycle.
* ``shuffle`` — a fresh seeded permutation every cycle of n steps ("orders reshuffled").

The cyclic samplers enumerate the whole space and are meant for small spaces; the
``uniform`` sampler works for any size. Under group sharing (:meth:`with_sharing`) a sampler's
order applies inside each group (:class:`~wsnas.strategies.groups.GroupStrategy`).
"""

from __future__ import annotations

import numpy as np

from wsnas.core.errors import WsnasError
from wsnas.spaces import Arch
from wsnas.strategies.base import SinglePathStrategy, Strategy, StrategyContext, rng_from_state, rng_state
from wsnas.strategies.groups import GroupStrategy
from wsnas.supernet.sharing import Sharing


class _Sampler(SinglePathStrategy):
    def __init__(self, order_seed: int | None = None) -> None:
        """``order_seed`` seeds the sampling order; by default the run's seed does."""
        self.order_seed = order_seed

    def describe(self) -> dict:
        return {"strategy": self.name, "order_seed": self.order_seed}

    def with_sharing(self, sharing: Sharing) -> Strategy:
        """Under group sharing, this sampler's order inside each group (same name and order seed)."""
        if sharing.kind == "group" and not sharing.is_full:
            return GroupStrategy(sharing, order=self.name, order_seed=self.order_seed)
        return self

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        self.rng = np.random.default_rng(ctx.seed if self.order_seed is None else self.order_seed)
        self.steps = 0

    def next_arch(self) -> Arch:
        arch = self._pick(self.steps)
        self.steps += 1
        return arch

    def _pick(self, step: int) -> Arch:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"steps": self.steps, "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        self.rng.bit_generator.state = rng_from_state(state["rng"])


class UniformSampler(_Sampler):
    """i.i.d. uniform: each choice drawn independently every step."""

    name = "uniform"

    def _pick(self, step: int) -> Arch:
        idx = [int(self.rng.integers(len(c.options))) for c in self.space.choices]
        return self.space.from_option_indices(idx)


class _Cyclic(_Sampler):
    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        space = ctx.space
        if len(space) > 100_000:
            raise WsnasError(f"strategy {self.name!r} cycles through every child; {space.name} has "
                             f"{len(space)} (use 'uniform')")
        self.n = len(space)
        self.order = self._first_order()

    def _first_order(self) -> list[int]:
        return list(range(self.n))

    def _new_cycle(self) -> None:
        """Called when a cycle ends."""

    def _pick(self, step: int) -> Arch:
        pos = step % self.n
        if pos == 0 and step > 0:
            self._new_cycle()
        return self.space.from_index(self.order[pos])

    def state_dict(self) -> dict:
        return {**super().state_dict(), "order": list(self.order)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.order = [int(i) for i in state["order"]]


class RoundRobinSampler(_Cyclic):
    """Children in index order, cyclically."""

    name = "round_robin"


class FixedOrderSampler(_Cyclic):
    """One seeded random permutation, repeated every cycle."""

    name = "fixed_order"

    def _first_order(self) -> list[int]:
        return [int(i) for i in self.rng.permutation(self.n)]


class ShuffleSampler(_Cyclic):
    """A fresh seeded random permutation every cycle."""

    name = "shuffle"

    def _first_order(self) -> list[int]:
        return [int(i) for i in self.rng.permutation(self.n)]

    def _new_cycle(self) -> None:
        self.order = [int(i) for i in self.rng.permutation(self.n)]
