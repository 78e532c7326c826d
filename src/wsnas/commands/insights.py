"""The 64-child insights study: how far can a weight-sharing ranking be trusted?

Runs, on the tiny64 space: the ground truth (every child trained alone, several seeds),
supernet instances for several seeds and for each order variant (round-robin, one fixed
random order, a fresh order every cycle) with every child evaluated after every epoch and
after each of the last mini-batches, and fine-tuning of every child from the final snapshot.
Then it writes the report (report.html, report.md and PNG figures) into the run directory.

Partial weight sharing: --sharing group:M[:similarity|random|file=PATH] or prefix:K trains every
instance with that setting; --sweep sharing runs the paper's Table 3 instead (one instance per
setting: group sharing with M in 1..64 under both partitions, prefix sharing with K in 0..4),
as experiment 'sharing' beside the main study (the ground truth is shared), with its report in
<run-dir>/sharing/. Group sharing trains every group for the full budget (M times the compute,
the paper's protocol) unless --sharing-budget equal.

Training strategies (the PA&DA comparison): --strategy pada,pada-path,pada-data,spos,fairnas
(or 'all', those five) trains --seeds instances (default 3) of each strategy with full sharing and
the supernet's gradient variance recorded (--grad-window steps per window, default 16), as
experiment 'strategies' beside the main study (the ground truth is shared), with a comparison
table (GT-Tau, T1R/T3R, gradient variance, time per epoch) in <run-dir>/strategies/.
An entry may carry strategy options, NAME:KEY=VALUE[:KEY=VALUE]: pada:credit=path is PA&DA with
the path-level credit rule (--pada-credit path of wsnas supernet), compared with the authors' rule
(pada, credit=ops) in one study by --strategy pada,pada:credit=path,spos. pada and pada-path take
credit=ops|path and per_edge=true|false; the other strategies take none. Each entry is its own
row, run ids strategies/<entry>/<seed> (an entry without options keeps the plain name).

Everything is resumable: rerun the same command after an interruption and it continues from
the store and the per-instance checkpoints, ending with the same numbers. Supernet instances
and ground-truth trainings are independent jobs: --executor ray runs them in parallel.

Examples:
  wsnas insights                       # digits, default budget (docs/getting-started.md: the time)
  wsnas insights --quick               # a small budget, for trying it out
  wsnas insights --data cifar10 --data-dir ~/data/cifar-10-batches-py --truth tiny64-cifar10
  wsnas insights --sharing group:16:random --seeds 3 --orders 0 --shuffles 0
  wsnas insights --sweep sharing --quick     # Table 3 on a small budget
  wsnas insights --sweep sharing --executor ray --ray-address auto
  wsnas insights --strategy all              # PA&DA, its halves, SPOS and FairNAS, 3 seeds each
  wsnas insights --strategy pada,spos --seeds 5 --quick
  wsnas insights --strategy pada,pada:credit=path,spos   # PA&DA's two credit rules side by side
  wsnas insights --quick --tensorboard tb    # live curves of every instance: tensorboard --logdir tb
"""

from __future__ import annotations

import argparse
import dataclasses

