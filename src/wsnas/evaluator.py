"""Score architectures with shared weights: the evaluator only ranks, it never trains.

Batch norm decides much of what a child scores with shared weights, so the BN mode is explicit:

* ``running`` — eval-mode BN with the supernet's running statistics (the 64-child paper);
* ``batch`` — statistics of each evaluation batch (DARTS-PT, PA&DA); the supernet's running
  statistics are left untouched;
* ``recal`` — running statistics re-estimated for each child on ``recal_batches`` training
  batches (the same batches for every child), then eval-mode BN; the supernet's own
  statistics are restored afterwards.

In a data-parallel run (``replica`` given) every rank calls :func:`evaluate_archs` in
lockstep: each recalibration batch is split across the ranks and its batch-norm statistics are
all-reduced, so every rank ends with the statistics a single process computes on the whole
batch; scoring then runs on every rank with identical weights and gives identical results.

Under partial sharing the caller passes the supernet's weight bank (``bank``, see
:mod:`wsnas.supernet.bank`): every key's private statistics are restored afterwards, children
are scored one at a time (each forward binds the child's own copies) and the stem is computed
once per batch only where it is shared.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wsnas.core.errors import WsnasError
from wsnas.data import Split, iterate_batches
from wsnas.nn.stacked import grouped_batchnorm, per_arch_batchnorm, stacked_loss_and_correct, stacked_path
from wsnas.spaces import Arch
from wsnas.supernet.bank import WeightBank

BN_MODES = ("running", "batch", "recal")


@dataclass(frozen=True)
class EvalConfig:
    """How children are scored with shared weights."""

    bn_mode: str = "running"
    recal_batches: int = 10
    batch_size: int = 512
    recal_batch_size: int = 256
    # architectures scored together in one forward pass (running and batch BN modes; see
    # wsnas.nn.stacked): the same numbers up to floating-point rounding, faster where
    # launches and Python dominate (small images, GPUs)
    arch_batch: int = 1

    def __post_init__(self) -> None:
        if self.bn_mode not in BN_MODES:
            raise WsnasError(f"unknown BN mode {self.bn_mode!r}; accepted: {', '.join(BN_MODES)}")
        for name in ("recal_batches", "batch_size", "recal_batch_size", "arch_batch"):
            if getattr(self, name) < 1:
                raise WsnasError(f"{name} must be at least 1, got {getattr(self, name)}")

    def to_dict(self, *, execution: bool = False) -> dict:
        """The settings that decide the scores; with ``execution`` also how they are computed
        (``arch_batch``, which changes speed, not results, and so is no part of a run's identity)."""
        d = asdict(self)
        if not execution:
            del d["arch_batch"]
        return d


def _bn_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextmanager
def preserved_bn_state(model: nn.Module, bank: WeightBank | None = None) -> Iterator[None]:
    """Restore every BN layer's running statistics, momentum and mode on exit.

    With ``model``'s weight bank (partial sharing) every key's private statistics are restored too.
    """
    with nullcontext() if bank is None else bank.preserved_buffers(), _preserved_live_bn(model):
        yield


@contextmanager
def _preserved_live_bn(model: nn.Module) -> Iterator[None]:
    layers = _bn_layers(model)
    saved = [(m.momentum, m.training,
              None if m.running_mean is None else m.running_mean.clone(),
              None if m.running_var is None else m.running_var.clone(),
              None if m.num_batches_tracked is None else m.num_batches_tracked.clone())
             for m in layers]
    was_training = model.training
    try:
        yield
    finally:
        for m, (momentum, training, mean, var, tracked) in zip(layers, saved):
            m.momentum = momentum
            m.train(training)
            if mean is not None:
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(tracked)
        model.train(was_training)


def _can_stack(model: nn.Module, archs: Sequence[Arch | None], bank: WeightBank | None) -> bool:
    """Stacked evaluation needs a supernet whose every choice takes one op per architecture
    (tiny64, NB201; not DARTS, whose children leave edges out) and that scores architectures
    on shared weights (no private copies to swap in per child)."""
    return (len(archs) > 1 and all(a is not None for a in archs)
            and getattr(model, "supports_stacking", False) and bank is None)


def _stacked_logits(model: nn.Module, archs: Sequence[Arch], x: torch.Tensor,
                    stem: torch.Tensor | None = None) -> torch.Tensor:
    """Logits of ``archs`` stacked along the batch (one copy of ``x``, or of its ``stem``, each)."""
    a = len(archs)
    path = stacked_path(model.space, archs, len(x))
    if stem is not None:
        return model(None, path, stem=stem.repeat(a, *([1] * (stem.dim() - 1))))
    return model(x.repeat(a, *([1] * (x.dim() - 1))), path)


@torch.no_grad()
def _score_stacked(model: nn.Module, archs: Sequence[Arch], split: Split, batch_size: int,
                   arch_batch: int) -> list[tuple[float, float]]:
    """:func:`_score` with ``arch_batch`` architectures per forward pass."""
    device = split.y.device
    correct = torch.zeros(len(archs), dtype=torch.long, device=device)
    loss_sum = torch.zeros(len(archs), dtype=torch.float64, device=device)
    shared_stem = getattr(model, "forward_stem", None)
    for x, y in iterate_batches(split, batch_size, shuffle=False):
        n = len(y)
        stem = shared_stem(x) if shared_stem is not None else None
        with grouped_batchnorm(model, n):
            for start in range(0, len(archs), arch_batch):
                chunk = archs[start:start + arch_batch]
                loss, right = stacked_loss_and_correct(_stacked_logits(model, chunk, x, stem), y, len(chunk))
                loss_sum[start:start + len(chunk)] += loss
                correct[start:start + len(chunk)] += right
    n = len(split)
    return [(c / n, l / n) for c, l in zip(correct.tolist(), loss_sum.tolist())]


@torch.no_grad()
def _score(model: nn.Module, archs: Sequence[Arch | None], split: Split,
           batch_size: int, arch_batch: int = 1, bank: WeightBank | None = None) -> list[tuple[float, float]]:
    """(accuracy, loss) of each architecture, batches outside and architectures inside.

    A supernet with ``forward_stem`` (the part no choice affects) computes it once per batch
    for all architectures, unless the stem has private copies (group sharing), and one that
    ``supports_memo`` shares more of it among the children of one batch (tiny64's first cell);
    the result is identical to running each architecture alone. ``arch_batch`` > 1 scores that many
    architectures per forward pass (:func:`_score_stacked`).
    """
    if arch_batch > 1 and _can_stack(model, archs, bank):
        return _score_stacked(model, archs, split, batch_size, arch_batch)
    device = split.y.device
    correct = torch.zeros(len(archs), dtype=torch.long, device=device)
    loss_sum = torch.zeros(len(archs), dtype=torch.float64, device=device)
    shared_stem = getattr(model, "forward_stem", None) if all(a is not None for a in archs) else None
    if bank is not None and not bank.is_shared("stem"):
        shared_stem = None
    # children scored on one stem share what only the stem and their options decide (tiny64's
    # first cell); not under partial sharing, where a child's cells may be its own copies
    memoise = shared_stem is not None and bank is None and getattr(model, "supports_memo", False)
    for x, y in iterate_batches(split, batch_size, shuffle=False):
        stem = shared_stem(x) if shared_stem is not None else None
        memo = {} if memoise else None
        for i, arch in enumerate(archs):
            if arch is None:
                logits = model(x)
            elif memo is not None:
                logits = model(x, arch, stem=stem, memo=memo)
            elif stem is not None:
                logits = model(x, arch, stem=stem)
            else:
                logits = model(x, arch)
            loss_sum[i] += F.cross_entropy(logits, y, reduction="sum").double()
            correct[i] += (logits.argmax(1) == y).sum()
    n = len(split)
    return [(c / n, l / n) for c, l in zip(correct.tolist(), loss_sum.tolist())]


@torch.no_grad()
def _recal_stacked(model: nn.Module, archs: Sequence[Arch], split: Split, recal: Sequence[torch.Tensor],
                   batch_size: int) -> list[tuple[float, float]]:
    """``bn_mode="recal"`` for ``archs`` in one stacked pass: every child's BN statistics
    re-estimated on the recalibration batches, then every child scored with its own."""
    a = len(archs)
    device = split.y.device
    correct = torch.zeros(a, dtype=torch.long, device=device)
    loss_sum = torch.zeros(a, dtype=torch.float64, device=device)
    with per_arch_batchnorm(model, a) as bn:
        model.train()
        for x in recal:
            bn.n = len(x)
            _stacked_logits(model, archs, x)
        bn.recalibrating = False
        model.eval()
        for x, y in iterate_batches(split, batch_size, shuffle=False):
            bn.n = len(y)
            loss, right = stacked_loss_and_correct(_stacked_logits(model, archs, x), y, a)
            loss_sum += loss
            correct += right
    n = len(split)
    return [(c / n, l / n) for c, l in zip(correct.tolist(), loss_sum.tolist())]


# children recalibrated per shared-stem pass: each holds a copy of every BN layer's statistics
# (a few hundred kB in NB201 at C=16, N=5), so a whole space is done a chunk at a time
_SHARED_STEM_CHUNK = 64


@torch.no_grad()
def _recal_shared_stem(model: nn.Module, archs: Sequence[Arch], split: Split, recal: Sequence[torch.Tensor],
                       batch_size: int) -> list[tuple[float, float]]:
    """``bn_mode="recal"`` for ``archs`` one at a time, with the stem computed once per batch.

    The stem has no choice point, so every child's stem sees the same batches and ends with the
    same statistics: it runs once per recalibration and scoring batch, for all children. Each
    child keeps its own running statistics (fresh buffers, rebound into the BN layers before its
    forward pass; a cumulative average as in :func:`evaluate_archs`), so the numbers are those of
    recalibrating and scoring each child alone.
    """
    tracked = [m for m in _bn_layers(model) if m.running_mean is not None]
    own = [(m.running_mean, m.running_var, m.num_batches_tracked) for m in tracked]

    def fresh() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        return [(torch.zeros_like(mean), torch.ones_like(var), torch.zeros_like(n)) for mean, var, n in own]

    def bind(stats) -> None:
        # straight into the layers' buffer tables: Module.__setattr__ costs ~30 us a call, which
        # at three per layer and pass is several percent of a small network's time
        for m, (mean, var, n) in zip(tracked, stats):
            buffers = m._buffers
            buffers["running_mean"], buffers["running_var"], buffers["num_batches_tracked"] = mean, var, n

    stem_stats, arch_stats = fresh(), [fresh() for _ in archs]
    device = split.y.device
    correct = torch.zeros(len(archs), dtype=torch.long, device=device)
    loss_sum = torch.zeros(len(archs), dtype=torch.float64, device=device)
    try:
        for m in tracked:
            m.momentum = None  # cumulative average over the recalibration batches
        model.train()
        for x in recal:
            bind(stem_stats)
            stem = model.forward_stem(x)
            for stats, arch in zip(arch_stats, archs):
                bind(stats)
                model(x, arch, stem=stem)
        model.eval()
        for x, y in iterate_batches(split, batch_size, shuffle=False):
            bind(stem_stats)
            stem = model.forward_stem(x)
            for i, (stats, arch) in enumerate(zip(arch_stats, archs)):
                bind(stats)
                logits = model(x, arch, stem=stem)
                loss_sum[i] += F.cross_entropy(logits, y, reduction="sum").double()
                correct[i] += (logits.argmax(1) == y).sum()
    finally:
        bind(own)  # the supernet's own buffers, restored by preserved_bn_state
    n = len(split)
    return [(c / n, l / n) for c, l in zip(correct.tolist(), loss_sum.tolist())]


def recalibration_batches(train: Split, cfg: EvalConfig, seed: int = 0) -> list[torch.Tensor]:
    """The fixed training batches (inputs only) every child's BN statistics are estimated on."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for x, _ in iterate_batches(train, cfg.recal_batch_size, shuffle=True, generator=gen):
        out.append(x)
        if len(out) == cfg.recal_batches:
            break
    return out


@torch.no_grad()
def evaluate_archs(model: nn.Module, archs: Sequence[Arch | None], split: Split, cfg: EvalConfig,
                   *, recal: Sequence[torch.Tensor] | None = None,
                   replica=None, bank: WeightBank | None = None) -> list[tuple[float, float]]:
    """(accuracy, loss) of each architecture on ``split`` with the weights ``model`` holds.

    ``model`` is a supernet (give ``Arch`` objects) or a standalone network (give ``None``).
    ``recal`` holds the recalibration batches for ``bn_mode="recal"``
    (see :func:`recalibration_batches`). ``replica`` (a :class:`wsnas.core.distributed.Replica`):
    data-parallel recalibration, every rank calling this in lockstep. ``bank``: ``model``'s weight
    bank under partial sharing (each child scored with its own copies; every key restored).
    """
    if cfg.bn_mode == "recal" and not recal:
        raise ValueError("bn_mode 'recal' needs recalibration batches")
    with preserved_bn_state(model, bank):
        if cfg.bn_mode != "recal":
            # running: eval-mode BN; batch: BN normalises with batch statistics (the running
            # statistics it updates meanwhile are restored on exit)
            model.train(cfg.bn_mode == "batch")
            return _score(model, archs, split, cfg.batch_size, cfg.arch_batch, bank)
        if cfg.arch_batch > 1 and replica is None and _can_stack(model, archs, bank):
            return [score for start in range(0, len(archs), cfg.arch_batch)
                    for score in _recal_stacked(model, archs[start:start + cfg.arch_batch], split, recal,
                                                cfg.batch_size)]
        if (replica is None and bank is None and len(archs) > 1 and all(a is not None for a in archs)
                and hasattr(model, "forward_stem")):
            return [score for start in range(0, len(archs), _SHARED_STEM_CHUNK)
                    for score in _recal_shared_stem(model, archs[start:start + _SHARED_STEM_CHUNK], split, recal,
                                                    cfg.batch_size)]
        results = []
        for arch in archs:
            if bank is not None and arch is not None:
                bank.activate_arch(arch)  # reset the statistics of this child's own copies
            model.train()
            for m in _bn_layers(model):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the recalibration batches
            for x in recal:
                with nullcontext() if replica is None else replica.sync_bn():
                    if replica is not None:
                        x = replica.shard(x)
                    model(x) if arch is None else model(x, arch)
            model.eval()
            results += _score(model, [arch], split, cfg.batch_size, bank=bank)
        return results
