"""Train one supernet with a single-path strategy and rank children with its shared weights.

Every child (or a given list, or a seeded sample for big spaces) is evaluated on the validation
split after every epoch and after each of the last --dense-last mini-batches; predictions go to
the store under the run id. A checkpoint is written after every epoch into the run directory,
so an interrupted run continues exactly where its last epoch ended. With --truth, the final
ranking is compared with a ground truth (a built-in table, a CSV, or 'store' for ground truth
trained with `wsnas groundtruth` into the same store).

Strategies: uniform (i.i.d., SPOS), round_robin, fixed_order, shuffle (a fresh order per cycle),
fairnas, pada, pada-path, pada-data (importance sampling of paths and data; --pada-credit path
credits every op of a sampled path, not only the ops with convolutions). Differentiable
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
  wsnas supernet --strategy pada --truth store --tensorboard tb   # then: tensorboard --logdir tb

Data-parallel under torchrun (the batch size is the global batch, split across the ranks;
rank 0 writes the store and the checkpoint, all ranks resume from it):
  torchrun --standalone --nproc_per_node 2 -m wsnas supernet --device cpu --batch-size 64
"""

from __future__ import annotations

import argparse

import torch

from wsnas.commands.common import (
    ARCH_RULE,
    RUN_ID_RULE,
    SEED_RANGE,
    add_data_options,
    add_eval_options,
    add_runtime_options,
    add_sharing_options,
    add_space_options,
    add_tensorboard_option,
    add_training_options,
    archs_from_args,
    check_store_path,
    data_from_args,
    device_from_args,
    eval_config_from_args,
    positive_int_arg,
    run_dir_from_args,
    run_id_arg,
    seed_arg,
    space_from_args,
    tensorboard_from_args,
    training_overrides,
)
from wsnas.core import distributed
from wsnas.core.errors import WsnasError
from wsnas.experiments.insights import SUPERNET_DEFAULTS
from wsnas.experiments.supernet import default_run_id, train_supernet
from wsnas.strategies import get_strategy, strategy_names, strategy_options
from wsnas.supernet.sharing import check_sharing, parse_sharing
from wsnas.training.trainer import SupernetConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_space_options(p)
    add_data_options(p)
    p.add_argument("--strategy", default="uniform",
                   help="single-path strategy: " + ", ".join(strategy_names(differentiable=False)))
    p.add_argument("--seed", type=seed_arg, default=0,
                   help=f"seed of weights, data order and sampling, {SEED_RANGE} (default 0)")
    p.add_argument("--order-seed", type=seed_arg, default=None, help="seed of the sampling order (default: --seed)")
    p.add_argument("--pada-credit", default=None, metavar="RULE",
                   help="pada, pada-path: which ops a step's gradient norm credits. 'ops' (default; the "
                        "authors' code, ShunLu91/PA-DA nasbench201/train_panda_201.py): each op with "
                        "convolutions by its own gradient norm, so parameter-free ops keep only the uniform "
                        "share (1 - tau) / |O|; 'path': every op of the sampled path by the step's whole "
                        "gradient norm, as the paper's derivation over paths suggests")
    p.add_argument("--run", "--run-id", dest="run", default=None, type=run_id_arg,
                   help=f"run id in the store (default supernet/<strategy>/<seed>); {RUN_ID_RULE}. The children "
                        "evaluated are part of the run's settings: a run id is resumed only with the same ones. "
                        "Under torchrun spell it --run-id: torchrun takes --run for its own --run-path")
    p.add_argument("--run-dir", default=None, help="checkpoint directory (default wsnas-runs/<run id>)")
    p.add_argument("--archs", default=None,
                   help=f"children to evaluate: 'all' (default) or a list; {ARCH_RULE}")
    p.add_argument("--sample", type=int, default=None,
                   help="evaluate a seeded sample of N children (instead of --archs)")
    p.add_argument("--sample-seed", type=seed_arg, default=0, help="seed of --sample (default 0)")
    g = p.add_argument_group("training and evaluation (defaults per dataset)")
    add_training_options(g)
    g.add_argument("--dense-last", type=int, default=0, help="also evaluate after each of the last K mini-batches")
    g.add_argument("--dense-every", type=positive_int_arg, default=1, metavar="N",
                   help="... after every N-th of them, counted back from the last (default 1: each)")
    add_eval_options(g)
    g.add_argument("--grad-window", type=int, default=0,
                   help="record the supernet's gradient variance over windows of N steps (run_metrics; 0: off)")
    add_sharing_options(p)
    p.add_argument("--truth", default=None,
                   help="compare the final ranking with a ground truth: a built-in table, a CSV, or 'store'")
    p.add_argument("--truth-config", default=None,
                   help="with --truth store: the ground truth's config hash, where the store holds several")
    add_runtime_options(p)
    add_tensorboard_option(p)


