"""The strategy interface: how a supernet is trained, one batch at a time.

A strategy decides which path (or mixture) each step trains and, for differentiable
strategies, updates architecture parameters. The trainer owns the data, the weight optimiser
and its schedule, checkpoints and evaluation; a strategy owns only its own decisions.

Four verbs:

* ``setup(supernet, space, optimizer, seed)`` — bind to a supernet before training;
* ``step(x, y, valid_batch=None) -> StepResult`` — train on one batch;
* ``end_epoch(epoch)`` — called after every epoch;
* ``state_dict()`` / ``load_state_dict(state)`` — everything needed to resume exactly
  (plain Python values and tensors only, so checkpoints load with ``weights_only=True``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wsnas.spaces import Arch, Space


@dataclass
class StepResult:
    """What one training step did: the loss and accuracy on its batch and the child trained."""

    loss: torch.Tensor  # 0-dim, on the device (no host synchronisation in the step)
    correct: torch.Tensor  # 0-dim count of correct predictions
    count: int
    arch: Arch | None = None
    logits: torch.Tensor | None = None  # the batch's logits, when a strategy needs them (detached)


class Strategy(ABC):
    """Base class of every supernet-training strategy."""

    name: str = "strategy"
    # set by the trainer in a data-parallel run (a wsnas.core.distributed.Replica), else None
    replica = None
    # set by the trainer before setup: the run's number of epochs (schedules such as GDAS's)
    total_epochs: int | None = None
    # "bilevel" / "single": the strategy takes an architecture batch as ``valid_batch`` every step
    arch_data: str | None = None
    # set by the trainer before setup: the number of samples an epoch covers (per-sample state)
    train_size: int | None = None

    def setup(self, supernet: nn.Module, space: Space, optimizer: torch.optim.Optimizer,
              seed: int, *, grad_clip: float | None = None) -> None:
        self.supernet = supernet
        self.space = space
        self.optimizer = optimizer
        self.seed = seed
        self.grad_clip = grad_clip

    @abstractmethod
    def step(self, x: torch.Tensor, y: torch.Tensor, valid_batch=None) -> StepResult:
        """Train on one batch."""

    def end_epoch(self, epoch: int) -> None:  # noqa: B027 - optional hook
        """Called after every epoch (0-based ``epoch``)."""

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

    def step(self, x: torch.Tensor, y: torch.Tensor, valid_batch=None) -> StepResult:
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
