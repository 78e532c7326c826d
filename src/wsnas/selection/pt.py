"""Perturbation-based architecture selection (DARTS-PT); see :mod:`wsnas.selection`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from wsnas.core.errors import WsnasError
from wsnas.data import Dataset, Split, iterate_batches
from wsnas.evaluator import EvalConfig, evaluate_archs
from wsnas.selection.base import Selector, select_magnitude
from wsnas.spaces import Arch
from wsnas.training.standalone import TrainConfig, cosine_lr
from wsnas.training.trainer import cycle_batches


@dataclass(frozen=True)
class PTConfig:
    """DARTS-PT's procedure (defaults: the authors' NB201 settings)."""

    interval: int = 5        # tuning epochs between two decisions
    lr: float = 0.0025       # weight lr while tuning (cosine to lr_min)
    lr_min: float = 0.001
    batch_size: int = 64
    eval_batch_size: int = 512
    seed: int = 0            # order in which edges are decided
    tune: bool = True        # tune between decisions (off: decide everything at once)

    def __post_init__(self) -> None:
        if self.interval < 0:
            raise WsnasError(f"PT's tuning interval must be non-negative, got {self.interval}")

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def _accuracy(strategy, split: Split, batch_size: int, **perturb) -> float:
    """Validation accuracy of the supernet's mixture (batch-statistics BN), perturbed as asked."""
    path = strategy.mixed_path(strategy.arch.weights().detach(), **perturb)
    return evaluate_archs(strategy.supernet, [path], split, EvalConfig(bn_mode="batch", batch_size=batch_size))[0][0]


def op_strengths(strategy, edge: int, split: Split, batch_size: int = 512, exclude=()) -> dict[int, float]:
    """Accuracy with each op of ``edge`` masked out (lower: the op matters more)."""
    options = strategy.relaxation.edges[edge].options
    return {o: _accuracy(strategy, split, batch_size, mask=(edge, o)) for o, name in enumerate(options)
            if name not in exclude}


def _cell_groups(strategy) -> list[list[int]]:
    """Edges decided in parallel: one group per cell type (``normal.*`` / ``reduce.*``), else one."""
    groups: dict[str, list[int]] = {}
    for e, edge in enumerate(strategy.relaxation.edges):
        groups.setdefault(edge.name.split(".")[0] if "." in edge.name else "", []).append(e)
    return list(groups.values())


def select_pt(trainer, data: Dataset, cfg: PTConfig = PTConfig(), *, progress: bool = True,
              log: Callable[[str], None] | None = None) -> Arch:
    """Decide every edge of ``trainer``'s differentiable strategy by perturbation; returns the arch.

    ``trainer`` is a trained :class:`~wsnas.training.trainer.SupernetTrainer`; its supernet, architecture
    weights and decisions are modified in place (tuning continues training them).
    """
    strategy = trainer.strategy
    if not strategy.differentiable:
        raise WsnasError(f"PT selection needs a differentiable search, not {strategy.name!r}")
    relax = strategy.relaxation
    exclude = set(strategy.exclude) | ({"none"} if relax.inputs_per_node else set())
    rng = np.random.default_rng(cfg.seed)
    groups = [[e for e in g if e not in strategy.decided] for g in _cell_groups(strategy)]
    for g in groups:
        rng.shuffle(g)
    rounds = max(len(g) for g in groups)
    topology = _topology_rounds(strategy) if relax.inputs_per_node else 0
    total = rounds + topology
    tune_epochs = cfg.interval * max(0, total - 1) if cfg.tune else 0
    optimizer = torch.optim.SGD(trainer.supernet.parameters(), lr=cfg.lr, momentum=0.9,
                                weight_decay=trainer.cfg.train.weight_decay)
    strategy.use_optimizer(optimizer)
    schedule = TrainConfig(epochs=max(1, tune_epochs), lr=cfg.lr, lr_min=cfg.lr_min)
    bar = tqdm(total=total, desc="PT selection", unit="decision", disable=not progress, dynamic_ncols=True)
    epoch = 0
    try:
        for r in range(total):
            if r < rounds:
                for g in groups:
                    if r < len(g):
                        e = int(g[r])
                        strengths = op_strengths(strategy, e, data.valid, cfg.eval_batch_size, exclude)
                        best = min(strengths, key=lambda o: (strengths[o], o))
                        strategy.decide(e, best)
                        if log:
                            log(f"      edge {relax.edges[e].name}: keep {relax.edges[e].options[best]} "
                                f"(accuracy without it {strengths[best]:.4f})")
            else:
                _remove_one_input_per_node(strategy, data.valid, cfg.eval_batch_size, log)
            bar.update(1)
            if cfg.tune and r < total - 1:
                for _ in range(cfg.interval):
                    _tune_epoch(trainer, strategy, optimizer, cosine_lr(schedule, epoch), cfg.batch_size,
                                seed=cfg.seed * 100_003 + epoch)
                    epoch += 1
    finally:
        bar.close()
    return select_magnitude(strategy)


class PTSelector(Selector):
    """DARTS-PT; its options are :class:`PTConfig`'s fields (``PTSelector(interval=1, seed=3)``).

    It tunes the supernet in memory between decisions, so it runs after the methods that do not,
    and it decides by perturbation, not by the architecture weights' values (so it also selects
    from a fixed-alpha supernet).
    """

    name = "pt"
    label = "PT"
    changes_supernet = True
    needs_alpha = False

    def __init__(self, **options) -> None:
        self.cfg = PTConfig(**options)

    def select(self, trainer, data: Dataset, *, progress: bool = True) -> Arch:
        return select_pt(trainer, data, self.cfg, progress=progress)


def _topology_rounds(strategy) -> int:
    """Removals needed at the busiest node (each round removes one input at every node)."""
    keep = strategy.relaxation.inputs_per_node
    return max(0, max(len(es) for es in strategy.relaxation.nodes().values()) - keep)


def _remove_one_input_per_node(strategy, split: Split, batch_size: int, log) -> None:
    relax = strategy.relaxation
    for node, edges in relax.nodes().items():
        alive = [e for e in edges if strategy.decided.get(e, 0) is not None]
        if len(alive) <= relax.inputs_per_node:
            continue
        # drop the edge whose removal leaves the highest accuracy
        scores = {e: _accuracy(strategy, split, batch_size, drop_edge=e) for e in alive}
        drop = max(scores, key=lambda e: (scores[e], -e))
        strategy.decide(drop, None)
        if log:
            log(f"      node {node}: drop input {relax.edges[drop].source} (accuracy without it {scores[drop]:.4f})")


def _tune_epoch(trainer, strategy, optimizer, lr: float, batch_size: int, *, seed: int) -> None:
    """One epoch of the search's alternating steps, with the tuning optimiser at ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    trainer.supernet.train()
    gen = torch.Generator(device="cpu").manual_seed(2 * seed)
    arch_gen = torch.Generator(device="cpu").manual_seed(2 * seed + 1)
    # architecture batches cycle, as in the search: a smaller split (arch_split="valid") never runs out
    arch_batches = None
    if trainer.arch_split is not None:
        arch_batches = cycle_batches(trainer.arch_split, batch_size, arch_gen, trainer.data.augment)
    for x, y in iterate_batches(trainer.weight_split, batch_size, shuffle=True, generator=gen,
                                augment=trainer.data.augment):
        strategy.step(x, y, None if arch_batches is None else next(arch_batches))


__all__ = ["PTConfig", "PTSelector", "op_strengths", "select_pt"]
