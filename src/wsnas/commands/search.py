"""Differentiable architecture search, then selection: DARTS, GDAS or PC-DARTS, softmax or GAEA.

The supernet is trained with the strategy (architecture and weight steps alternate; bilevel by
default: the weights on one half of the training split, the architecture on the other; with
--single-level both on all of it). A checkpoint is written every epoch, so an interrupted search
continues where it stopped. Then every --select method picks one architecture:

  magnitude  the argmax of the architecture weights per edge (DARTS space: the two strongest
             inputs per node, never 'none')
  pt         perturbation-based selection (DARTS-PT): keep the op whose removal hurts
             accuracy on the architecture split most, edge by edge, tuning the supernet
             between decisions

Each selection is stored with its ground truth (--truth: a built-in table, a CSV, a benchmark
table 'nb201-cifar10', or 'store' for ground truth trained with `wsnas groundtruth`), or trained
from scratch with --retrain. Per-epoch diagnostics (mean entropy of the op distributions,
parameter-free ops in the argmax, the argmax's index) go to the store's run_metrics.

Examples:
  wsnas search --space tiny64 --strategy darts --select magnitude,pt --truth store
  wsnas search --space tiny64 --strategy gdas --param gaea --truth store
  wsnas search --space nb201 --strategy gdas --param gaea --warmup-epochs 50 --epochs E ...
      # GAEA-GDAS with the authors' 50-epoch warm-up (their configs leave the epoch count E to the run)
  wsnas search --space nb201 --strategy darts --param gaea --single-level --exclude none \\
      --data cifar10 --data-dir ~/data/cifar-10-batches-py --truth nb201-cifar10
  wsnas search --space nb201 --strategy gdas --arch-split valid --data cifar10 \\
      --data-dir ~/data/cifar-10-batches-py --data-option valid_size=25000 --truth nb201-cifar10
  wsnas search --space darts --strategy pcdarts --select pt --retrain --retrain-epochs 20
  wsnas search --strategy darts --fixed-alpha --select pt       # DARTS-PT's fixed-alpha variant

The comparison study (--study) runs on tiny64, whose every child has ground truth: for each
seed DARTS, GDAS and PC-DARTS with softmax and with GAEA, each selected by magnitude and by
PT, plus a fixed-alpha supernet with PT; it reuses the ground truth of `wsnas insights` (same
run directory and store, STUDY_DIR/results.db) and writes STUDY_DIR/search/report.html:
  wsnas search --study                 # 3 seeds, 20-epoch searches
  wsnas search --study --quick         # 1 seed, 4-epoch searches
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wsnas.commands.common import (
    add_data_options,
    add_executor_options,
    add_runtime_options,
    add_space_options,
    add_training_options,
    data_from_args,
    device_from_args,
    executor_from_args,
    space_from_args,
    training_overrides,
)
from wsnas.core.errors import WsnasError
from wsnas.experiments.search import search
from wsnas.selection import PTConfig, selection_names, selector_class
from wsnas.selection.search import SEARCH_DEFAULTS, SearchConfig
from wsnas.strategies import get_strategy, strategy_names
from wsnas.strategies.archparams import PARAMS
from wsnas.training.standalone import default_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_space_options(p)
    add_data_options(p)
    p.add_argument("--strategy", default="darts", choices=strategy_names(differentiable=True),
                   help="search strategy (default darts)")
    p.add_argument("--param", default="softmax", choices=PARAMS,
                   help="architecture parametrisation: softmax (the strategy's own) or gaea (default softmax)")
    p.add_argument("--single-level", action="store_true",
                   help="architecture and weights both on the whole training split (ERM; GAEA's single-level)")
    p.add_argument("--arch-split", default="half", choices=("half", "valid"),
                   help="bilevel: architecture batches from the second half of the training split (half, DARTS) "
                        "or from the validation split (valid: NB201's protocol with --data-option valid_size=25000)")
    p.add_argument("--order", type=int, default=1, choices=(1, 2), help="DARTS / PC-DARTS: 1st or 2nd order")
    p.add_argument("--k", type=int, default=4, help="PC-DARTS: 1/K of the channels go through the mixed op")
    p.add_argument("--exclude", default="", help="ops never used nor selected, comma-separated (e.g. none)")
    p.add_argument("--fixed-alpha", action="store_true",
                   help="never update the architecture (uniform mixing); use with --select pt")
    p.add_argument("--arch-lr", type=float, default=None,
                   help="architecture step size (default: Adam 3e-4; GAEA 0.1, GAEA-GDAS 0.01)")
    p.add_argument("--warmup-epochs", type=int, default=None,
                   help="GDAS: epochs with the architecture frozen before its steps start, the temperature "
                        "held at its maximum (default 0, for short runs; the authors' GAEA-GDAS NB201 "
                        "and DARTS-space configurations use 50, gaea_release configs/cnn/search_method/egdas/)")
    p.add_argument("--kl-weight", type=float, default=None,
                   help="GDAS: weight of the regulariser sum over edges of KL(theta || uniform), which pulls "
                        "theta towards uniform (default 0.01 with --param gaea, gaea_release architect_egdas; "
                        "0 with softmax, as xautodl's GDAS)")
    p.add_argument("--select", default="magnitude,pt", help=f"selection methods: {', '.join(selection_names())}")
    p.add_argument("--pt-interval", type=int, default=5, help="PT: tuning epochs between decisions (default 5)")
    p.add_argument("--pt-seed", type=int, default=None,
                   help="PT: seed of the order edges are decided in (default: the search's --seed)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, data order and sampling (default 0)")
    p.add_argument("--run", default=None, help="run id (default search/<space>/<strategy>-<param>/<seed>)")
    p.add_argument("--run-dir", default=None, help="checkpoint directory (default wsnas-runs/<run id>)")
    p.add_argument("--truth", default=None,
                   help="ground truth of the selected architectures: 'store', a built-in table, a CSV, nb201-DATASET")
    p.add_argument("--retrain", action="store_true",
                   help="train each selected architecture from scratch when no truth table has it")
    p.add_argument("--retrain-epochs", type=int, default=None, help="epochs of --retrain (default: the dataset's)")
    st = p.add_argument_group("the comparison study")
    st.add_argument("--study", action="store_true", help="run the comparison study on tiny64 (see above)")
    st.add_argument("--quick", action="store_true", help="with --study: 1 seed, 4-epoch searches")
    st.add_argument("--seeds", type=int, default=None, help="with --study: seeds per setting (default 3)")
    st.add_argument("--study-dir", default="wsnas-runs/insights",
                    help="with --study: run directory; its results.db holds the ground truth (default "
                         "wsnas-runs/insights, shared with `wsnas insights`)")
    g = p.add_argument_group("search training (defaults: SGD 0.025 cosine to 0.001, momentum 0.9, wd 3e-4, "
                             "clip 5, batch 64; digits 20 epochs, CIFAR-10 50)")
    add_training_options(g)
    add_runtime_options(p)
    add_executor_options(p, what="--retrain trainings, and with --study the ground truth and every search")


def run(args: argparse.Namespace) -> int:
    if args.study:
        return _study(args)
    space = space_from_args(args)
    select = tuple(s.strip() for s in args.select.split(",") if s.strip())
    exclude = tuple(s.strip() for s in args.exclude.split(",") if s.strip())
    options = {"param": args.param, "single_level": args.single_level, "exclude": exclude,
               "arch_lr": args.arch_lr, "fixed_alpha": args.fixed_alpha, "arch_split": args.arch_split}
    if args.strategy in ("darts", "pcdarts"):
        options["order"] = args.order
    if args.strategy == "pcdarts":
        options["k"] = args.k
    for flag, value in (("--warmup-epochs", args.warmup_epochs), ("--kl-weight", args.kl_weight)):
        if value is not None and args.strategy != "gdas":
            raise WsnasError(f"{flag} is a GDAS option; use it with --strategy gdas, not {args.strategy}")
    if args.warmup_epochs is not None:
        if args.warmup_epochs < 0:
            raise WsnasError(f"--warmup-epochs must be 0 or more, got {args.warmup_epochs}")
        options["warmup_epochs"] = args.warmup_epochs
    if args.kl_weight is not None:
        if not args.kl_weight >= 0:
            raise WsnasError(f"--kl-weight must be 0 or more (0 turns it off), got {args.kl_weight}")
        options["kl_weight"] = args.kl_weight
    strategy = get_strategy(args.strategy, **options)
    base = SEARCH_DEFAULTS.get(args.data, SEARCH_DEFAULTS["cifar10"])
    cfg = SearchConfig(train=base.with_overrides(**training_overrides(args)), select=select,
                       pt=PTConfig(interval=args.pt_interval, seed=args.pt_seed))
    blind = [m for m in selection_names() if not selector_class(m).needs_alpha]
    if args.fixed_alpha and not set(select) & set(blind):
        raise WsnasError(f"--fixed-alpha keeps the architecture uniform: select with --select {' or '.join(blind)}")
    device = device_from_args(args)
    data = data_from_args(args, device)
    label = f"{args.strategy}-{args.param}" + ("-single" if args.single_level else "") + \
        ("-fixed" if args.fixed_alpha else "") + (f"-o{args.order}" if args.order == 2 else "")
    run_id = args.run or f"search/{space.name}/{label}/{args.seed}"
    run_dir = Path(args.run_dir or Path("wsnas-runs") / run_id)
    retrain = None
    if args.retrain:
        retrain = default_config(data.name)
        if args.retrain_epochs is not None:
            retrain = retrain.with_overrides(epochs=args.retrain_epochs)
    out = search(space, data, strategy, cfg, seed=args.seed, run_id=run_id, run_dir=run_dir, store_path=args.store,
                 truth=args.truth, retrain=retrain, executor=executor_from_args(args) if args.retrain else None,
                 progress=not args.no_progress)
    for r in out.rows:
        truth_text = "no ground truth" if r["truth"] is None else (
            f"ground truth {r['truth']:.4f}" + (f" (rank {r['truth_rank']})" if r.get("truth_rank") else "")
            + f" from {r['truth_source']}")
        print(f"{r['method']}: {r['arch']}  {truth_text}")
    print(f"search cost: {out.seconds:.0f} s of training")
    print(f"run {run_id}: selections and diagnostics in {args.store}, checkpoint in {run_dir}")
    return 0


def _study(args: argparse.Namespace) -> int:
    import dataclasses

    from wsnas.experiments.search_study import SearchStudyConfig, search_study

    space = space_from_args(args)
    cfg = SearchStudyConfig.quick(args.data) if args.quick else SearchStudyConfig(
        search=SEARCH_DEFAULTS.get(args.data, SEARCH_DEFAULTS["cifar10"]))
    if args.seeds is not None:
        if args.seeds < 1:
            raise WsnasError(f"--seeds must be at least 1, got {args.seeds}")
        cfg = dataclasses.replace(cfg, seeds=args.seeds)
    cfg = dataclasses.replace(cfg, search=cfg.search.with_overrides(**training_overrides(args)),
                              pt=dataclasses.replace(cfg.pt, interval=cfg.pt.interval if args.quick
                                                     else args.pt_interval))
    device = device_from_args(args)
    data = data_from_args(args, device)
    paths = search_study(space, data, cfg, study_dir=args.study_dir, progress=not args.no_progress,
                         executor=executor_from_args(args))
    print(f"report: {paths['html']} and {paths['md']}")
    for line in paths["findings"]:
        print(f"  {line}")
    return 0