from wsnas.commands.common import (
    RUN_ID_RULE,
    add_data_options,
    add_eval_options,
    add_executor_options,
    add_runtime_options,
    add_sharing_options,
    add_space_options,
    add_tensorboard_option,
    check_run_dir,
    check_store_path,
    data_from_args,
    device_from_args,
    eval_config_from_args,
    executor_from_args,
    positive_int_arg,
    run_id_arg,
    space_from_args,
    tensorboard_from_args,
)
from wsnas.core.errors import WsnasError
from wsnas.core.runtime import PRECISIONS
from wsnas.experiments.insights import (
    COMPARE_GRAD_WINDOW,
    COMPARE_STRATEGIES,
    PREFIX_EPOCH_FACTOR,
    SWEEP_EPOCHS,
    SWEEP_EPOCHS_QUICK,
    SWEEP_SHARING,
    SWEEP_SHARING_QUICK,
    InsightsConfig,
    insights_study,
)
from wsnas.supernet.sharing import parse_sharing


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_space_options(p)
    add_data_options(p)
    p.add_argument("--run-dir", default="wsnas-runs/insights",
                   help="directory for checkpoints, the store and the report (default wsnas-runs/insights)")
    p.add_argument("--experiment", default=None, type=run_id_arg,
                   help="experiment id in the store (default insights; sharing with --sweep sharing; "
                        f"strategies with --strategy); {RUN_ID_RULE.replace('run id', 'an experiment id')}")
    p.add_argument("--quick", action="store_true", help="small budget for a first try (about 2 minutes on digits)")
    p.add_argument("--truth", default="store",
                   help="ground truth to rank against: 'store' (trained here, default) or a "
                        "built-in table such as tiny64-cifar10")
    g = p.add_argument_group("budget (defaults depend on --data and --quick)")
    g.add_argument("--gt-seeds", type=int, help="independent ground-truth trainings per child")
    g.add_argument("--gt-epochs", type=int, help="epochs of each ground-truth training")
    g.add_argument("--precision", choices=PRECISIONS,
                   help="fp32 (default) or bf16 autocast for every training and evaluation of the study")
    g.add_argument("--epochs", type=int, help="epochs of each supernet (the sharing sweep on digits: 10, "
                                              "2 with --quick)")
    g.add_argument("--batch-size", type=int, help="batch size of supernets and ground truth")
    g.add_argument("--seeds", type=int, help="supernet instances with different seeds (with --strategy: "
                                             "per strategy, default 3)")
    g.add_argument("--orders", type=int, help="supernet instances with different fixed orders")
    g.add_argument("--shuffles", type=int, help="supernet instances reshuffled every cycle")
    g.add_argument("--dense-last", type=int, help="evaluate every child after each of the last K mini-batches")
    g.add_argument("--dense-every", type=positive_int_arg, metavar="N",
                   help="... after every N-th of them, counted back from the last (default: see "
                        "docs/defaults.md; 1: each, the paper's protocol); GT-Tau-Mean-K is the mean over "
                        "those evaluated")
    g.add_argument("--finetune-steps", type=int, help="fine-tuning steps per child (0: skip)")
    add_eval_options(g)
    g = p.add_argument_group("partial weight sharing")
    add_sharing_options(g)
    g.add_argument("--sweep", choices=("sharing",), default=None,
                   help="sharing: one instance per sharing setting (the paper's Table 3) instead of the "
                        "seeds/orders/shuffles groups")
    g.add_argument("--sweep-settings", default=None,
                   help="comma-separated sharing settings of the sweep (default: all of Table 3; with "
                        "--quick: " + ", ".join(SWEEP_SHARING_QUICK) + ")")
    g.add_argument("--prefix-epochs", type=int, default=None, metavar="N",
                   help=f"supernet epochs of the sweep's prefix-sharing rows (default {PREFIX_EPOCH_FACTOR}x "
                        "the sweep's epochs: the paper's prefix rows come from 2000-epoch supernets, the "
                        "rest of Table 3 from 200)")
    g = p.add_argument_group("training strategies (PA&DA comparison)")
    g.add_argument("--strategy", default=None, metavar="ENTRIES",
                   help="comma-separated single-path strategies to compare instead of the seeds/orders/"
                        f"shuffles groups: {', '.join(COMPARE_STRATEGIES)}, or 'all' (those five); an "
                        "entry may carry options, NAME:KEY=VALUE[:KEY=VALUE] (pada, pada-path: "
                        "credit=ops|path, per_edge=true|false), e.g. pada,pada:credit=path,spos")
    g.add_argument("--grad-window", type=int, default=None, metavar="STEPS",
                   help="record the supernet's gradient variance over windows of this many steps "
                        f"(default {COMPARE_GRAD_WINDOW} with --strategy, otherwise off)")
    add_runtime_options(p, store_in_run_dir=True)
    add_tensorboard_option(p, "live curves as TensorBoard event files: every supernet instance's into DIR/<run id> "
                              "(loss and accuracy per step, loss, accuracy and learning rate per epoch, the "
                              "children's mean accuracy and GT-Tau against the study's ground truth after each "
                              "evaluation, PA&DA's probabilities and the gradient variance when recorded), the ground "
                              "truth's accuracies into DIR/groundtruth/<config hash>; a resumed study continues them")
    add_executor_options(p, what="the ground-truth trainings and the supernet instances")
    p.add_argument("--no-report", action="store_true", help="skip writing the report")


