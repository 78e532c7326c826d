"""Define a search space in about 40 lines, train a supernet on it and rank every child with the
supernet's shared weights, from Python (docs/python.md, section 1).

The space is ``examples/my_space.py`` (a chain of layers, each a 3x3 conv, a 5x5 conv or a skip);
``train_supernet`` trains the supernet with SPOS (one uniformly drawn child per mini-batch),
scores every child on the validation split after every epoch and stores the scores in a results
store, which any ``wsnas`` command can read afterwards (``wsnas store --store OUT/results.db info``).

Run it from the repository root:

    python -m examples.rank_my_space --epochs 3 --out rank-demo
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from examples.my_space import make_space
from wsnas.data import load_dataset
from wsnas.evaluator import EvalConfig
from wsnas.experiments.supernet import SupernetOutcome, train_supernet
from wsnas.strategies import get_strategy
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import SupernetConfig


def rank(out: str | Path, *, epochs: int = 3, width: int = 16, depth: int = 3, limit: int | None = None,
         seed: int = 0) -> SupernetOutcome:
    """Train the chain space's supernet on the digits (at most ``limit`` images per split) and rank
    its children; the run's store and checkpoint go into ``out``."""
    space = make_space(width=width, depth=depth)  # or get_space("examples.my_space:make_space", ...)
    data = load_dataset("digits", **({"limit": limit} if limit else {}))  # a class-balanced subset
    cfg = SupernetConfig(train=TrainConfig(epochs=epochs, batch_size=32, lr=0.1),
                         # children scored with each batch's BN statistics: a short run's running
                         # statistics are not settled yet
                         eval=EvalConfig(bn_mode="batch"),
                         dense_last=0)  # scored after every epoch only, not after each of the last steps
    out = Path(out)
    return train_supernet(space, data, get_strategy("uniform"), cfg, seed=seed,
                          run_id=f"chain/uniform/{seed}", run_dir=out / "run", store_path=out / "results.db",
                          progress=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.rank_my_space", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="supernet epochs (default 3)")
    parser.add_argument("--width", type=int, default=16, help="channels of every layer (default 16)")
    parser.add_argument("--depth", type=int, default=3, help="layers, each a choice (default 3: 27 children)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per split (default all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the sampling (default 0)")
    parser.add_argument("--out", default=None, help="folder of the store and checkpoint (default: a temporary one)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        outcome = rank(args.out or tmp, epochs=args.epochs, width=args.width, depth=args.depth,
                       limit=args.limit, seed=args.seed)
        print(f"{len(outcome.names)} children ranked by {outcome.run_id} after {outcome.epochs} epochs "
              f"(train acc {outcome.summary['train_acc']:.3f}):")
        for place, (name, acc) in enumerate(outcome.best(len(outcome.names)), 1):
            print(f"{place:3d}  {name:<20s} {acc:.3f}")
        if args.out:
            print(f"store: {Path(args.out) / 'results.db'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
