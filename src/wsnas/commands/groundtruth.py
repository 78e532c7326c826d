"""Train architectures from scratch and record their accuracy in the results store.

Every (architecture, seed) pair is an independent training whose result is committed to the
store as soon as it finishes; rerunning the same command skips finished jobs, so a run that
was interrupted (Ctrl-C, a kill, a crash) continues where it stopped.

Examples:
  wsnas groundtruth --space tiny64 --data digits --seeds 2
  wsnas groundtruth --data cifar10 --data-dir ~/data/cifar-10-batches-py --archs 434,111
  wsnas groundtruth --epochs 5 --store quick.db
  wsnas groundtruth --seeds 2 --tensorboard tb          # then: tensorboard --logdir tb
  wsnas groundtruth --executor ray                     # every core of this machine, via Ray
  wsnas groundtruth --executor ray --ray-address auto  # the cluster `ray start` joined
  wsnas groundtruth --space darts --archs "$(cat genotype.txt)" --recipe darts-eval \
      --data cifar10 --data-dir ~/data/cifar-10-batches-py
"""

from __future__ import annotations

import argparse
import json

from wsnas.commands.common import (
    ARCH_RULE,
    SEED_RANGE,
    add_data_options,
    add_executor_options,
    add_runtime_options,
    add_space_options,
    add_tensorboard_option,
    add_training_options,
    archs_from_args,
    check_seeds,
    check_store_path,
    data_from_args,
    device_from_args,
    executor_from_args,
    seed_arg,
    space_from_args,
    tensorboard_from_args,
    training_overrides,
)
from wsnas.core.errors import WsnasError
from wsnas.groundtruth.run import run_groundtruth_with_best
from wsnas.store import Store
from wsnas.training.standalone import default_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_space_options(p)
    add_data_options(p)
    p.add_argument("--seeds", type=int, default=1, help="number of independent trainings per architecture (default 1)")
    p.add_argument("--first-seed", type=seed_arg, default=0,
                   help=f"first seed; seeds are consecutive, {SEED_RANGE} (default 0)")
    p.add_argument("--archs", default=None,
                   help="'all' (default) or a list of architectures, separated by commas (tiny64) or semicolons "
                        f"(nb201, darts); {ARCH_RULE}")
    p.add_argument("--sample", type=int, default=None,
                   help="train a seeded uniform sample of N architectures (instead of --archs)")
    p.add_argument("--sample-seed", type=seed_arg, default=0, help="seed of --sample (default 0)")
    g = p.add_argument_group("training (defaults per dataset; see docs/groundtruth.md)")
    g.add_argument("--recipe", default=None,
                   help="a published training recipe instead of the dataset's defaults: darts-eval "
                        "(the DARTS evaluation network: 600 epochs, batch 96, cutout 16, auxiliary 0.4, "
                        "drop-path 0.2, weight decay 3e-4, clip 5)")
    add_training_options(g)
    g.add_argument("--cutout", type=int, help="cutout square side (0: off), at most the images' side")
    g.add_argument("--auxiliary-weight", type=float,
                   help="weight of the auxiliary head's loss (0: off); only for networks with one (darts, "
                        "auxiliary=true)")
    g.add_argument("--drop-path", dest="drop_path_prob", type=float,
                   help="final drop-path probability (0: off); only for networks with drop-path (darts)")
    add_runtime_options(p)
    add_tensorboard_option(p, "each finished training's accuracies and loss as TensorBoard scalars into "
                              "DIR/groundtruth/<config hash> as it finishes (tags groundtruth/test_acc, valid_acc, "
                              "train_acc, train_loss, ...; the step counts the trainings of that config finished "
                              "so far; the mean seed-to-seed tau at the end)")
    add_executor_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def check_fits(args: argparse.Namespace, space, cfg, data) -> None:
    """Refuse training settings the space's networks or the data cannot apply (they would be ignored)."""
    flags = {"--auxiliary-weight": "auxiliary_weight", "--drop-path": "drop_path_prob", "--cutout": "cutout"}

    def given(flag: str, value) -> str:  # the flag, or the recipe that set the value
        if getattr(args, flags[flag]) is not None or args.recipe is None:
            return f"{flag} {value:g}"
        return f"--recipe {args.recipe} (its {flag[2:]} {value:g})"

    if cfg.auxiliary_weight and not space.has_auxiliary_head:
        raise WsnasError(f"{given('--auxiliary-weight', cfg.auxiliary_weight)}: {space.name} networks"
                         f"{' (auxiliary=false)' if space.name == 'darts' else ''} have no auxiliary head; accepted: "
                         "0, or a space whose networks have one (darts with auxiliary=true)")
    if cfg.drop_path_prob and not space.has_drop_path:
        raise WsnasError(f"{given('--drop-path', cfg.drop_path_prob)}: {space.name} networks have no drop-path; "
                         "accepted: 0, or a space whose networks have it (darts)")
    space.check_image_size(data.image_size, data.name)
    if cfg.cutout > data.image_size:
        raise WsnasError(f"{given('--cutout', cfg.cutout)} is larger than the {data.image_size}x{data.image_size} "
                         f"images of {data.name}; accepted: 0..{data.image_size}")