def config_from_args(args: argparse.Namespace) -> InsightsConfig:
    cfg = InsightsConfig.quick(args.data) if args.quick else InsightsConfig.for_dataset(args.data)
    gt = cfg.groundtruth.with_overrides(epochs=args.gt_epochs, batch_size=args.batch_size, precision=args.precision)
    sn = cfg.supernet.with_overrides(epochs=args.epochs, batch_size=args.batch_size, precision=args.precision)
    instances = dict(cfg.instances)
    sweep: tuple = ()
    finetune_steps = cfg.finetune_steps
    if args.sweep == "sharing":
        # the sweep replaces the instance groups and the fine-tuning unless they are asked for
        instances = {g: 0 for g in instances}
        finetune_steps = 0
        if args.sweep_settings:
            sweep = tuple(s.strip() for s in args.sweep_settings.split(",") if s.strip())
        else:
            sweep = SWEEP_SHARING_QUICK if args.quick else SWEEP_SHARING
        epochs = (SWEEP_EPOCHS_QUICK if args.quick else SWEEP_EPOCHS).get(args.data)
        if args.epochs is None and epochs is not None:
            sn = sn.with_overrides(epochs=epochs)
        prefix_epochs = PREFIX_EPOCH_FACTOR * sn.epochs if args.prefix_epochs is None else args.prefix_epochs
        if prefix_epochs < 1:
            raise WsnasError(f"--prefix-epochs must be at least 1, got {prefix_epochs}")
        if not any(parse_sharing(s).kind == "prefix" for s in sweep):
            prefix_epochs = None  # no prefix row: the identity of sweeps without one
    elif args.sweep_settings or args.prefix_epochs is not None:
        raise WsnasError(f"{'--sweep-settings' if args.sweep_settings else '--prefix-epochs'} needs --sweep sharing")
    else:
        prefix_epochs = None
    strategies: tuple = ()
    strategy_seeds = cfg.strategy_seeds
    grad_window = args.grad_window or 0
    if args.strategy is not None:
        if args.sweep:
            raise WsnasError("--strategy and --sweep are separate studies; run them one at a time")
        names = [s.strip() for s in args.strategy.split(",") if s.strip()]
        strategies = COMPARE_STRATEGIES if names == ["all"] else tuple(names)
        if not strategies:
            raise WsnasError(f"--strategy {args.strategy!r} names no strategy; accepted: "
                             f"{', '.join(COMPARE_STRATEGIES)} or all")
        instances = {g: 0 for g in instances}  # the comparison replaces the groups and the fine-tuning
        finetune_steps = 0
        if args.seeds is not None:
            if args.seeds < 1:
                raise WsnasError(f"--seeds must be at least 1 with --strategy, got {args.seeds}")
            strategy_seeds = args.seeds
        if args.grad_window is None:
            grad_window = COMPARE_GRAD_WINDOW
    if args.grad_window is not None and args.grad_window < 0:
        raise WsnasError(f"--grad-window must be non-negative, got {args.grad_window}")
    for group, value in (("seeds", None if strategies else args.seeds), ("orders", args.orders),
                         ("shuffle", args.shuffles)):
        if value is not None:
            if value < 0:
                raise WsnasError(f"--{group} must be non-negative, got {value}")
            instances[group] = value
    if not any(instances.values()) and not sweep and not strategies:
        raise WsnasError("no supernet instances: give --seeds, --orders or --shuffles above 0")
    return dataclasses.replace(
        cfg, groundtruth=gt, supernet=sn, instances=instances,
        gt_seeds=cfg.gt_seeds if args.gt_seeds is None else args.gt_seeds,
        dense_last=cfg.dense_last if args.dense_last is None else args.dense_last,
        dense_every=cfg.dense_every if args.dense_every is None else args.dense_every,
        finetune_steps=finetune_steps if args.finetune_steps is None else args.finetune_steps,
        eval=eval_config_from_args(args),
        sharing=args.sharing, budget=args.sharing_budget, sweep=sweep,
        strategies=strategies, strategy_seeds=strategy_seeds, grad_window=grad_window,
        prefix_epochs=prefix_epochs,
    ).validate()


def run(args: argparse.Namespace) -> int:
    tensorboard = tensorboard_from_args(args)  # a missing tensorboard package: refused before anything else
    space = space_from_args(args)
    if space.name != "tiny64":
        raise WsnasError(f"the insights study runs on the tiny64 space, not {space.name!r}")
    cfg = config_from_args(args)
    check_run_dir(args.run_dir)
    if args.store is not None:  # the default, RUN_DIR/results.db, is made with the run directory
        check_store_path(args.store)
    executor = executor_from_args(args)
    if args.truth != "store":
        from wsnas.groundtruth.truth import resolve_truth

        resolve_truth(args.truth, space=space.name)  # fail early on a bad name or a table of another space
    device = device_from_args(args)
    data = data_from_args(args, device)
    result = insights_study(space, data, cfg, run_dir=args.run_dir, store_path=args.store,
                            experiment=args.experiment, truth=args.truth, progress=not args.no_progress,
                            executor=executor, report=not args.no_report, tensorboard=tensorboard)
    paths = result["report"]
    if paths is not None:
        print(f"report: {paths['html']} and {paths['md']}")
        for line in paths.get("findings", []):
            print(f"  {line}")
    return 0
