"""Standalone training: one architecture from scratch, seeded and reproducible.

The recipe is the one of algorithms.md 1.2 (SGD with momentum 0.9, weight decay 1e-3,
learning rate 0.025 annealed by a cosine schedule to 0.001, stepped once per epoch), with
the epoch count and batch size scaled to the dataset (:data:`DEFAULTS`).

The cosine's period is the run's epochs unless ``lr_schedule_epochs`` sets a longer one: the
run then stops part-way down the curve, as GAEA's NAS-Bench-201 search does (25 epochs of a
schedule set for 50: ``run.scheduler_epochs: 50`` in liamcli/gaea_release
configs/cnn/config.yaml, used by ``CosinePowerAnnealing`` in cnn/train_utils.py). A period
shorter than the run is refused: the cosine would climb back up (PyTorch's
``CosineAnnealingLR``) or restart (gaea_release's cycles), and neither is a schedule wsnas runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from wsnas.core.errors import Diverged, WsnasError
from wsnas.core.runtime import check_precision, prepare_model
from wsnas.data import Dataset, Split, cutout, iterate_batches
from wsnas.evaluator import EvalConfig, evaluate_archs


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule of a from-scratch training (defaults: CIFAR-10, algorithms.md 1.2)."""

    epochs: int = 200
    batch_size: int = 256
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 1e-3
    grad_clip: float | None = None
    eval_batch_size: int = 1024
    auxiliary_weight: float = 0.0  # weight of an auxiliary head's loss, for networks that have one
    drop_path_prob: float = 0.0  # final drop-path probability, raised linearly from 0 per epoch
    cutout: int = 0  # side of the cutout square (0: off), after the dataset's own augmentation
    precision: str = "fp32"  # fp32, or bf16: forward passes under bf16 autocast (wsnas.core.runtime)
    lr_schedule_epochs: int | None = None  # the cosine's period in epochs (None: ``epochs``)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise WsnasError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("lr", "momentum", "weight_decay"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise WsnasError(f"{name} must be a non-negative number, got {v!r}")
        if self.lr_min > self.lr:
            raise WsnasError(f"lr_min {self.lr_min} is larger than lr {self.lr}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise WsnasError(f"grad_clip must be positive or omitted, got {self.grad_clip}")
        if not 0.0 <= self.drop_path_prob < 1.0:
            raise WsnasError(f"drop_path_prob must be in [0, 1), got {self.drop_path_prob}")
        if self.auxiliary_weight < 0 or self.cutout < 0:
            raise WsnasError("auxiliary_weight and cutout must be non-negative")
        check_precision(self.precision)
        period = self.lr_schedule_epochs
        if period is not None:
            if isinstance(period, bool) or not isinstance(period, int) or period < 1:
                raise WsnasError(f"lr_schedule_epochs must be a positive integer (the cosine's period in epochs), "
                                 f"got {period!r}")
            if period < self.epochs:
                raise WsnasError(f"lr_schedule_epochs {period} is shorter than the run's {self.epochs} epochs; "
                                 f"accepted: at least the number of epochs (or unset: the run's length)")

    @property
    def schedule_epochs(self) -> int:
        """The cosine schedule's period in epochs: ``lr_schedule_epochs``, else the run's epochs."""
        return self.epochs if self.lr_schedule_epochs is None else self.lr_schedule_epochs

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.precision == "fp32":  # the default leaves the identity of fp32 runs as it was
            del d["precision"]
        if self.lr_schedule_epochs is None:  # likewise: only a run that sets its period stores it
            del d["lr_schedule_epochs"]
        return d

    def with_overrides(self, **overrides) -> TrainConfig:
        """A copy with the given fields replaced; ``None`` values are ignored."""
        known = {f.name for f in fields(self)}
        bad = [k for k in overrides if k not in known]
        if bad:
            raise WsnasError(f"unknown training option {bad[0]!r}; accepted: {', '.join(sorted(known))}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


# Per-dataset defaults. Digits: children converge to ~98% test accuracy within 10 epochs and then
# differ by a few of the 359 test images, so their ranking is mostly noise (seed-to-seed Kendall
# tau 0.39 at 10 epochs, 0.36 at 5, 0.55 at 3); after 2 epochs the children still differ in how
# fast they learn and the ranking is reproducible (tau 0.58-0.63 over three pairs of seeds).
DEFAULTS: dict[str, TrainConfig] = {
    "cifar10": TrainConfig(),
    "digits": TrainConfig(epochs=2, batch_size=64),
}


# Named training recipes (``--recipe``): the published settings for a kind of network.
RECIPES: dict[str, TrainConfig] = {
    # DARTS evaluation network on CIFAR-10 (Liu et al., 2019): 600 epochs, batch 96, SGD lr 0.025
    # cosine to 0, momentum 0.9, weight decay 3e-4, gradient clip 5, cutout 16, auxiliary head
    # weight 0.4, drop-path 0.2 (PC-DARTS and others use 0.3: --drop-path 0.3).
    "darts-eval": TrainConfig(epochs=600, batch_size=96, lr=0.025, lr_min=0.0, momentum=0.9,
                              weight_decay=3e-4, grad_clip=5.0, auxiliary_weight=0.4,
                              drop_path_prob=0.2, cutout=16),
}


def default_config(dataset: str, recipe: str | None = None) -> TrainConfig:
    """The training settings of ``recipe`` if given, else the dataset's defaults."""
    if recipe is not None:
        try:
            return RECIPES[recipe]
        except KeyError:
            raise WsnasError(f"unknown recipe {recipe!r}; accepted: {', '.join(RECIPES)}") from None
    return DEFAULTS.get(dataset, TrainConfig())


def _loss(output, y: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, logits) of a network's output; ``(logits, aux_logits)`` adds the auxiliary loss."""
    if isinstance(output, tuple):
        logits, aux = output
        loss = F.cross_entropy(logits, y)
        if aux is not None and cfg.auxiliary_weight:
            loss = loss + cfg.auxiliary_weight * F.cross_entropy(aux, y)
        return loss, logits
    return F.cross_entropy(output, y), output


def evaluate(model: nn.Module, split: Split, batch_size: int = 1024) -> tuple[float, float]:
    """(accuracy, mean cross-entropy loss) of a standalone ``model`` on ``split``, eval-mode BN."""
    return evaluate_archs(model, [None], split, EvalConfig(bn_mode="running", batch_size=batch_size))[0]


def cosine_lr(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate of ``epoch`` (0-based): cosine from ``lr`` towards ``lr_min`` over the schedule's
    period (:attr:`TrainConfig.schedule_epochs`: the run, or the longer ``lr_schedule_epochs``)."""
    period = cfg.schedule_epochs
    if period <= 1:
        return cfg.lr
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * epoch / period))


def train_from_scratch(model: nn.Module, data: Dataset, cfg: TrainConfig, seed: int) -> dict:
    """Train ``model`` (freshly initialised by the caller under ``seed``) and evaluate it.

    Returns the final accuracy and loss on the train (running over the last epoch), valid and
    test splits, the number of epochs and the seconds taken.

    Raises:
        Diverged: the training loss of an epoch is NaN or infinite (checked once per epoch); the
            network is not evaluated, since its accuracy would measure nothing.
    """
    device = data.train.x.device
    prepare_model(model.to(device), cfg.precision).train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    start = time.perf_counter()
    train_loss = train_correct = train_seen = 0
    for epoch in range(cfg.epochs):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(cfg, epoch)
        if hasattr(model, "drop_path_prob"):
            model.drop_path_prob = cfg.drop_path_prob * epoch / cfg.epochs
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        for x, y in iterate_batches(data.train, cfg.batch_size, shuffle=True, generator=gen,
                                    augment=data.augment):
            if cfg.cutout:
                x = cutout(x, cfg.cutout, gen)
            loss, logits = _loss(model(x), y, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
        train_loss, train_correct, train_seen = loss_sum.item(), correct.item(), seen
        if not math.isfinite(train_loss):
            mean = train_loss / max(seen, 1)
            raise Diverged(f"training diverged at epoch {epoch + 1} (loss {mean}); lower the learning rate",
                           epoch=epoch + 1, loss=mean)
    valid_acc, valid_loss = evaluate(model, data.valid, cfg.eval_batch_size)
    test_acc, test_loss = evaluate(model, data.test, cfg.eval_batch_size)
    return {
        "train_acc": train_correct / max(train_seen, 1),
        "train_loss": train_loss / max(train_seen, 1),
        "valid_acc": valid_acc,
        "valid_loss": valid_loss,
        "test_acc": test_acc,
        "test_loss": test_loss,
        "epochs": cfg.epochs,
        "seconds": time.perf_counter() - start,
    }
