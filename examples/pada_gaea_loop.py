"""PA&DA sampling and GAEA updates inside a plain PyTorch training loop of your own
(docs/python.md, section 3).

No wsnas trainer: the loops below own the data order, the forward and backward passes, the loss
and the optimiser, and ask wsnas only for what each method decides.

* PA&DA (Lu et al., CVPR 2023) picks the path of every step and the order of the data of every
  epoch in proportion to gradient norms: ``next_arch()`` gives the path, ``epoch_indices()`` the
  epoch's sample order (None in the first epoch: shuffle yourself), ``observe()`` after your
  optimiser step lets it read the step's gradients and logits, ``end_epoch()`` updates both
  distributions.
* GAEA (Li et al., ICLR 2021) keeps the architecture weights of every edge on the simplex and
  updates them by exponentiated gradient, ``theta <- theta * exp(-eta * grad)``, renormalised:
  ``ArchParams.for_relaxation(space.relaxation(), param="gaea")`` holds them and its
  ``make_optimizer()`` is the update. Here they alternate with SGD on the weights, DARTS's
  bilevel way: the architecture on validation batches, the weights on training batches.

Run it from the repository root:

    python -m examples.pada_gaea_loop --epochs 4 --limit 1000
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

from wsnas.data import Dataset, iterate_batches, load_dataset
from wsnas.spaces import Arch, Space, get_space
from wsnas.spaces.relax import Relaxation
from wsnas.strategies import StrategyContext, get_strategy
from wsnas.strategies.archparams import ArchParams
from wsnas.strategies.pada import PadaStrategy
from wsnas.training.trainer import cycle_batches


def pada_loop(space: Space, data: Dataset, *, epochs: int = 4, batch_size: int = 32, seed: int = 0,
              log=print) -> PadaStrategy:
    """Train a supernet with PA&DA's paths and data order in a loop of your own; returns PA&DA, whose
    ``probs`` are the op probabilities and ``q`` the data distribution of the next epoch."""
    torch.manual_seed(seed)
    supernet = space.build_supernet(num_classes=data.num_classes, in_channels=data.in_channels)
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    pada = get_strategy("pada")
    n = len(data.train)
    pada.setup(StrategyContext(supernet=supernet, space=space, optimizer=optimizer, seed=seed,
                               total_epochs=epochs, train_size=n))  # tau = e / epochs mixes in uniform
    gen = torch.Generator().manual_seed(seed)
    supernet.train()
    for epoch in range(epochs):
        order = pada.epoch_indices(n, gen)  # drawn from q; None in the first epoch
        if order is None:
            order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]  # positions in the training split
            x, y = data.train.x[idx], data.train.y[idx]
            arch = pada.next_arch()  # drawn from the op probabilities
            logits = supernet(x, arch)  # only that child's path runs
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)  # paths not taken get no gradient, no update
            loss.backward()
            optimizer.step()
            pada.observe(arch, logits, y, idx)  # the step's gradient norms and sample importances
        pada.end_epoch(epoch)
        probs = ", ".join(f"{op} {p:.3f}" for op, p in zip(pada.ops, pada.probs[0]))
        log(f"PA&DA epoch {epoch + 1}: op probabilities {probs}; {pada.epoch_metrics().get('data_ess', 1.0):.3f} "
            "effective share of the data")
    return pada


def gaea_step(supernet: nn.Module, relax: Relaxation, arch: ArchParams, arch_optimizer: torch.optim.Optimizer,
              x: torch.Tensor, y: torch.Tensor) -> float:
    """One exponentiated-gradient step of the architecture weights on the batch ``x, y``: the loss of
    the supernet whose every edge mixes its ops with the weights."""
    path = relax.path(list(arch.weights()))  # one weight vector per edge
    loss = F.cross_entropy(supernet(x, path), y)
    arch_optimizer.zero_grad(set_to_none=True)
    loss.backward()  # the weights' gradients too: the weight step below starts from zero
    arch_optimizer.step()  # theta * exp(-eta * grad), renormalised per edge
    return float(loss.detach())


def gaea_loop(space: Space, data: Dataset, *, epochs: int = 4, batch_size: int = 32, seed: int = 0,
              log=print) -> tuple[ArchParams, Arch]:
    """A bilevel search with GAEA's architecture updates in a loop of your own; returns the
    architecture weights and the architecture they select (the largest weight of every edge)."""
    torch.manual_seed(seed)
    supernet = space.build_supernet(num_classes=data.num_classes, in_channels=data.in_channels)
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    relax = space.relaxation()
    arch = ArchParams.for_relaxation(relax, param="gaea")  # uniform on every edge's simplex
    arch_optimizer = arch.make_optimizer()  # exponentiated gradient, eta 0.1
    gen = torch.Generator().manual_seed(seed)
    valid = cycle_batches(data.valid, batch_size, gen, None)  # shuffled validation batches, pass after pass
    supernet.train()
    for epoch in range(epochs):
        for x, y in iterate_batches(data.train, batch_size, shuffle=True, generator=gen):
            xv, yv = next(valid)
            gaea_step(supernet, relax, arch, arch_optimizer, xv, yv)
            path = relax.path(list(arch.weights().detach()))  # the weights held fixed
            loss = F.cross_entropy(supernet(x, path), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        log(f"GAEA epoch {epoch + 1}: mean entropy of the edges' weights {arch.entropy():.3f} "
            f"(uniform: {torch.log(torch.tensor(float(len(relax.options)))):.3f}), "
            f"selected {space.format(relax.discretize(arch.selection_weights()))}")
    return arch, relax.discretize(arch.selection_weights())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.pada_gaea_loop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each loop (default 3)")
    parser.add_argument("--limit", type=int, default=300, help="at most this many digits per split (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    space = get_space("tiny64", channels=4, stem_channels=8)
    data = load_dataset("digits", limit=args.limit)  # a class-balanced subset of each split
    pada_loop(space, data, epochs=args.epochs, seed=args.seed)
    arch, selected = gaea_loop(space, data, epochs=args.epochs, seed=args.seed)
    print(f"GAEA's weights (rows: edges {', '.join(e.name for e in space.relaxation().edges)}; "
          f"columns: {', '.join(arch.options)}):")
    for row in arch.probabilities():
        print("  " + "  ".join(f"{w:.3f}" for w in row))
    print(f"selected: {space.format(selected)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
