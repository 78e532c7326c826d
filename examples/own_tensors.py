"""Train a supernet on tensors of your own and use the best child it finds (docs/python.md, section 2).

Your images and labels, as torch tensors or numpy arrays, become a wsnas ``Dataset`` with
``dataset_from_arrays`` (read as the arrays of a ``--data npz:PATH`` file: a stratified valid
split held out of the training images unless you give one, every split normalised with the
training split's statistics). Here the tensors are made up: 12x12 grey images of a horizontal,
a vertical or a diagonal stripe, with noise.

A ``SupernetTrainer`` (no results store needed) trains the tiny64 supernet with SPOS, the evaluator
scores all 64 children with the shared weights on your test split, and the best child becomes a
standalone network carrying its shared weights, which predicts like any ``nn.Module``.

Run it from the repository root:

    python -m examples.own_tensors --epochs 4
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from wsnas.data import Dataset, dataset_from_arrays
from wsnas.evaluator import EvalConfig, evaluate_archs
from wsnas.spaces import get_space
from wsnas.strategies import get_strategy
from wsnas.supernet import load_child_from_supernet
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import SupernetConfig, SupernetTrainer

CLASSES = ("horizontal", "vertical", "diagonal")


def stripes(n: int, *, size: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (``n x size x size`` floats) of a stripe at a random place, and their labels."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % len(CLASSES)
    x = 0.3 * torch.randn(n, size, size, generator=gen)
    at = torch.randint(1, size - 1, (n,), generator=gen)
    rows = torch.arange(size)
    for i in range(n):
        k = int(at[i])
        if y[i] == 0:
            x[i, k - 1:k + 1, :] += 1.0
        elif y[i] == 1:
            x[i, :, k - 1:k + 1] += 1.0
        else:
            x[i, rows, (rows + k) % size] += 1.0
    return x, y


def my_data(n_train: int = 600) -> Dataset:
    """Your tensors as a Dataset: ``n_train`` training images (a tenth of them held out for
    validation) and a quarter as many test images."""
    x_train, y_train = stripes(n_train, seed=0)
    x_test, y_test = stripes(max(n_train // 4, 3), seed=1)
    return dataset_from_arrays(x_train, y_train, x_test, y_test, name="stripes", class_names=CLASSES)


def train(data: Dataset, run_dir: str | Path, *, epochs: int = 4, seed: int = 0) -> dict:
    """Train the supernet, rank every child on the test split, and return the ranking with the best
    child's network (its shared weights copied in) and that network's own test accuracy."""
    space = get_space("tiny64", channels=8, stem_channels=8)  # narrow: seconds on a CPU
    cfg = SupernetConfig(train=TrainConfig(epochs=epochs, batch_size=32, lr=0.05), eval=EvalConfig(bn_mode="running"),
                         eval_every_epoch=False, dense_last=0)
    trainer = SupernetTrainer(space, data, get_strategy("uniform"), cfg, seed=seed, run_dir=run_dir, progress=False)
    summary = trainer.train()  # a checkpoint in run_dir after every epoch
    archs = list(space.enumerate())
    scores = evaluate_archs(trainer.supernet, archs, data.test, cfg.eval)  # (accuracy, loss) per child
    ranking = sorted(((space.format(a), acc) for a, (acc, _) in zip(archs, scores)), key=lambda r: -r[1])
    best = space.parse(ranking[0][0])
    net = space.build_network(best, num_classes=data.num_classes, in_channels=data.in_channels)
    load_child_from_supernet(trainer.supernet, net)  # the child's weights, looked up by key
    net.eval()
    with torch.no_grad():
        predicted = net(data.test.x).argmax(1)
    return {"summary": summary, "ranking": ranking, "best": best, "network": net,
            "network_acc": float((predicted == data.test.y).float().mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.own_tensors", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4, help="supernet epochs (default 4)")
    parser.add_argument("--train-images", type=int, default=600, help="training images made up (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the sampling (default 0)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = my_data(args.train_images)
    print(f"dataset {data.name}: {len(data.train)} train / {len(data.valid)} valid / {len(data.test)} test images, "
          f"{data.num_classes} classes, {data.in_channels}x{data.image_size}x{data.image_size}")
    with tempfile.TemporaryDirectory() as run_dir:
        result = train(data, run_dir, epochs=args.epochs, seed=args.seed)
    print(f"supernet: train acc {result['summary']['train_acc']:.3f} in the last epoch")
    print("best children on the test split with shared weights:")
    for name, acc in result["ranking"][:5]:
        print(f"  {name}  {acc:.3f}")
    print(f"the best child, {result['ranking'][0][0]}, as a network of its own: test acc {result['network_acc']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
