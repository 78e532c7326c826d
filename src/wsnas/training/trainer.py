"""Train a supernet with any strategy, checkpoint every epoch, resume exactly, evaluate children.

The trainer owns the data order, the weight optimiser (SGD, momentum, weight decay) and its
cosine schedule (stepped per epoch, as in algorithms.md 1.2), checkpoints and evaluation; the
strategy owns which path each step trains. The trainer binds the strategy with one
:class:`~wsnas.strategies.base.StrategyContext` and asks it through its stated hooks
(``supernet_options``, ``arch_data``/``arch_split``/``holdout``, ``epoch_indices``, ``epoch_metrics``);
each step gets the batch's sample indices as an argument.

Checkpoints (``<run_dir>/checkpoint.pt``, written atomically) hold the supernet's weights, the
optimiser, the strategy's state and every random generator, so a run interrupted at any point
and resumed produces the same weights as one that never stopped. Evaluation results go to the
store as predictions keyed by run and checkpoint label (``epoch:E`` after every epoch,
``step:S`` after each of the last ``dense_last`` mini-batches, or after every ``dense_every``-th
of them counted back from the last), so re-evaluating after a
resume overwrites with identical numbers instead of duplicating.

Data-parallel (``torchrun``; see :mod:`wsnas.core.distributed`): when a process group with more
than one rank is initialised (or ``replica`` is given), every rank draws the same global batch
of ``batch_size`` samples and trains on its contiguous shard, all ranks train the same path,
gradients are summed across ranks with each shard's loss weighted by its share of the batch,
and training-mode batch norm uses the global batch's statistics, so the weights equal those of
a single-process run up to rounding. Every rank evaluates (recalibration batches are sharded,
their statistics synchronised) so they stay in lockstep; only rank 0 writes checkpoints and
the store.

Partial sharing (``sharing``, see :mod:`wsnas.supernet.sharing`) is one explicit setting: the
trainer trains ``strategy.with_sharing(sharing)`` (under group sharing, the group schedule with
the strategy's order inside the groups), builds the weight bank (:attr:`SupernetTrainer.bank`)
and passes it to the evaluator; its private copies and their momentum buffers are part of the
checkpoint. Fine-tuning from the trained supernet takes the same bank (``bank=``).

Results go to ``store``: a :class:`~wsnas.store.Store`, or a :class:`RowCollector` that keeps
them in memory (and in the checkpoint) for a job running away from the store's process.
Whoever watches a run as it trains (TensorBoard's live curves) passes a
:class:`~wsnas.training.monitor.RunMonitor` to :meth:`SupernetTrainer.train`: the trainer tells it of
every step, evaluation, epoch and named scalar as they happen (rank 0 only).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from wsnas.core import distributed
from wsnas.core.errors import Diverged, WsnasError
from wsnas.core.files import atomic_write
from wsnas.core.runtime import prepare_model
from wsnas.data import Dataset, Split, epoch_order, iterate_batches, num_batches
from wsnas.evaluator import EvalConfig, evaluate_archs, recalibration_batches
from wsnas.spaces import Arch, Space, space_from_description
from wsnas.store import Store
from wsnas.strategies import Strategy, StrategyContext, strategy_from_description
from wsnas.supernet.bank import WeightBank
from wsnas.supernet.sharing import Sharing, make_bank
from wsnas.training.gradvar import METRIC_NAMES, GradVarianceMonitor
from wsnas.training.monitor import RunMonitor
from wsnas.training.standalone import TrainConfig, cosine_lr

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class SupernetConfig:
    """Supernet training and evaluation settings (optimiser defaults: algorithms.md 1.2)."""

    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    eval_every_epoch: bool = True
    dense_last: int = 64  # evaluate every child after each of the last k mini-batches (0: off)
    # ... after every n-th of them, counted back from the last (1: each; the window stays k)
    dense_every: int = 1
    grad_window: int = 0  # record the gradient variance over windows of this many steps (0: off)

    def __post_init__(self) -> None:
        if self.dense_last < 0:
            raise WsnasError(f"dense_last must be non-negative, got {self.dense_last}")
        if isinstance(self.dense_every, bool) or not isinstance(self.dense_every, int) or self.dense_every < 1:
            raise WsnasError(f"dense_every must be a positive integer, got {self.dense_every!r}")
        if self.grad_window < 0:
            raise WsnasError(f"the gradient-variance window must be non-negative, got {self.grad_window}")

    def to_dict(self, *, execution: bool = False) -> dict:
        """The run's settings (its identity); ``execution`` adds how evaluation is computed
        (for a job that must rebuild the config elsewhere)."""
        d = {"train": self.train.to_dict(), "eval": self.eval.to_dict(execution=execution),
             "eval_every_epoch": self.eval_every_epoch, "dense_last": self.dense_last}
        if self.dense_every != 1:  # runs made before the stride keep their identity
            d["dense_every"] = self.dense_every
        if self.grad_window:
            d["grad_window"] = self.grad_window
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SupernetConfig:
        return cls(train=TrainConfig(**d["train"]), eval=EvalConfig(**d["eval"]),
                   eval_every_epoch=d["eval_every_epoch"], dense_last=d["dense_last"],
                   dense_every=d.get("dense_every", 1), grad_window=d.get("grad_window", 0))

    def with_train(self, **overrides) -> SupernetConfig:
        return replace(self, train=self.train.with_overrides(**overrides))


def _atomic_save(obj, path: Path) -> None:
    # unbuffered: torch.save checks its position after each write, and would report a full disk
    # met inside a buffer as a mismatch instead of the OSError it is
    with atomic_write(path, "wb", buffering=0) as f:
        torch.save(obj, f)


def cycle_batches(split: Split, batch_size: int, generator: torch.Generator, augment):
    """Shuffled batches of ``split``, pass after pass: the architecture batches of a search, which
    never run out however much smaller their split is than the weights' (``arch_split="valid"``)."""
    while True:
        yield from iterate_batches(split, batch_size, shuffle=True, generator=generator, augment=augment)


