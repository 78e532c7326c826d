"""Train one supernet with a single-path strategy and rank children with its shared weights.

Every child (or a given list, or a seeded sample for big spaces) is evaluated on the validation
split after every epoch and after each of the last --dense-last mini-batches; predictions go to
the store under the run id. A checkpoint is written after every epoch into the run directory,
so an interrupted run continues exactly where its last epoch ended. With --truth, the final
ranking is compared with a ground truth (a built-in table, a CSV, or 'store' for ground truth
trained with `wsnas groundtruth` into the same store).

Strategies: uniform (i.i.d., SPOS), round_robin, fixed_order, shuffle (a fresh order per cycle),
fairnas, pada, pada-path, pada-data (importance sampling of paths and data). Differentiable
strategies (darts, gdas, pcdarts) run with `wsnas search`.

Partial sharing (--sharing): group:M[:similarity|random[@SEED]|file=PATH] gives each of M groups of
children its own weights (the strategy then orders the children inside each group; every group
trains on every mini-batch unless --sharing-budget equal); prefix:K shares the stem and the first
K cells and keeps every later layer and the classifier private per child, momentum included.

Examples:
  wsnas supernet --strategy uniform --epochs 30 --truth store
  wsnas supernet --strategy round_robin --bn-mode recal --run my-rr --run-dir runs/rr
  wsnas store export predictions --run my-rr --wide --out rr.csv
  wsnas supernet --strategy round_robin --sharing group:16:random --truth store

Data-parallel under torchrun (the batch size is the global batch, split across the ranks;
rank 0 writes the store and the checkpoint, all ranks resume from it):
  torchrun --standalone --nproc_per_node 2 -m wsnas supernet --device cpu --batch-size 64
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from wsnas import metrics
from wsnas.commands.common import (
    add_data_options,
    add_eval_options,
    add_runtime_options,
    add_sharing_options,
    add_space_options,
    add_training_options,
    archs_from_args,
    data_from_args,
    device_from_args,
    eval_config_from_args,
    space_from_args,
    training_overrides,
)
from wsnas.core import distributed
from wsnas.core.errors import WsnasError
from wsnas.experiments.insights import SUPERNET_DEFAULTS
from wsnas.runs import train_run
from wsnas.store import Store
from wsnas.strategies import get_strategy, strategy_names
from wsnas.supernet.sharing import check_sharing, parse_sharing
from wsnas.training.trainer import SupernetConfig, SupernetTrainer


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_space_options(p)
    add_data_options(p)
    p.add_argument("--strategy", default="uniform",
                   help="single-path strategy: " + ", ".join(strategy_names(differentiable=False)))
    p.add_argument("--seed", type=int, default=0, help="seed of weights, data order and sampling (default 0)")
    p.add_argument("--order-seed", type=int, default=None, help="seed of the sampling order (default: --seed)")
    p.add_argument("--run", default=None, help="run id in the store (default supernet/<strategy>/<seed>)")
    p.add_argument("--run-dir", default=None, help="checkpoint directory (default wsnas-runs/<run id>)")
    p.add_argument("--archs", default="all", help="children to evaluate: 'all' or a list")
    p.add_argument("--sample", type=int, default=None, help="evaluate a seeded sample of N children")
    p.add_argument("--sample-seed", type=int, default=0)
    g = p.add_argument_group("training and evaluation (defaults per dataset)")
    add_training_options(g)
    g.add_argument("--dense-last", type=int, default=0, help="also evaluate after each of the last K mini-batches")
    add_eval_options(g)
    g.add_argument("--grad-window", type=int, default=0,
                   help="record the supernet's gradient variance over windows of N steps (run_metrics; 0: off)")
    add_sharing_options(p)
    p.add_argument("--truth", default=None,
                   help="compare the final ranking with a ground truth: a built-in table, a CSV, or 'store'")
    p.add_argument("--truth-config", default=None,
                   help="with --truth store: the ground truth's config hash, where the store holds several")
    add_runtime_options(p)


def run(args: argparse.Namespace) -> int:
    device = device_from_args(args)
    if distributed.launched_by_torchrun() and device.type == "cuda":
        device = torch.device("cuda", distributed.local_rank())  # one GPU per process
    with distributed.process_group(device=device) as replica:
        return _run(args, device, replica)


def _run(args: argparse.Namespace, device, replica: distributed.Replica | None) -> int:
    space = space_from_args(args)
    sharing = parse_sharing(args.sharing, budget=args.sharing_budget)
    check_sharing(space, sharing)
    if args.strategy.replace("-", "_") in strategy_names(differentiable=True):
        raise WsnasError(f"strategy {args.strategy!r} is a differentiable search; run it with "
                         f"`wsnas search --strategy {args.strategy}`")
    options = {} if args.order_seed is None else {"order_seed": args.order_seed}
    strategy = get_strategy(args.strategy, **options)  # the trainer adapts it to the sharing
    archs = archs_from_args(space, args.archs, args.sample, args.sample_seed)
    base = SUPERNET_DEFAULTS.get(args.data, SUPERNET_DEFAULTS["cifar10"])
    train = base.with_overrides(**training_overrides(args))
    if args.dense_last < 0:
        raise WsnasError(f"--dense-last must be non-negative, got {args.dense_last}")
    cfg = SupernetConfig(train=train, eval=eval_config_from_args(args),
                         dense_last=args.dense_last, grad_window=args.grad_window)
    data = data_from_args(args, device)
    name = strategy.name  # group sharing: the order inside the groups
    run_id = args.run or f"supernet/{name}/{args.seed}" + ("" if sharing.is_full else f"/{sharing.label}")
    run_dir = Path(args.run_dir or Path("wsnas-runs") / run_id)
    if replica is not None and not replica.is_main:
        # the other ranks train and evaluate in lockstep with rank 0 but write nothing
        trainer = SupernetTrainer(space, data, strategy, cfg, seed=args.seed, run_dir=run_dir,
                                  run_id=run_id, archs=archs, progress=False, replica=replica,
                                  sharing=sharing)
        trainer.try_resume()
        trainer.train()
        return 0
    with Store(args.store) as store:
        from wsnas.groundtruth.truth import resolve_truth

        truth, _ = resolve_truth(args.truth, store=store, space=space.name, dataset=data.name,
                                 config_hash=args.truth_config)
        trainer = SupernetTrainer(space, data, strategy, cfg, seed=args.seed, run_dir=run_dir, store=store,
                                  run_id=run_id, archs=archs, progress=not args.no_progress,
                                  replica=replica, sharing=sharing)
        summary, resumed = train_run(store, run_id, "supernet", trainer, seed=args.seed)
        labels, names, matrix = store.prediction_matrix(run_id)
    final = [i for i, lab in enumerate(labels) if lab.startswith("epoch:")][-1]
    ranks = f" on {replica.world_size} ranks" if replica is not None else ""
    print(f"run {run_id}: {trainer.epoch} epochs{ranks}{' (resumed)' if resumed else ''}, "
          f"{len(names)} children evaluated, predictions in {args.store}, checkpoint in {run_dir}")
    print(f"final epoch: train acc {summary.get('train_acc', float('nan')):.4f}, "
          f"mean child valid acc {summary.get('mean_child_acc', float('nan')):.4f}")
    row = matrix[final]
    order = sorted(range(len(names)), key=lambda j: -row[j])
    print("best children with shared weights: " + ", ".join(f"{names[j]} {row[j]:.4f}" for j in order[:5]))
    if truth is not None:
        gt = truth.accuracy[[truth.position(n) for n in names]]
        print(f"against {truth.source or 'the ground truth'}: GT-Tau {metrics.gt_tau(row, gt):.4f}, "
              f"Spearman {metrics.spearman(row, gt):.4f}, T1R {metrics.top_n_rank(row, gt, 1)}, "
              f"T3R {metrics.top_n_rank(row, gt, 3)}")
    return 0
