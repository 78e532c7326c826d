"""Measure interference between children while a supernet trains, and its gradient variance.

Around every probed mini-batch that trains child A, every child B is measured on one fixed
probe batch drawn from the train split (eval-mode BN, so probing changes nothing): the change
of B's loss and accuracy across A's step, and the cosine of A's and B's gradients on the
parameters both use. The rows go to the store (table `interference`), and are aggregated into
a children x children matrix written to RUN_DIR/interference.csv and drawn in
RUN_DIR/interference.png. The supernet's gradient variance over windows of --grad-window
steps (the quantity PA&DA minimises) goes to the store's `run_metrics` table. Definitions:
docs/interference.md.

Probing costs one forward and backward pass per child per step, so by default only the last
epochs are probed (--probe-from-epoch); with the round_robin order every child is the trained
one at least once per 64 probed steps. The run checkpoints after every epoch into --run-dir
and resumes from there; resumed epochs rewrite identical rows.

Examples:
  wsnas interference                                   # digits, about 2 minutes on 2 CPU cores
  wsnas interference --epochs 12 --probe-from-epoch 4 --probe-size 128 --run rr-long
  wsnas interference --strategy shuffle --grad-window 17 --run shuffle
  wsnas interference --tensorboard tb                  # then: tensorboard --logdir tb
  wsnas store export interference --run interference/round_robin/0 --out rows.csv
"""

from __future__ import annotations

import argparse
import math

from wsnas.commands.common import (
    RUN_ID_RULE,
    SEED_RANGE,
    add_data_options,
    add_runtime_options,
    add_space_options,
    add_tensorboard_option,
    add_training_options,
    check_store_path,
    data_from_args,
    device_from_args,
    run_dir_from_args,
    run_id_arg,
    seed_arg,
    space_from_args,
    tensorboard_from_args,
    training_overrides,
)
from wsnas.core.errors import WsnasError
from wsnas.evaluator import EvalConfig
from wsnas.strategies import STRATEGIES


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_space_options(p)
    add_data_options(p)
    p.add_argument("--strategy", default="round_robin",
                   help=f"single-path order of the trained children: {', '.join(STRATEGIES)} (default round_robin)")
    p.add_argument("--seed", type=seed_arg, default=0,
                   help=f"seed of weights, data order and sampling, {SEED_RANGE} (default 0)")
    p.add_argument("--order-seed", type=seed_arg, default=None, help="seed of the sampling order (default: --seed)")
    p.add_argument("--run", default=None, type=run_id_arg,
                   help=f"run id in the store (default interference/<strategy>/<seed>); {RUN_ID_RULE}")
    p.add_argument("--run-dir", default=None, help="checkpoint and output directory (default wsnas-runs/<run id>)")
    g = p.add_argument_group("probing")
    g.add_argument("--probe-size", type=int, default=None,
                   help="images in the fixed probe batch from the train split (default 64 on digits, else 256)")
    g.add_argument("--probe-seed", type=seed_arg, default=0, help="seed of the probe batch's draw (default 0)")
    g.add_argument("--probe-from-epoch", type=int, default=None,
                   help="probe from this 0-based epoch on (default: the last 4 epochs)")
    g.add_argument("--grad-window", type=int, default=64,
                   help="steps per gradient-variance window (default 64)")
    g = p.add_argument_group("training (defaults per dataset: digits 8 epochs at batch 64)")
    add_training_options(g)
    add_runtime_options(p)
    add_tensorboard_option(p, "live training curves as TensorBoard event files into DIR/<run id>: loss and accuracy "
                              "per step, loss, accuracy and learning rate per epoch, the children's mean accuracy "
                              "after each epoch, the gradient-variance windows as they close; a resumed run "
                              "continues its curves")


def run(args: argparse.Namespace) -> int:
    from wsnas.experiments.interference import InterferenceConfig, interference_defaults, interference_study
    from wsnas.store import Store
    from wsnas.training.trainer import SupernetConfig

    tensorboard = tensorboard_from_args(args)  # a missing tensorboard package: refused before anything else
    if args.probe_size is not None and args.probe_size < 1:
        raise WsnasError(f"--probe-size must be a positive number of images, got {args.probe_size}")
    if args.grad_window < 1:
        raise WsnasError(f"--grad-window must be a positive number of steps, got {args.grad_window}")
    if args.strategy not in STRATEGIES and args.strategy.replace("-", "_") not in STRATEGIES:
        from wsnas.strategies import get_strategy

        get_strategy(args.strategy)  # raises the registry's message for unknown names
    device = device_from_args(args)
    space = space_from_args(args)
    defaults = interference_defaults(args.data)
    train = defaults["train"].with_overrides(**training_overrides(args))
    probe_size = args.probe_size if args.probe_size is not None else defaults["probe_size"]
    start = args.probe_from_epoch
    if start is None:
        start = max(0, train.epochs - 4)
    if start < 0 or start >= train.epochs:
        raise WsnasError(f"--probe-from-epoch must be an epoch of the run, 0..{train.epochs - 1}, got {start}")
    run_id = args.run or f"interference/{args.strategy}/{args.seed}"
    run_dir = run_dir_from_args(args, run_id)
    check_store_path(args.store)
    data = data_from_args(args, device)
    cfg = InterferenceConfig(
        supernet=SupernetConfig(train=train, eval=EvalConfig(), dense_last=0), strategy=args.strategy,
        order_seed=args.order_seed, probe_size=probe_size, probe_seed=args.probe_seed, start_epoch=start,
        grad_window=args.grad_window)
    with Store(args.store) as store:
        result = interference_study(space, data, cfg, seed=args.seed, run_id=run_id, run_dir=run_dir, store=store,
                                    progress=not args.no_progress, tensorboard=tensorboard)
    n = len(space)
    s, gv = result["interference"], result["grad_variance"]
    print(f"run {run_id}: {result['epochs']} epochs{' (resumed)' if result['resumed'] else ''}, "
          f"{s['steps']} probed steps on {result['probe_images']} "
          f"probe images, {s['pairs_observed']} of {n * (n - 1)} pairs observed; "
          f"{result['seconds']:.0f} s")
    print(f"d_loss: self {s['self_d_loss']:+.5f}, others {s['other_d_loss']:+.5f} "
          f"(raised in {s['other_hurt_fraction']:.0%} of pairs); d_acc: self {s['self_d_acc']:+.5f}, "
          f"others {s['other_d_acc']:+.5f}")
    by_shared = ", ".join(f"{k}: {v:.3f}" for k, v in s.get("cosine_by_shared", {}).items())
    print(f"gradient cosine: others {s['other_cosine']:.3f}; by shared choices {by_shared}; "
          f"correlation with shared choices {s.get('corr_cosine_shared', math.nan):.3f}")
    print(f"gradient variance over {gv['windows']} windows of {cfg.grad_window} steps: "
          f"{gv['variance']:.4g} (relative {gv['relative']:.3f})")
    print(f"wrote {result['figure']} and {result['matrix_csv']}; rows in {args.store}")
    return 0