def trainer_config(space: Space, data: Dataset, strategy: Strategy, cfg: SupernetConfig, seed: int,
                   sharing: Sharing | None = None, archs: Sequence[Arch] | None = None) -> dict:
    """A supernet run's identity: stored with the run and checked when a checkpoint resumes.

    ``strategy`` is the user's (or the one already adapted to ``sharing``): the run describes
    the strategy it trains, ``strategy.with_sharing(sharing)``. ``archs``, the children the run
    evaluates, are part of it (their sorted indices) when they are some of the space's children:
    neither all of them nor none, whose runs keep the identity they had before."""
    trained = strategy if sharing is None else strategy.with_sharing(sharing)
    config = {"space": space.describe(), "data": data.describe(), "strategy": trained.describe(),
              "seed": seed, "supernet": cfg.to_dict()}
    if sharing is not None and not sharing.is_full:
        config["sharing"] = sharing.to_dict()
    evaluated = sorted({space.index(a) for a in archs or ()})
    if evaluated and len(evaluated) < len(space):
        config["archs"] = evaluated
    return config


class RowCollector:
    """A stand-in for the store that keeps a run's predictions, training steps and metrics in memory.

    A job that trains a supernet on a worker collects its rows here; they travel in the
    checkpoint (so a retried job returns every row) and back to the driver, which writes them.
    """

    def __init__(self) -> None:
        self.predictions: list[dict] = []
        self.train_steps: list[dict] = []
        self.run_metrics: list[dict] = []

    def add_predictions(self, run_id: str, rows) -> int:
        rows = [dict(r) for r in rows]
        self.predictions.extend(rows)
        return len(rows)

    def add_train_steps(self, run_id: str, rows) -> int:
        rows = [dict(r) for r in rows]
        self.train_steps.extend(rows)
        return len(rows)

    def add_run_metrics(self, run_id: str, rows) -> int:
        rows = [dict(r) for r in rows]
        self.run_metrics.extend(rows)
        return len(rows)

    def state_dict(self) -> dict:
        return {"predictions": list(self.predictions), "train_steps": list(self.train_steps),
                "run_metrics": list(self.run_metrics)}

    def load_state_dict(self, state: dict) -> None:
        self.predictions = [dict(r) for r in state["predictions"]]
        self.train_steps = [dict(r) for r in state["train_steps"]]
        self.run_metrics = [dict(r) for r in state.get("run_metrics", [])]