def run(args: argparse.Namespace) -> int:
    tensorboard = tensorboard_from_args(args)  # a missing tensorboard package: refused before anything else
    device = device_from_args(args)
    if distributed.launched_by_torchrun() and device.type == "cuda":
        device = torch.device("cuda", distributed.local_rank())  # one GPU per process
    with distributed.process_group(device=device) as replica:
        return _run(args, device, replica, tensorboard)


def _run(args: argparse.Namespace, device, replica: distributed.Replica | None, tensorboard) -> int:
    space = space_from_args(args)
    sharing = parse_sharing(args.sharing, budget=args.sharing_budget)
    check_sharing(space, sharing)
    if args.strategy.replace("-", "_") in strategy_names(differentiable=True):
        raise WsnasError(f"strategy {args.strategy!r} is a differentiable search; run it with "
                         f"`wsnas search --strategy {args.strategy}`")
    options = {} if args.order_seed is None else {"order_seed": args.order_seed}
    if args.pada_credit is not None:
        if "credit" not in strategy_options(args.strategy):
            raise WsnasError(f"--pada-credit applies to pada and pada-path (path sampling), not {args.strategy!r}")
        options["credit"] = args.pada_credit
    strategy = get_strategy(args.strategy, **options)
    strategy.with_sharing(sharing)  # a strategy that cannot order the children of groups: refused here
    archs = archs_from_args(space, args.archs, args.sample, args.sample_seed)
    base = SUPERNET_DEFAULTS.get(args.data, SUPERNET_DEFAULTS["cifar10"])
    train = base.with_overrides(**training_overrides(args))
    if args.dense_last < 0:
        raise WsnasError(f"--dense-last must be non-negative, got {args.dense_last}")
    cfg = SupernetConfig(train=train, eval=eval_config_from_args(args),
                         dense_last=args.dense_last, dense_every=args.dense_every, grad_window=args.grad_window)
    run_id = args.run or default_run_id(strategy, args.seed, sharing)
    run_dir = run_dir_from_args(args, run_id)
    check_store_path(args.store)
    data = data_from_args(args, device)
    out = train_supernet(space, data, strategy, cfg, seed=args.seed, run_id=run_id, run_dir=run_dir,
                         store_path=args.store, archs=archs, sharing=sharing, truth=args.truth,
                         truth_config=args.truth_config, replica=replica, progress=not args.no_progress,
                         tensorboard=tensorboard)
    if out is None:  # a data-parallel rank other than 0
        return 0
    ranks = f" on {out.world_size} ranks" if out.world_size is not None else ""
    print(f"run {run_id}: {out.epochs} epochs{ranks}{' (resumed)' if out.resumed else ''}, "
          f"{len(out.names)} children evaluated, predictions in {args.store}, checkpoint in {run_dir}")
    print(f"final epoch: train acc {out.summary.get('train_acc', float('nan')):.4f}, "
          f"mean child valid acc {out.summary.get('mean_child_acc', float('nan')):.4f}")
    print("best children with shared weights: " + ", ".join(f"{name} {acc:.4f}" for name, acc in out.best(5)))
    if out.against_truth is not None:
        m = out.against_truth
        print(f"against {out.truth_source or 'the ground truth'}: GT-Tau {m['gt_tau']:.4f}, "
              f"Spearman {m['spearman']:.4f}, T1R {m['t1r']}, T3R {m['t3r']}")
    return 0
