"""Perturbation-based architecture selection (DARTS-PT; Wang et al., ICLR 2021); see :mod:`wsnas.selection`.

The procedure follows the authors' code, ruocwang/darts-pt (read for this module):

* ``nasbench201/projection.py`` (``pt_project``, NB201 and tiny64 here): the weight optimiser is
  replaced by SGD at lr ``0.025 / 10 = 0.0025`` (momentum 0.9, the search's weight decay) with no
  schedule, so the tuning lr is constant; an undecided edge is drawn at random every
  ``proj_intv = 5`` tuning epochs; an op's strength is the accuracy with its weight zeroed on that
  edge (the others left as they are) and the op whose removal leaves the lowest accuracy is kept
  (``proj_crit acc``; the first such op on a tie).
* ``nasbench201/train_search.py`` and ``sota/cnn/train_search.py``: ``np.random.seed(args.seed)``
  before anything is drawn, so the edge order is the run's seed (here: the search's seed;
  :attr:`PTConfig.seed` overrides it); ops are scored by ``infer(valid_queue, ..., eval=False)``:
  on ``valid_queue``, the half of the training data that the architecture steps use, at
  ``--batch_size 64``, BN with batch statistics. Here: the trainer's architecture split (the
  second half of the training split, the valid split with ``arch_split="valid"``, the training
  split itself single-level), at batch 64, in a fixed order (the authors' loader reshuffles).
  Tuning alternates architecture and weight steps on the search's two splits, as their loop does.
* ``sota/cnn/projection.py`` (DARTS space): normal and reduce cells are decided in parallel, one
  random edge of each per round, 14 rounds; then the topology (``project_edge``), one random node
  of each cell type per round among those with more than two inputs: every incoming edge is
  scored by the accuracy with that edge zeroed (the node's other inputs in place), and the node
  keeps the two whose removal leaves the lowest accuracy, all its other inputs removed at once
  (their loop removes the highest-scoring edge until two remain, re-scoring with the same
  weights, which keeps the same two). Tuning runs between rounds (5 epochs), never within one.
  Their cosine scheduler there is built but never stepped, so that lr is constant 0.0025 too.
  ``none`` is never kept here (the genotype cannot hold it); the authors score it like any op.

Not followed: in NB201 the authors decide the last edge after 4 tuning epochs instead of 5
(``tune_epochs = proj_intv * (edges - 1)`` with a decision also at the last epoch) and tune one
more epoch after it; here every gap is ``interval`` epochs and nothing is tuned after the last
decision (it cannot change the choice).
"""

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
from wsnas.training.trainer import cycle_batches