class SupernetTrainer:
    """Trains one supernet instance (one strategy, one seed) and records its predictions.

    :attr:`strategy` is the strategy trained: ``strategy.with_sharing(sharing)`` (``strategy``
    itself unless group sharing); :attr:`bank` the weight bank of partial sharing (or None).
    """

    def __init__(self, space: Space, data: Dataset, strategy: Strategy, cfg: SupernetConfig, *,
                 seed: int, run_dir: str | os.PathLike, store: Store | RowCollector | None = None,
                 run_id: str | None = None, archs: Sequence[Arch] | None = None,
                 progress: bool = True, replica: distributed.Replica | None = None,
                 sharing: Sharing | None = None):
        self.sharing = sharing if sharing is not None else Sharing()
        strategy = strategy.with_sharing(self.sharing)  # group sharing: the group schedule
        self.space, self.data, self.strategy, self.cfg = space, data, strategy, cfg
        self.seed = seed
        self.run_dir = Path(run_dir)
        self.store, self.run_id = store, run_id
        self.archs = list(archs) if archs is not None else list(space.enumerate())
        self.replica = replica if replica is not None else distributed.current_replica()
        self.is_main = self.replica is None or self.replica.is_main
        self.progress = progress and self.is_main
        device = data.train.x.device
        t = cfg.train
        if self.replica is not None:
            self.replica.check_batches(len(data.train), t.batch_size)
        torch.manual_seed(seed)
        self.supernet = space.build_supernet(num_classes=data.num_classes, in_channels=data.in_channels,
                                             **strategy.supernet_options()).to(device)
        prepare_model(self.supernet, t.precision)  # channels-last, bf16 autocast when asked for
        if self.replica is not None:
            distributed.convert_batchnorm(self.supernet)
            self.replica.broadcast_module(self.supernet)
        self.optimizer = torch.optim.SGD(self.supernet.parameters(), lr=t.lr, momentum=t.momentum,
                                         weight_decay=t.weight_decay)
        if self.replica is not None and not self.sharing.is_full:
            raise WsnasError(f"partial sharing ({self.sharing.label}) is not supported in a "
                             "data-parallel run; train it in one process")
        self.bank: WeightBank | None = make_bank(self.supernet, self.optimizer, space, self.sharing)
        # differentiable strategies take an architecture batch every step: from the held-out half
        # of the training split (bilevel) or from a reshuffled pass over all of it (single-level);
        # a fixed alpha takes none, but its data are divided the same way (``holdout``)
        self.weight_split, self.arch_split = data.train, None
        arch_data = strategy.arch_data or strategy.holdout
        if arch_data == "bilevel" and strategy.arch_split == "valid":
            self.arch_split = data.valid
        elif arch_data == "bilevel":
            half = len(data.train) // 2
            self.weight_split = Split(data.train.x[:half], data.train.y[:half])
            self.arch_split = Split(data.train.x[half:], data.train.y[half:])
        elif arch_data == "single":
            self.arch_split = data.train
        self.arch_gen = torch.Generator(device="cpu").manual_seed(seed + 1)
        strategy.setup(StrategyContext(supernet=self.supernet, space=space, optimizer=self.optimizer, seed=seed,
                                       grad_clip=t.grad_clip, total_epochs=t.epochs,
                                       train_size=len(self.weight_split), replica=self.replica))
        self.gradvar = GradVarianceMonitor(self.supernet.parameters(), cfg.grad_window) if cfg.grad_window else None
        self.batch_gen = torch.Generator(device="cpu").manual_seed(seed)
        self.epoch = 0  # epochs completed
        self.steps_per_epoch = num_batches(len(self.weight_split), t.batch_size, drop_last=False)
        self.total_steps = self.steps_per_epoch * t.epochs
        self.history: list[dict] = []
        self._recal = None
        if cfg.eval.bn_mode == "recal":
            self._recal = recalibration_batches(data.train, cfg.eval, seed)

    @property
    def names(self) -> list[str]:
        """The canonical names of the children the trainer evaluates, in evaluation order."""
        return [self.space.format(a) for a in self.archs]

    # ------------------------------------------------------------------ state
    def config(self) -> dict:
        return trainer_config(self.space, self.data, self.strategy, self.cfg, self.seed, self.sharing, self.archs)

    def state(self) -> dict:
        return {
            "config": json.dumps(self.config(), sort_keys=True),
            "epoch": self.epoch,
            "supernet": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "strategy": self.strategy.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "batch_rng": self.batch_gen.get_state(),
            "arch_rng": self.arch_gen.get_state(),
            "history": self.history,
            **({"bank": self.bank.state_dict()} if self.bank is not None else {}),
            **({"gradvar": self.gradvar.state_dict()} if self.gradvar is not None else {}),
            **({"collected": self.store.state_dict()} if isinstance(self.store, RowCollector) else {}),
        }

    def save(self) -> None:
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            _atomic_save(self.state(), self.run_dir / CHECKPOINT)
        if self.replica is not None:
            self.replica.barrier()  # no rank runs ahead of a checkpoint it might resume from

    def try_resume(self, *, remedy: str | None = None) -> bool:
        """Load ``<run_dir>/checkpoint.pt`` if present; its config must equal this run's.

        ``remedy``: what a refusal (an unreadable, incomplete or foreign checkpoint) tells the
        user to do; by default to delete the checkpoint and restart the run, which a reader of a
        finished run (``wsnas evolve``) replaces with its own advice.
        """
        path = self.run_dir / CHECKPOINT
        if not path.exists():
            return False
        fix = remedy or "delete it to restart this run"
        try:
            state = torch.load(path, map_location=self.data.train.x.device, weights_only=True)
        except Exception as exc:  # a corrupt file is a user-visible problem, not a traceback
            raise WsnasError(f"checkpoint {path} cannot be read ({type(exc).__name__}); {fix}") from None
        self._check_state(state, path, fix)
        if state["config"] != json.dumps(self.config(), sort_keys=True):
            raise WsnasError(f"checkpoint {path} belongs to a run with other settings; "
                             f"{remedy or 'use another run directory or delete it'}")
        part = "supernet"
        try:  # the parts in the order they are restored, so a failure names the one that did not fit
            self.supernet.load_state_dict(state["supernet"])
            part = "optimizer"
            self.optimizer.load_state_dict(state["optimizer"])
            if self.bank is not None:
                part = "bank"
                self.bank.load_state_dict(state["bank"])
            part = "strategy"
            self.strategy.load_state_dict(state["strategy"])
            if self.gradvar is not None:
                part = "gradvar"
                self.gradvar.load_state_dict(state["gradvar"])
            if isinstance(self.store, RowCollector):
                part = "collected"
                self.store.load_state_dict(state["collected"])
            part = "random generator states"
            torch.set_rng_state(state["torch_rng"].cpu())
            self.batch_gen.set_state(state["batch_rng"].cpu())
            if "arch_rng" in state:
                self.arch_gen.set_state(state["arch_rng"].cpu())
            part = "epoch and history"
            self.epoch = int(state["epoch"])
            self.history = list(state["history"])
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            if isinstance(exc, WsnasError):
                raise
            detail = " ".join(str(exc).split())
            detail = detail if len(detail) <= 200 else detail[:200] + " ..."
            raise WsnasError(f"checkpoint {path} does not fit this run: its {part} cannot be restored "
                             f"({type(exc).__name__}: {detail}); {fix}") from None
        return True

    def _check_state(self, state, path: Path, fix: str) -> None:
        """Refuse a readable checkpoint that is not a whole checkpoint of this kind of run, naming
        what it lacks."""
        if not isinstance(state, dict):
            raise WsnasError(f"checkpoint {path} holds a {type(state).__name__}, not a wsnas supernet "
                             f"checkpoint; {fix}")
        needed = ["config", "epoch", "supernet", "optimizer", "strategy", "torch_rng", "batch_rng", "history"]
        needed += ["bank"] * (self.bank is not None) + ["gradvar"] * (self.gradvar is not None)
        needed += ["collected"] * isinstance(self.store, RowCollector)
        missing = [k for k in needed if k not in state]
        if missing:
            raise WsnasError(f"checkpoint {path} is not a whole wsnas supernet checkpoint: it lacks "
                             f"{', '.join(map(repr, missing))}; {fix}")
        if not isinstance(state["config"], str):
            raise WsnasError(f"checkpoint {path} has a {type(state['config']).__name__} as its 'config', "
                             f"not a run's settings; {fix}")

    # ------------------------------------------------------------------ training
    def lr(self, epoch: int) -> float:
        return cosine_lr(self.cfg.train, epoch)

    def train(self, *, on_step: Callable[[int, object], None] | None = None,
              monitor: RunMonitor | None = None) -> dict:
        """Train the remaining epochs; returns the last epoch's summary.

        ``monitor`` (:class:`~wsnas.training.monitor.RunMonitor`, on rank 0 only) is told of every
        step, epoch, evaluation and named scalar as they happen (live TensorBoard curves); the
        caller opens and closes it.

        Raises:
            Diverged: the training loss became NaN or infinite (checked after every epoch and
                before every dense evaluation); the epoch it happened in is not stored.
        """
        t = self.cfg.train
        dense_from = self.total_steps - self.cfg.dense_last if self.cfg.dense_last else None
        monitor = monitor if monitor is not None and self.is_main else RunMonitor()
        names = self.names
        # the scores of a dense evaluation after an epoch's last step, with the supernet's state
        # then: the epoch's own evaluation reuses them when nothing changed in between
        reusable: tuple[int, list, list] | None = None
        if self.epoch < t.epochs:
            monitor.on_start(self.epoch * self.steps_per_epoch)
        bar = tqdm(total=self.total_steps, initial=self.epoch * self.steps_per_epoch,
                   desc=f"supernet {self.run_id or self.strategy.name}", unit="step",
                   disable=not self.progress, dynamic_ncols=True, leave=False)
        try:
            while self.epoch < t.epochs:
                start = time.perf_counter()
                for group in self.optimizer.param_groups:
                    group["lr"] = self.lr(self.epoch)
                self.supernet.train()
                loss_sum = torch.zeros((), device=self.data.train.x.device)
                correct = torch.zeros((), dtype=torch.long, device=self.data.train.x.device)
                seen = 0
                step = self.epoch * self.steps_per_epoch
                log = []
                arch_batches = None if self.strategy.arch_data is None or self.arch_split is None else \
                    cycle_batches(self.arch_split, t.batch_size, self.arch_gen, self.data.augment)
                # the epoch's sample order: a shuffle, or the strategy's own draw (PA&DA's data sampling)
                order = self.strategy.epoch_indices(len(self.weight_split), self.batch_gen)
                if order is None:
                    order = epoch_order(self.weight_split, shuffle=True, generator=self.batch_gen)
                batches = iterate_batches(self.weight_split, t.batch_size, shuffle=False, indices=order,
                                          generator=self.batch_gen,
                                          augment=self.data.augment)
                for b, (x, y) in enumerate(batches):
                    indices = order[b * t.batch_size: (b + 1) * t.batch_size]  # the samples of this batch
                    result = self._step(x, y, None if arch_batches is None else next(arch_batches), indices)
                    if self.gradvar is not None:
                        window = self.gradvar.update()  # the gradient of this step (the last path's)
                        if window is not None:
                            values = {name: window[k] for k, name in METRIC_NAMES.items()}
                            self._log_metrics(values, step + 1)
                            monitor.on_metrics("gradient", values, step + 1)
                    loss_sum += result.loss * result.count
                    correct += result.correct
                    seen += result.count
                    step += 1
                    log.append((step, result))
                    monitor.on_step(step, self.epoch, result)
                    if on_step is not None:
                        on_step(step, result)
                    if dense_from is not None and step > dense_from and \
                            (self.total_steps - step) % self.cfg.dense_every == 0:
                        self._check_finite(loss_sum, seen)  # no predictions of a diverged supernet
                        results = self.score()
                        accs = self.store_scores(f"step:{step}", results, step=step)
                        monitor.on_evaluation(step, names, accs, dense=True)
                        if self.cfg.eval_every_epoch and step == (self.epoch + 1) * self.steps_per_epoch:
                            reusable = (step, results, self._state_snapshot())
                    bar.update(1)
                self._check_finite(loss_sum, seen)  # before anything of this epoch is stored
                self.strategy.end_epoch(self.epoch)
                self._log_steps(log)
                epoch_metrics = self.strategy.epoch_metrics()
                if epoch_metrics:
                    self._log_metrics(epoch_metrics, step)
                    monitor.on_metrics("strategy", epoch_metrics, step)
                self.epoch += 1
                summary = {"epoch": self.epoch, "lr": self.lr(self.epoch - 1),
                           "train_loss": loss_sum.item() / seen, "train_acc": correct.item() / seen,
                           "seconds": time.perf_counter() - start}
                if self.cfg.eval_every_epoch:
                    same = reusable is not None and reusable[0] == step and self._state_unchanged(reusable[2])
                    accs = self.store_scores(f"epoch:{self.epoch}", reusable[1] if same else self.score(), step=step)
                    summary["mean_child_acc"] = sum(accs) / len(accs)
                    monitor.on_evaluation(step, names, accs)
                self.history.append(summary)
                self._log_metrics({"epoch_seconds": summary["seconds"], "train_loss": summary["train_loss"],
                                   "train_acc": summary["train_acc"],
                                   **({"mean_child_acc": summary["mean_child_acc"]}
                                      if "mean_child_acc" in summary else {})}, step)
                monitor.on_epoch(step, summary)
                self.save()
        finally:
            bar.close()
        return self.history[-1] if self.history else {}

    def _check_finite(self, loss_sum: torch.Tensor, seen: int) -> None:
        """Stop a run whose training loss became NaN or infinite (:class:`Diverged`): its epoch is
        neither stored nor checkpointed, so the store keeps the epochs before it."""
        loss = loss_sum.item() / max(seen, 1)
        if math.isfinite(loss):
            return
        name = f"supernet run {self.run_id!r}" if self.run_id else "supernet training"
        kept = f", its {self.epoch} earlier epoch{'s' if self.epoch > 1 else ''} kept" if self.epoch else ""
        raise Diverged(f"{name} diverged at epoch {self.epoch + 1} (train loss {loss}); stopped{kept}; lower the "
                       "learning rate (--lr)", epoch=self.epoch + 1, loss=loss, run_id=self.run_id)

    def _step(self, x: torch.Tensor, y: torch.Tensor, arch_batch=None, indices: torch.Tensor | None = None):
        """One strategy step on the global batch ``x, y`` (this rank's shard when data-parallel;
        ``indices``: the global batch's positions in the weight split); the result describes the
        global batch."""
        rep = self.replica
        if rep is None:
            return self.strategy.step(x, y, arch_batch, indices=indices)
        rep.global_count = len(y)
        with rep.sync_bn():
            result = self.strategy.step(rep.shard(x), rep.shard(y), indices=indices)
        sums = torch.stack([result.loss.detach().double() * result.count,
                            result.correct.double()]).to(rep.device or result.loss.device)
        rep.all_reduce_(sums)
        sums = sums.to(result.loss.device)
        return replace(result, loss=(sums[0] / len(y)).to(result.loss.dtype),
                       correct=sums[1].round().long(), count=len(y))

    def _log_metrics(self, values: dict, step: int) -> None:
        """Named scalars of this run at global ``step`` (the store's ``run_metrics``)."""
        if not self.is_main or self.store is None or self.run_id is None:
            return
        self.store.add_run_metrics(self.run_id, [{"name": k, "step": step, "epoch": self.epoch, "value": v}
                                                 for k, v in values.items()])

    def _log_steps(self, log) -> None:
        """Store which child each step of the epoch trained, with its batch loss/accuracy."""
        if not self.is_main or self.store is None or self.run_id is None or not log:
            return
        losses = torch.stack([r.loss for _, r in log]).tolist()
        correct = torch.stack([r.correct for _, r in log]).tolist()
        self.store.add_train_steps(self.run_id, [
            {"step": step, "epoch": self.epoch,
             "arch": None if r.arch is None else self.space.format(r.arch),
             "arch_index": None if r.arch is None else self.space.index(r.arch),
             "loss": loss, "accuracy": c / r.count}
            for (step, r), loss, c in zip(log, losses, correct)])

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, label: str, *, step: int) -> list[float]:
        """Score every child on the validation split and store the predictions under ``label``."""
        return self.store_scores(label, self.score(), step=step)

    def score(self) -> list[tuple[float, float]]:
        """(accuracy, loss) of every child on the validation split with the weights as they are."""
        results = evaluate_archs(self.supernet, self.archs, self.data.valid, self.cfg.eval,
                                 recal=self._recal, replica=self.replica, bank=self.bank)
        self.supernet.train()
        return results

    def _state_snapshot(self) -> list[torch.Tensor] | None:
        """A copy of everything a score depends on (the supernet's weights and BN statistics);
        None under partial sharing, whose private copies live in the bank."""
        if self.bank is not None:
            return None
        return [t.detach().clone() for t in self.supernet.state_dict().values()]

    def _state_unchanged(self, snapshot: list[torch.Tensor] | None) -> bool:
        """Whether the supernet still holds ``snapshot`` exactly (a strategy's ``end_epoch`` may
        change weights; the built-in ones do not)."""
        return snapshot is not None and all(
            torch.equal(a, b) for a, b in zip(snapshot, self.supernet.state_dict().values(), strict=True))

    def store_scores(self, label: str, results: list[tuple[float, float]], *, step: int) -> list[float]:
        """Store ``results`` (of :meth:`score`) as the predictions under ``label``; their accuracies."""
        if self.is_main and self.store is not None and self.run_id is not None:
            self.store.add_predictions(self.run_id, [
                {"checkpoint": label, "epoch": self.epoch, "step": step,
                 "arch": self.space.format(a), "arch_index": self.space.index(a),
                 "accuracy": acc, "loss": loss}
                for a, (acc, loss) in zip(self.archs, results)])
        return [acc for acc, _ in results]


def trainer_from_config(config: dict, data: Dataset, run_dir: str | os.PathLike, **options) -> SupernetTrainer:
    """The trainer of a stored run, the inverse of :func:`trainer_config`: its space, strategy
    (:func:`~wsnas.strategies.strategy_from_description`), sharing, evaluated children, supernet
    settings and seed from ``config`` (the run's identity in the store), on ``data`` (the run's
    data, reloaded by the caller). Nothing is read from ``run_dir`` yet: :meth:`SupernetTrainer.try_resume`
    loads the checkpoint there and refuses one that is not this run's. ``options``: the
    constructor's other keywords (``progress``, ``store``, ``run_id``)."""
    space = space_from_description(config["space"])
    sharing = Sharing(**config["sharing"]) if "sharing" in config else None
    archs = [space.from_index(int(i)) for i in config.get("archs", ())]
    return SupernetTrainer(space, data, strategy_from_description(config["strategy"]),
                           SupernetConfig.from_dict(config["supernet"]), seed=config["seed"], run_dir=run_dir,
                           archs=archs, sharing=sharing, **options)