def run(args: argparse.Namespace) -> int:
    tensorboard = tensorboard_from_args(args)  # a missing tensorboard package: refused before anything else
    if args.seeds < 1:
        raise WsnasError(f"--seeds must be at least 1, got {args.seeds}")
    seeds = check_seeds(args.first_seed, args.seeds)
    check_store_path(args.store)
    executor = executor_from_args(args)
    space = space_from_args(args)
    archs = archs_from_args(space, args.archs, args.sample, args.sample_seed)
    cfg = default_config(args.data, args.recipe).with_overrides(
        **training_overrides(args), cutout=args.cutout, auxiliary_weight=args.auxiliary_weight,
        drop_path_prob=args.drop_path_prob)
    device = device_from_args(args)
    data = data_from_args(args, device)
    check_fits(args, space, cfg, data)
    with Store(args.store) as store:
        result = run_groundtruth_with_best(space, data, cfg, seeds=seeds, archs=archs, store=store,
                                           progress=not args.no_progress, executor=executor,
                                           log=None if args.json else print, tensorboard=tensorboard)
    summary, seconds = result["summary"], result["seconds"]
    out = {
        "store": str(args.store), "space": space.name, "dataset": data.name,
        "config_hash": summary.config_hash, "jobs": summary.total, "trained": summary.trained,
        "skipped": summary.skipped, "seconds": round(seconds, 1), "epochs": cfg.epochs,
        "complete_seeds": summary.complete_seeds,
        "seed_tau": {f"{a}-{b}": round(t, 4) for (a, b), t in summary.seed_taus.items()},
        "mean_seed_tau": None if not summary.seed_taus else round(summary.mean_seed_tau, 4),
        "top5": [(arch, round(acc, 4)) for arch, acc in result["best"]],
        "diverged": [{**d, "loss": str(d["loss"])} for d in summary.diverged],
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    diverged = f" ({len(summary.diverged)} diverged)" if summary.diverged else ""
    print(f"ground truth of {space.name} on {data.name}: {summary.trained} trained{diverged}, "
          f"{summary.skipped} already in {args.store}, {seconds:.1f} s")
    print(f"config {summary.config_hash}: {cfg.epochs} epochs, batch {cfg.batch_size}, lr {cfg.lr}")
    if summary.seed_taus:
        for (a, b), t in summary.seed_taus.items():
            print(f"Kendall tau between the rankings of seeds {a} and {b}: {t:.4f}")
        print(f"mean seed-to-seed tau: {summary.mean_seed_tau:.4f} (the ceiling for any supernet ranking)")
    else:
        print("seed-to-seed tau: needs at least two complete seeds (use --seeds 2)")
    print("best architectures (mean test accuracy over seeds): "
          + (", ".join(f"{a} {acc:.4f}" for a, acc in out["top5"]) or "none: every training diverged"))
    return 0
