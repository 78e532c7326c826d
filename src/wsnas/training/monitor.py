"""Watching a run as it trains: the trainer's observer interface and its TensorBoard writer.

The trainer owns the training loop, so it is the one that reports what happens in it. It calls a
:class:`RunMonitor` (every method does nothing by default):

* ``on_start(step)`` — training starts, or resumes after global mini-batch ``step`` (0: a fresh run);
* ``on_step(step, epoch, result)`` — mini-batch ``step`` (1-based, global) of the 0-based ``epoch``
  trained; ``result`` is the strategy's :class:`~wsnas.strategies.StepResult` (its loss and number
  of correct predictions still on the device);
* ``on_metrics(group, values, step)`` — named scalars at ``step``, as the store's ``run_metrics``
  holds them: ``strategy`` (the strategy's ``epoch_metrics()``, after every epoch), ``gradient``
  (a gradient-variance window as it closes), ``groundtruth`` (a from-scratch training as it
  finishes);
* ``on_evaluation(step, names, accuracies, dense=...)`` — every child scored with the shared
  weights after an epoch (``dense=False``) or after one of the last mini-batches (``dense=True``);
* ``on_epoch(step, summary)`` — an epoch ended: the trainer's summary (``epoch``, ``lr``,
  ``train_loss``, ``train_acc``, ``seconds``);
* ``close()`` — the run is over for this process (a monitor is a context manager that closes).

:class:`TensorBoardMonitor` writes all of it as TensorBoard scalars (``tensorboard --logdir DIR``).
TensorBoard is an optional dependency (``pip install 'wsnas[tensorboard]'``): nothing imports it
unless a TensorBoard monitor is made, and :func:`check_tensorboard` refuses in one line, before any
work, when it is not installed. :func:`tensorboard_monitor` gives a TensorBoard monitor for a
folder, or the do-nothing monitor for none, so a caller needs no branch.

Tags (the step axis is the run's global mini-batch; a ground truth's is the count of finished
trainings):

====================================  =================================================================
``train/loss``, ``train/accuracy``    every mini-batch (written in batches of ``flush_steps``, so the
                                      loop is not stopped to copy each loss to the host)
``epoch/train_loss``, ``epoch/train_acc``, ``epoch/lr``, ``epoch/seconds``  after every epoch
``eval/mean_child_acc``, ``eval/best_child_acc``, ``eval/gt_tau``  after every epoch's evaluation
                                      (GT-Tau only with a ground truth: ``truth``)
``dense/...``                         the same after each of the last ``dense_last`` mini-batches
``strategy/<name>``                   the strategy's ``epoch_metrics()``: ``entropy`` and
                                      ``entropy/<edge>`` of the architecture weights, PA&DA's
                                      ``path_prob_<op>`` and ``data_ess``, ...
``gradient/<name>``                   the gradient-variance windows (``grad_variance``, ...)
``groundtruth/<name>``                each from-scratch training's accuracies and loss
====================================  =================================================================

A resumed run continues its curves: ``on_start(step)`` opens the writer with ``purge_step`` one
past ``step``, so TensorBoard drops what the interrupted process wrote after the checkpoint it
resumes from (the rerun writes those steps again).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from wsnas.core.errors import WsnasError
from wsnas.metrics import gt_tau
from wsnas.strategies import StepResult

#: What to install for TensorBoard logging.
INSTALL = "pip install 'wsnas[tensorboard]'"


def check_tensorboard(what: str = "TensorBoard logging") -> None:
    """Refuse (one line) when TensorBoard's writer cannot be imported: ``what`` needs it."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401 - the import is the check
    except ImportError:
        raise WsnasError(f"{what} needs the tensorboard package; install it with `{INSTALL}`") from None


