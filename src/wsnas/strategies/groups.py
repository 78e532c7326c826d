"""Group sharing's training order: each group of children trains only its own children.

With a group-sharing :class:`~wsnas.supernet.sharing.Sharing`, every group has its own copy of
the weights (a :class:`~wsnas.supernet.bank.WeightBank` keyed by group, which the forward pass
of a child activates). This strategy decides which children a mini-batch trains:

* budget ``paper`` — one child of *every* group on every mini-batch, one optimiser step each
  (each group is trained exactly as if it were a supernet of its own, on the same batches: M
  times the compute of one supernet);
* budget ``equal`` — the mini-batches are dealt to the groups in turn (batch t trains group
  t mod M), so the total compute equals one supernet's.

Inside a group the children follow ``order``: ``round_robin`` (index order, the paper's),
``fixed_order`` (one seeded permutation per group), ``shuffle`` (a fresh permutation every
cycle of the group) or ``uniform`` (i.i.d.).

The trainer builds it: given a group-sharing setting, it trains the user's sampler's
``with_sharing(sharing)``, which is this strategy with the sampler's name as ``order`` and its
order seed; a run's identity (:meth:`describe`, and the run id, named by the order) is that of
this strategy.
"""

from __future__ import annotations

import numpy as np
import torch

from wsnas.core.errors import WsnasError
from wsnas.spaces import Arch
from wsnas.strategies.base import (
    GROUP_ORDERS,
    StepResult,
    Strategy,
    StrategyContext,
    rng_from_state,
    rng_state,
    train_path,
)
from wsnas.supernet.sharing import Sharing, partition_children


class GroupStrategy(Strategy):
    """Train the groups of a group-sharing supernet (see the module docstring)."""

    name = "groups"

    def __init__(self, sharing: Sharing, order: str = "round_robin", order_seed: int | None = None):
        if sharing.kind != "group":
            raise WsnasError(f"the group strategy needs group sharing, not {sharing.label!r}")
        if order not in GROUP_ORDERS:
            raise WsnasError(f"unknown order within groups {order!r}; accepted: {', '.join(GROUP_ORDERS)}")
        self.sharing = sharing
        self.order = order
        self.order_seed = order_seed

    def describe(self) -> dict:
        return {"strategy": self.name, "order": self.order, "order_seed": self.order_seed,
                "sharing": self.sharing.label, "budget": self.sharing.budget}

    def with_sharing(self, sharing: Sharing) -> Strategy:
        """This strategy, for its own sharing setting (the trainer asks; any other is refused)."""
        if sharing != self.sharing:
            raise WsnasError(f"this group strategy trains {self.sharing.label!r}, not {sharing.label!r}")
        return self

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        self.groups = partition_children(ctx.space, self.sharing)
        self.rng = np.random.default_rng(ctx.seed if self.order_seed is None else self.order_seed)
        self.orders = [self._permute(g) if self.order in ("fixed_order", "shuffle") else list(g)
                       for g in self.groups]
        self.positions = [0] * len(self.groups)
        self.steps = 0

    def _permute(self, group: list[int]) -> list[int]:
        return [group[int(i)] for i in self.rng.permutation(len(group))]

    def next_in_group(self, g: int) -> Arch:
        members = self.groups[g]
        if self.order == "uniform":
            return self.space.from_index(members[int(self.rng.integers(len(members)))])
        pos = self.positions[g]
        if pos == len(members):  # a cycle of the group ended
            pos = 0
            if self.order == "shuffle":
                self.orders[g] = self._permute(members)
        self.positions[g] = pos + 1
        return self.space.from_index(self.orders[g][pos])

    def step(self, x: torch.Tensor, y: torch.Tensor, valid_batch=None, *,
             indices: torch.Tensor | None = None) -> StepResult:
        m = len(self.groups)
        if self.sharing.budget == "equal":
            result = train_path(self, self.next_in_group(self.steps % m), x, y)
            self.steps += 1
            return result
        results = [train_path(self, self.next_in_group(g), x, y) for g in range(m)]
        self.steps += 1
        if m == 1:
            return results[0]
        loss = torch.stack([r.loss for r in results]).mean()
        correct = torch.stack([r.correct for r in results]).double().mean().round().long()
        return StepResult(loss=loss, correct=correct, count=len(y), arch=None)

    def state_dict(self) -> dict:
        return {"steps": self.steps, "positions": list(self.positions),
                "orders": [list(o) for o in self.orders], "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        self.positions = [int(p) for p in state["positions"]]
        self.orders = [[int(i) for i in o] for o in state["orders"]]
        self.rng.bit_generator.state = rng_from_state(state["rng"])