@dataclass(frozen=True)
class PTConfig:
    """DARTS-PT's procedure (defaults: the authors' settings, see the module docstring)."""

    interval: int = 5            # tuning epochs between two rounds of decisions
    lr: float = 0.0025           # the tuning optimiser's lr, constant
    batch_size: int = 64         # tuning batch
    eval_batch_size: int = 64    # scoring batch (batch-statistics BN: the batch size matters)
    seed: int | None = None      # order of the edges (and DARTS nodes); None: the search's seed
    tune: bool = True            # tune between decisions (off: decide everything at once)

    def __post_init__(self) -> None:
        if self.interval < 0:
            raise WsnasError(f"PT's tuning interval must be non-negative, got {self.interval}")
        if not self.lr > 0:
            raise WsnasError(f"PT's tuning lr must be positive, got {self.lr}")
        for name in ("batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise WsnasError(f"PT's {name} must be at least 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def _accuracy(strategy, split: Split, batch_size: int, **perturb) -> float:
    """Accuracy of the supernet's mixture on ``split`` (batch-statistics BN), perturbed as asked."""
    path = strategy.mixed_path(strategy.arch.weights().detach(), **perturb)
    return evaluate_archs(strategy.supernet, [path], split, EvalConfig(bn_mode="batch", batch_size=batch_size))[0][0]


def op_strengths(strategy, edge: int, split: Split, batch_size: int = 64, exclude=()) -> dict[int, float]:
    """Accuracy with each op of ``edge`` masked out (lower: the op matters more), by the op's position
    in the relaxation's ``options`` (the ops the edge offers, less ``exclude``)."""
    relax = strategy.relaxation
    offered = relax.allowed()[edge]
    return {o: _accuracy(strategy, split, batch_size, mask=(edge, o)) for o, name in enumerate(relax.options)
            if offered[o] and name not in exclude}


def score_split(trainer, data: Dataset) -> Split:
    """The data PT scores on: the search's architecture split (the valid split if it has none)."""
    return trainer.arch_split if trainer.arch_split is not None else data.valid


def _cell_type(name: str) -> str:
    return name.split(".")[0] if "." in name else ""


def _cell_groups(strategy) -> list[list[int]]:
    """Edges decided in parallel: one group per cell type (``normal.*`` / ``reduce.*``), else one."""
    groups: dict[str, list[int]] = {}
    for e, edge in enumerate(strategy.relaxation.edges):
        groups.setdefault(_cell_type(edge.name), []).append(e)
    return list(groups.values())


def _crowded_nodes(strategy) -> list[list[str]]:
    """Per cell type, the nodes with more candidate inputs than the space keeps (DARTS: 3 of 4)."""
    relax = strategy.relaxation
    groups: dict[str, list[str]] = {}
    for node, edges in relax.nodes().items():
        alive = [e for e in edges if strategy.decided.get(e, 0) is not None]
        if len(alive) > relax.inputs_per_node:
            groups.setdefault(_cell_type(node), []).append(node)
    return list(groups.values())


def select_pt(trainer, data: Dataset, cfg: PTConfig = PTConfig(), *, progress: bool = True,
              log: Callable[[str], None] | None = None) -> Arch:
    """Decide every edge of ``trainer``'s differentiable strategy by perturbation; returns the arch.

    ``trainer`` is a trained :class:`~wsnas.training.trainer.SupernetTrainer`; its supernet, architecture
    weights and decisions are modified in place (tuning continues training them). Ops are scored
    on :func:`score_split`; the order is drawn from ``cfg.seed``, else from the search's seed.
    """
    strategy = trainer.strategy
    if not strategy.differentiable:
        raise WsnasError(f"PT selection needs a differentiable search, not {strategy.name!r}")
    relax = strategy.relaxation
    exclude = set(strategy.exclude) | ({"none"} if relax.inputs_per_node else set())
    seed = trainer.seed if cfg.seed is None else cfg.seed
    split = score_split(trainer, data)
    rng = np.random.default_rng(seed)
    groups = [[e for e in g if e not in strategy.decided] for g in _cell_groups(strategy)]
    for g in groups:
        rng.shuffle(g)
    nodes = _crowded_nodes(strategy) if relax.inputs_per_node else []
    for g in nodes:
        rng.shuffle(g)
    rounds = max(len(g) for g in groups)
    total = rounds + max((len(g) for g in nodes), default=0)
    optimizer = torch.optim.SGD(trainer.supernet.parameters(), lr=cfg.lr, momentum=0.9,
                                weight_decay=trainer.cfg.train.weight_decay)
    strategy.use_optimizer(optimizer)
    bar = tqdm(total=total, desc="PT selection", unit="decision", disable=not progress, dynamic_ncols=True)
    epoch = 0
    try:
        for r in range(total):
            if r < rounds:
                for g in groups:
                    if r < len(g):
                        e = int(g[r])
                        strengths = op_strengths(strategy, e, split, cfg.eval_batch_size, exclude)
                        best = min(strengths, key=lambda o: (strengths[o], o))
                        strategy.decide(e, best)
                        if log:
                            log(f"      edge {relax.edges[e].name}: keep {relax.options[best]} "
                                f"(accuracy without it {strengths[best]:.4f})")
            else:
                for g in nodes:
                    if r - rounds < len(g):
                        _keep_inputs(strategy, g[r - rounds], split, cfg.eval_batch_size, log)
            bar.update(1)
            if cfg.tune and r < total - 1:
                for _ in range(cfg.interval):
                    _tune_epoch(trainer, strategy, optimizer, cfg.batch_size, seed=seed * 100_003 + epoch)
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


def _keep_inputs(strategy, node: str, split: Split, batch_size: int, log) -> None:
    """Keep the ``inputs_per_node`` inputs of ``node`` whose removal leaves the lowest accuracy
    (each scored with the node's other inputs in place; the lower edge on a tie); remove the rest."""
    relax = strategy.relaxation
    alive = [e for e in relax.nodes()[node] if strategy.decided.get(e, 0) is not None]
    scores = {e: _accuracy(strategy, split, batch_size, drop_edge=e) for e in alive}
    keep = sorted(alive, key=lambda e: (scores[e], e))[:relax.inputs_per_node]
    for e in alive:
        if e not in keep:
            strategy.decide(e, None)
    if log:
        log(f"      node {node}: keep inputs " + ", ".join(
            f"{relax.edges[e].source} (accuracy without it {scores[e]:.4f})" for e in sorted(keep)))


def _tune_epoch(trainer, strategy, optimizer, batch_size: int, *, seed: int) -> None:
    """One epoch of the search's alternating steps with the tuning optimiser (its lr is constant)."""
    trainer.supernet.train()
    # torch takes seeds below 2**64; the derived ones are reduced to that range (no change below it)
    gen = torch.Generator(device="cpu").manual_seed((2 * seed) % 2**64)
    arch_gen = torch.Generator(device="cpu").manual_seed((2 * seed + 1) % 2**64)
    # architecture batches cycle, as in the search: a smaller split (arch_split="valid") never runs out;
    # a fixed alpha takes none
    arch_batches = None
    if strategy.arch_data is not None and trainer.arch_split is not None:
        arch_batches = cycle_batches(trainer.arch_split, batch_size, arch_gen, trainer.data.augment)
    for x, y in iterate_batches(trainer.weight_split, batch_size, shuffle=True, generator=gen,
                                augment=trainer.data.augment):
        strategy.step(x, y, None if arch_batches is None else next(arch_batches))


__all__ = ["PTConfig", "PTSelector", "op_strengths", "score_split", "select_pt"]