class RunMonitor:
    """What a trainer reports while it trains; every method does nothing (see the module docstring)."""

    def on_start(self, step: int) -> None:
        """Training starts, or resumes after global mini-batch ``step`` (0: from the beginning)."""

    def on_step(self, step: int, epoch: int, result: StepResult) -> None:
        """Mini-batch ``step`` (global, 1-based) of ``epoch`` (0-based) trained."""

    def on_metrics(self, group: str, values: Mapping[str, float], step: int) -> None:
        """Named scalars of ``group`` (``strategy``, ``gradient``, ``groundtruth``) at ``step``."""

    def on_evaluation(self, step: int, names: Sequence[str], accuracies: Sequence[float], *,
                      dense: bool = False) -> None:
        """The children ``names`` scored ``accuracies`` with the shared weights at ``step``."""

    def on_epoch(self, step: int, summary: Mapping[str, float]) -> None:
        """An epoch ended at ``step``: the trainer's summary of it."""

    def close(self) -> None:
        """Nothing more will be reported by this process."""

    def __enter__(self) -> RunMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TensorBoardMonitor(RunMonitor):
    """Writes what a run reports as TensorBoard scalars into ``log_dir`` (tags: the module docstring).

    ``truth`` maps a child's canonical name to its ground-truth accuracy: each evaluation then adds
    GT-Tau (:func:`wsnas.metrics.gt_tau`, as the commands compute it at the end). Per-step values
    are copied to the host every ``flush_steps`` mini-batches and at every epoch's end; the writer
    flushes its file at every epoch's end and on :meth:`close`.
    """

    def __init__(self, log_dir: str | Path, *, truth: Mapping[str, float] | None = None, flush_steps: int = 50,
                 flush_secs: int = 10) -> None:
        check_tensorboard()
        if flush_steps < 1:
            raise WsnasError(f"flush_steps must be a positive number of mini-batches, got {flush_steps}")
        self.log_dir = Path(log_dir)
        self.truth = None if truth is None else {str(k): float(v) for k, v in truth.items()}
        self.flush_steps = flush_steps
        self.flush_secs = flush_secs
        self._writer = None
        self._steps: list[tuple[int, torch.Tensor, torch.Tensor, int]] = []  # step, loss, correct, count

    # ------------------------------------------------------------------ the writer
    def _open(self, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(str(self.log_dir), purge_step=purge_step, flush_secs=self.flush_secs)

    def scalar(self, tag: str, value: float, step: int) -> None:
        """One scalar (NaN and infinities are skipped: a curve has no point for them)."""
        value = float(value)
        if not math.isfinite(value):
            return
        if self._writer is None:
            self._open()
        self._writer.add_scalar(tag, value, int(step))

    # ------------------------------------------------------------------ the monitor
    def on_start(self, step: int) -> None:
        # everything an earlier process wrote after ``step`` is dropped: this one writes it again
        self.close()
        self._open(purge_step=int(step) + 1)

    def on_step(self, step: int, epoch: int, result: StepResult) -> None:
        self._steps.append((step, result.loss, result.correct, result.count))  # still on the device
        if len(self._steps) >= self.flush_steps:
            self._write_steps()

    def _write_steps(self) -> None:
        if not self._steps:
            return
        steps, losses, correct, counts = zip(*self._steps)
        self._steps = []
        values = torch.stack([torch.stack([loss.detach() for loss in losses]).double(),
                              torch.stack([torch.as_tensor(c) for c in correct]).double()], 1).tolist()  # one copy
        for step, (loss, c), count in zip(steps, values, counts):
            self.scalar("train/loss", loss, step)
            self.scalar("train/accuracy", c / count, step)

    def on_metrics(self, group: str, values: Mapping[str, float], step: int) -> None:
        for name, value in values.items():
            self.scalar(f"{group}/{name}", value, step)

    def on_evaluation(self, step: int, names: Sequence[str], accuracies: Sequence[float], *,
                      dense: bool = False) -> None:
        if not len(accuracies):
            return
        prefix = "dense" if dense else "eval"
        self.scalar(f"{prefix}/mean_child_acc", sum(accuracies) / len(accuracies), step)
        self.scalar(f"{prefix}/best_child_acc", max(accuracies), step)
        if self.truth is not None:
            gt = [self.truth.get(name, math.nan) for name in names]
            self.scalar(f"{prefix}/gt_tau", gt_tau(list(accuracies), gt), step)

    def on_epoch(self, step: int, summary: Mapping[str, float]) -> None:
        self._write_steps()
        for key in ("train_loss", "train_acc", "lr", "seconds"):
            if key in summary:
                self.scalar(f"epoch/{key}", summary[key], step)
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        self._write_steps()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def tensorboard_monitor(log_dir: str | Path | None, *, truth: Mapping[str, float] | None = None) -> RunMonitor:
    """A :class:`TensorBoardMonitor` writing into ``log_dir``, or the do-nothing monitor for None."""
    return RunMonitor() if log_dir is None else TensorBoardMonitor(log_dir, truth=truth)


__all__ = ["INSTALL", "RunMonitor", "TensorBoardMonitor", "check_tensorboard", "tensorboard_monitor"]
