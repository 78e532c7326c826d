"""The strategy interface: how a supernet is trained, one batch at a time.

A strategy decides which path (or mixture) each step trains and, for differentiable
strategies, updates architecture parameters. The trainer owns the data, the weight optimiser
and its schedule, checkpoints and evaluation; a strategy owns only its own decisions.

The trainer binds a strategy to a run with one :class:`StrategyContext` and otherwise only
calls its methods; nothing is set on a strategy from outside. The verbs:

* ``setup(ctx)`` — bind to a supernet before training (the context: supernet, space, weight
  optimiser, seed, gradient clipping, number of epochs, size of the weight split, replica);
* ``step(x, y, valid_batch=None, *, indices=None) -> StepResult`` — train on one batch
  (``indices``: the batch's positions in the weight split);
* ``end_epoch(epoch)`` — called after every epoch;
* ``state_dict()`` / ``load_state_dict(state)`` — everything needed to resume exactly
  (plain Python values and tensors only, so checkpoints load with ``weights_only=True``);
* ``describe()`` — the strategy's settings, part of a run's identity.

Optional hooks, each with a default that suits a plain single-path strategy:

* ``differentiable = False`` — a differentiable search (``wsnas search``), not ``wsnas supernet``;
* ``supernet_options() -> {}`` — keyword arguments of ``space.build_supernet`` (PC-DARTS's
  partial channels);
* ``arch_data = None`` — ``"bilevel"`` / ``"single"``: an architecture batch every step as
  ``valid_batch``; ``arch_split = "half"`` — where bilevel architecture batches come from
  (``"half"`` of the training split, or the ``"valid"`` split); ``holdout = None`` — with
  ``arch_data = None``, ``"bilevel"`` / ``"single"`` divides the data as that protocol would
  while passing no architecture batches (a fixed-alpha supernet trains its weights on the same
  half as a bilevel search, keeping the architecture split for PT to score on);
* ``epoch_indices(n, generator) -> None`` — the next epoch's sample order (None: a shuffle);
* ``epoch_metrics() -> {}`` — named scalars stored after every epoch (``run_metrics``; the trainer
  also hands them to its monitor, so ``--tensorboard`` draws them as ``strategy/<name>``);
* ``with_sharing(sharing) -> self`` — the strategy that trains a supernet with partial sharing
  (the single-path samplers order the children inside the groups of group sharing; any other
  strategy refuses group sharing).

A strategy whose authors published their own training recipe declares it as a :class:`Recipe`
(the differentiable searches: ``recipe(param)``, :mod:`wsnas.strategies.differentiable`); the
command that builds the run applies it wherever the user gave no flag.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wsnas.core.errors import WsnasError
from wsnas.spaces import Arch, Space

if TYPE_CHECKING:
    from wsnas.core.distributed import Replica
    from wsnas.supernet.sharing import Sharing

# the single-path orders a group-sharing supernet can train its groups in (GroupStrategy)
GROUP_ORDERS = ("round_robin", "fixed_order", "shuffle", "uniform")


@dataclass(frozen=True)
class StrategyContext:
    """What a strategy is bound to for one run; the trainer builds it (tests may too)."""

    supernet: nn.Module
    space: Space
    optimizer: torch.optim.Optimizer  # the weight optimiser
    seed: int
    grad_clip: float | None = None
    total_epochs: int | None = None  # the run's number of epochs (GDAS's temperature, PA&DA's tau)
    train_size: int | None = None  # samples of the weight split an epoch covers (PA&DA's per-sample state)
    replica: Replica | None = None  # a data-parallel run's replica (wsnas.core.distributed), else None


@dataclass(frozen=True)
class Recipe:
    """A strategy's published defaults, each a value its authors' code sets.

    ``train``: fields of the run's ``TrainConfig`` (the weight optimiser and its schedule) that
    differ from the search defaults; ``options``: the strategy's own constructor options (e.g.
    ``arch_lr``, ``warmup_epochs``); ``source``: where the values come from (repository and file);
    ``note``: what of the authors' recipe is not applied, if anything. Values not named keep the
    defaults (the dataset's search budget, the strategy's constructor defaults).
    """

    source: str
    train: Mapping[str, object] = field(default_factory=dict)
    options: Mapping[str, object] = field(default_factory=dict)
    note: str = ""


@dataclass
class StepResult:
    """What one training step did: the loss and accuracy on its batch and the child trained."""

    loss: torch.Tensor  # 0-dim, on the device (no host synchronisation in the step)
    correct: torch.Tensor  # 0-dim count of correct predictions
    count: int
    arch: Arch | None = None
    logits: torch.Tensor | None = None  # the batch's logits, when a strategy needs them (detached)


class Strategy(ABC):
    """Base class of every supernet-training strategy (see the module docstring for the hooks)."""

    name: str = "strategy"
    # a differentiable search (architecture parameters; `wsnas search`), not a single-path sampler
    differentiable: bool = False
    # "bilevel" / "single": the strategy takes an architecture batch as ``valid_batch`` every step
    arch_data: str | None = None
    # bilevel architecture batches: "half" (the second half of the training split) or "valid"
    arch_split: str = "half"
    # without architecture batches (arch_data None): divide the data as "bilevel" / "single" would
    holdout: str | None = None
    # set by setup
    ctx: StrategyContext | None = None

    def setup(self, ctx: StrategyContext) -> None:
        """Bind to a run before training (subclasses extend this and call it first)."""
        self.ctx = ctx

    # the context's fields, read-only
    @property
    def supernet(self) -> nn.Module:
        return self.ctx.supernet

    @property
    def space(self) -> Space:
        return self.ctx.space

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.ctx.optimizer

    @property
    def seed(self) -> int:
        return self.ctx.seed

    @property
    def grad_clip(self) -> float | None:
        return self.ctx.grad_clip

    @property
    def replica(self) -> Replica | None:
        return self.ctx.replica

    def use_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Train the weights with ``optimizer`` from now on (PT selection's tuning optimiser)."""
        self.ctx = replace(self.ctx, optimizer=optimizer)

    @abstractmethod
    def step(self, x: torch.Tensor, y: torch.Tensor, valid_batch=None, *,
             indices: torch.Tensor | None = None) -> StepResult:
        """Train on one batch; ``indices``: its samples' positions in the weight split (or None)."""

    def end_epoch(self, epoch: int) -> None:  # noqa: B027 - optional hook
        """Called after every epoch (0-based ``epoch``)."""

    def supernet_options(self) -> dict:
        """Keyword arguments of ``space.build_supernet`` this strategy needs (default none)."""
        return {}

    def epoch_indices(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """The next epoch's order of the ``n`` weight-split samples (default None: a shuffle)."""
        return None

    def epoch_metrics(self) -> dict:
        """Named scalars stored after every epoch (``run_metrics``; default none)."""
        return {}

    def with_sharing(self, sharing: Sharing) -> Strategy:
        """The strategy that trains a supernet with ``sharing``.

        Default: this strategy under full and prefix sharing (the weight bank swaps in each
        child's copies); group sharing needs an order of the children inside each group, which
        only the single-path samplers give (they return a
        :class:`~wsnas.strategies.groups.GroupStrategy`), so any other strategy refuses it.
        A strategy already adapted to ``sharing`` returns itself.
        """
        if sharing.kind == "group" and not sharing.is_full:
            raise WsnasError(f"unknown order within groups {self.name!r}; accepted: {', '.join(GROUP_ORDERS)}")
        return self

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:  # noqa: B027 - stateless by default
        pass

    def describe(self) -> dict:
        """The strategy's settings, stored with the run."""
        return {"strategy": self.name}


class SinglePathStrategy(Strategy):
    """A strategy that trains exactly one child per mini-batch; only its path runs."""

    @abstractmethod
    def next_arch(self) -> Arch:
        """The child to train in the next step."""

    def step(self, x: torch.Tensor, y: torch.Tensor, valid_batch=None, *,
             indices: torch.Tensor | None = None) -> StepResult:
        arch = self.next_arch()
        return train_path(self, arch, x, y)


def train_path(strategy: Strategy, arch: Arch, x: torch.Tensor, y: torch.Tensor, *,
               keep_logits: bool = False) -> StepResult:
    """One SGD step of the supernet on ``arch``'s single path.

    In a data-parallel run (``strategy.replica`` set) ``x, y`` are this rank's shard of the
    global batch: the ranks must train the same path (checked), each rank's loss is weighted
    by its share of the global batch and the gradients are summed across ranks before the
    (identical) optimiser step on every rank.
    """
    replica = strategy.replica
    if replica is not None:
        replica.check_same_path(strategy.space.option_indices(arch))
    logits = strategy.supernet(x, arch)
    loss = F.cross_entropy(logits, y)
    strategy.optimizer.zero_grad(set_to_none=True)
    if replica is None:
        loss.backward()
    else:
        replica.scale_loss(loss, len(y)).backward()
        replica.reduce_gradients(list(strategy.supernet.parameters()))
    if strategy.grad_clip is not None:
        nn.utils.clip_grad_norm_(strategy.supernet.parameters(), strategy.grad_clip)
    strategy.optimizer.step()
    return StepResult(loss=loss.detach(), correct=(logits.detach().argmax(1) == y).sum(),
                      count=len(y), arch=arch, logits=logits.detach() if keep_logits else None)


def rng_state(rng: np.random.Generator) -> dict:
    """A numpy generator's state as plain Python values (checkpoints load with ``weights_only=True``)."""
    state = rng.bit_generator.state
    return {"bit_generator": state["bit_generator"], "state": {k: int(v) for k, v in state["state"].items()},
            "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}


def rng_from_state(state: dict) -> dict:
    """The numpy bit-generator state saved by :func:`rng_state`."""
    return {"bit_generator": state["bit_generator"], "state": dict(state["state"]),
            "has_uint32": state["has_uint32"], "uinteger": state["uinteger"]}
