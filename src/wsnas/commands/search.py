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

Defaults are per strategy: each applies its authors' published recipe (the table at the end of
this help, generated from the declarations the code uses: wsnas.strategies.differentiable
RECIPES over wsnas.selection.search SEARCH_DEFAULTS). PC-DARTS, for one, trains with batch 256,
SGD 0.1 cosine to 0, architecture Adam 6e-4, and no architecture updates in its first 15 epochs
(yuhuixu1993/PC-DARTS train_search.py). A flag given on the command line always wins.

--preset NAME sets the flags of a published configuration (wsnas.selection.search PRESETS,
listed with the flags they set at the end of this help); flags given explicitly override it.
GAEA's NAS-Bench-201 search (gaea-nb201) trains 25 epochs of a cosine schedule set for 50
(--lr-schedule-epochs: the cosine's period, at least --epochs; default the run's epochs).

Examples:
  wsnas search --space tiny64 --strategy darts --select magnitude,pt --truth store
  wsnas search --space tiny64 --strategy gdas --param gaea --truth store
  wsnas search --strategy darts --tensorboard tb        # then: tensorboard --logdir tb
  wsnas search --space nb201 --strategy gdas --param gaea --warmup-epochs 50 --epochs E ...
      # GAEA-GDAS with the authors' 50-epoch warm-up (their configs leave the epoch count E to the run)
  wsnas search --preset gaea-nb201 --data cifar10 --data-dir ~/data/cifar-10-batches-py \\
      --truth nb201-cifar10
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
import dataclasses

from wsnas.analysis.comparison import option_text
from wsnas.commands.common import (
    RUN_ID_RULE,
    SEED_RANGE,
    add_data_options,
    add_executor_options,
    add_runtime_options,
    add_space_options,
    add_tensorboard_option,
    add_training_options,
    check_run_dir,
    check_store_path,
    data_from_args,
    device_from_args,
    executor_from_args,
    run_dir_from_args,
    run_id_arg,
    seed_arg,
    space_from_args,
    tensorboard_from_args,
    training_overrides,
)
from wsnas.core.errors import WsnasError
from wsnas.experiments.search import search
from wsnas.selection import PTConfig, selection_names, selector_class
from wsnas.selection.search import (
    PRESETS,
    SEARCH_DEFAULTS,
    SearchConfig,
    SearchPreset,
    get_preset,
    recipe_rows,
    search_defaults,
)
from wsnas.strategies import get_strategy, strategy_names
from wsnas.strategies.archparams import PARAMS
from wsnas.training.standalone import default_config

# what the flags a preset may set default to without one
BUILTIN = {"space": "tiny64", "strategy": "darts", "param": "softmax", "single_level": False, "exclude": ""}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_space_options(p)
    add_data_options(p)
    p.add_argument("--preset", default=None, metavar="NAME",
                   help=f"a published configuration whose settings become the defaults: {', '.join(PRESETS)} "
                        "(listed at the end of this help)")
    p.add_argument("--strategy", default=None, choices=strategy_names(differentiable=True),
                   help="search strategy (default darts)")
    p.add_argument("--param", default=None, choices=PARAMS,
                   help="architecture parametrisation: softmax (the strategy's own) or gaea (default softmax)")
    p.add_argument("--single-level", action=argparse.BooleanOptionalAction, default=None,
                   help="architecture and weights both on the whole training split (ERM; GAEA's single-level); "
                        "default bilevel")
    p.add_argument("--arch-split", default="half", choices=("half", "valid"),
                   help="bilevel: architecture batches from the second half of the training split (half, DARTS) "
                        "or from the validation split (valid: NB201's protocol with --data-option valid_size=25000)")
    p.add_argument("--order", type=int, default=1, choices=(1, 2), help="DARTS / PC-DARTS: 1st or 2nd order")
    p.add_argument("--k", type=int, default=4, help="PC-DARTS: 1/K of the channels go through the mixed op")
    p.add_argument("--exclude", default=None,
                   help="ops never used nor selected, comma-separated (e.g. none; '' for none excluded)")
    p.add_argument("--fixed-alpha", action="store_true",
                   help="never update the architecture (uniform mixing); use with --select pt")
    p.add_argument("--arch-lr", type=float, default=None,
                   help="architecture step size (default: the strategy's, see the table below)")
    p.add_argument("--warmup-epochs", type=int, default=None, metavar="N",
                   help="epochs at the start without architecture updates, below --epochs (default: the "
                        "strategy's, see the table below)")
    p.add_argument("--kl-weight", type=float, default=None,
                   help="GDAS: weight of the regulariser sum over edges of KL(theta || uniform), which pulls "
                        "theta towards uniform (default 0.01 with --param gaea, gaea_release architect_egdas; "
                        "0 with softmax, as xautodl's GDAS)")
    p.add_argument("--select", default="magnitude,pt", help=f"selection methods: {', '.join(selection_names())}")
    p.add_argument("--pt-interval", type=int, default=5, help="PT: tuning epochs between decisions (default 5)")
    p.add_argument("--pt-seed", type=seed_arg, default=None,
                   help="PT: seed of the order edges are decided in (default: the search's --seed)")
    p.add_argument("--seed", type=seed_arg, default=0,
                   help=f"seed of weights, data order and sampling, {SEED_RANGE} (default 0)")
    p.add_argument("--run", default=None, type=run_id_arg,
                   help=f"run id (default search/<space>/<strategy>-<param>/<seed>); {RUN_ID_RULE}")
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
    base = SEARCH_DEFAULTS["cifar10"]
    g = p.add_argument_group(f"search training (defaults: per strategy, see the table below; SGD momentum "
                             f"{base.momentum}, weight decay {base.weight_decay:g}, clip {base.grad_clip:g})")
    add_training_options(g)
    add_runtime_options(p)
    add_tensorboard_option(p, "live search curves as TensorBoard event files into DIR/<run id>: loss and accuracy "
                              "per step; loss, accuracy and learning rate per epoch; after every epoch the entropy "
                              "of the architecture weights (mean and per edge) and the argmax's parameter-free ops "
                              "and index; a resumed search continues its curves (with --study: every search into "
                              "DIR/<run id>, the ground truth's accuracies into DIR/groundtruth/<config hash>)")
    add_executor_options(p, what="--retrain trainings, and with --study the ground truth and every search")
    p.set_defaults(space=None)  # unset: the preset's space, else tiny64
    p.epilog = recipe_table()


def _num(x: float) -> str:
    return f"{x:g}"


def recipe_table() -> str:
    """Each strategy's effective defaults, from the declarations the code uses (:func:`recipe_rows`)."""
    datasets = list(SEARCH_DEFAULTS)
    head = ("strategy", "param", f"epochs ({'/'.join(datasets)})", "batch", "lr", "lr_min", "architecture step",
            "warm-up", "source")
    rows, notes = [], []
    for r in recipe_rows():
        train = r["train"]
        t = train[datasets[0]]  # a recipe sets the same optimiser on every dataset; the epochs are the dataset's
        a = r["arch_optimizer"]
        arch = (f"Adam {_num(a['lr'])}, wd {_num(a['weight_decay'])}" if a["optimizer"] == "Adam"
                else f"EG {_num(a['lr'])}")
        rows.append((r["strategy"], r["param"], "/".join(str(c.epochs) for c in train.values()), str(t.batch_size),
                     _num(t.lr), _num(t.lr_min), arch, str(r["warmup_epochs"]), r["source"]))
        if r["note"]:
            notes.append(f"  {r['strategy']}-{r['param']}: {r['note']}")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head) - 1)]
    lines = ["defaults per strategy (the dataset's search budget with the authors' recipe; EG: exponentiated "
             "gradient, GAEA; flags given explicitly win):"]
    for row in [head, *rows]:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    if notes:
        lines += ["what the authors set otherwise (not applied by default):", *notes]
    lines.append("presets (--preset NAME; the flags it sets, which flags given explicitly override):")
    for name, preset in PRESETS.items():
        lines += [f"  {name}: {preset.description}", f"    source: {preset.source}",
                  f"    sets: {' '.join(preset_flags(preset))}"]
    return "\n".join(lines)


def _flag_value(value) -> str:
    return _num(value) if isinstance(value, float) else option_text(value)


def preset_flags(preset: SearchPreset) -> list[str]:
    """The command-line flags equivalent to ``preset``."""
    flags = ["--space", preset.space]
    for key, value in preset.space_options.items():
        flags += ["--space-option", f"{key}={_flag_value(value)}"]
    flags += ["--strategy", preset.strategy]
    for key, value in preset.options.items():
        if isinstance(value, bool):
            flags.append(f"--{'' if value else 'no-'}{key.replace('_', '-')}")
        else:
            flags += [f"--{key.replace('_', '-')}",
                      ",".join(value) if isinstance(value, (tuple, list)) else _flag_value(value)]
    for key, value in preset.train.items():
        flags += [f"--{key.replace('_', '-')}", _flag_value(value)]
    return flags


def _apply_preset(args: argparse.Namespace) -> SearchPreset | None:
    """Fill the flags the user did not give from ``--preset`` (if any), then from :data:`BUILTIN`."""
    preset = None if args.preset is None else get_preset(args.preset)
    if preset is not None:
        if args.study:
            raise WsnasError(f"--preset {args.preset} configures one search, not --study")
        if args.space in (None, preset.space):  # the preset's space options, before the user's (which win)
            args.space_option = [f"{k}={_flag_value(v)}" for k, v in preset.space_options.items()] \
                + list(args.space_option)
        given = {"space": preset.space, "strategy": preset.strategy, "param": preset.options.get("param"),
                 "single_level": preset.options.get("single_level"),
                 "exclude": ",".join(preset.options["exclude"]) if "exclude" in preset.options else None}
        for key, value in given.items():
            if getattr(args, key) is None and value is not None:
                setattr(args, key, value)
    for key, value in BUILTIN.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return preset


def _train_config(args: argparse.Namespace, preset: SearchPreset | None):
    """The search's training settings and strategy options: the dataset's defaults, the strategy's
    recipe, the preset's settings, the flags given; each later one wins."""
    train, options = search_defaults(args.strategy, args.param, args.data)
    given = {k: v for k, v in training_overrides(args).items() if v is not None}
    train = train.with_overrides(**{**(dict(preset.train) if preset is not None else {}), **given})
    if args.arch_lr is not None:
        options["arch_lr"] = args.arch_lr
    if args.warmup_epochs is not None:
        options["warmup_epochs"] = args.warmup_epochs
    return train, options


def run(args: argparse.Namespace) -> int:
    tensorboard = tensorboard_from_args(args)  # a missing tensorboard package: refused before anything else
    preset = _apply_preset(args)
    if args.study:
        return _study(args, tensorboard)
    space = space_from_args(args)
    select = tuple(s.strip() for s in args.select.split(",") if s.strip())
    exclude = tuple(s.strip() for s in args.exclude.split(",") if s.strip())
    train, recipe = _train_config(args, preset)
    options = {"param": args.param, "single_level": args.single_level, "exclude": exclude,
               "fixed_alpha": args.fixed_alpha, "arch_split": args.arch_split, **recipe}
    if args.strategy in ("darts", "pcdarts"):
        options["order"] = args.order
    if args.strategy == "pcdarts":
        options["k"] = args.k
    if args.kl_weight is not None:
        if args.strategy != "gdas":
            raise WsnasError(f"--kl-weight is a GDAS option; use it with --strategy gdas, not {args.strategy}")
        if not args.kl_weight >= 0:
            raise WsnasError(f"--kl-weight must be 0 or more (0 turns it off), got {args.kl_weight}")
        options["kl_weight"] = args.kl_weight
    strategy = get_strategy(args.strategy, **options)
    cfg = SearchConfig(train=train, select=select, pt=PTConfig(interval=args.pt_interval, seed=args.pt_seed))
    blind = [m for m in selection_names() if not selector_class(m).needs_alpha]
    if args.fixed_alpha and not set(select) & set(blind):
        raise WsnasError(f"--fixed-alpha keeps the architecture uniform: select with --select {' or '.join(blind)}")
    label = f"{args.strategy}-{args.param}" + ("-single" if args.single_level else "") + \
        ("-fixed" if args.fixed_alpha else "") + (f"-o{args.order}" if args.order == 2 else "")
    run_id = args.run or f"search/{space.name}/{label}/{args.seed}"
    run_dir = run_dir_from_args(args, run_id)
    check_store_path(args.store)
    device = device_from_args(args)
    data = data_from_args(args, device)
    retrain = None
    if args.retrain:
        space.check_image_size(data.image_size, data.name)  # the selections' standalone networks
        retrain = default_config(data.name)
        if args.retrain_epochs is not None:
            retrain = retrain.with_overrides(epochs=args.retrain_epochs)
    out = search(space, data, strategy, cfg, seed=args.seed, run_id=run_id, run_dir=run_dir, store_path=args.store,
                 truth=args.truth, retrain=retrain, executor=executor_from_args(args) if args.retrain else None,
                 progress=not args.no_progress, tensorboard=tensorboard)
    for r in out.rows:
        truth_text = "no ground truth" if r["truth"] is None else (
            f"ground truth {r['truth']:.4f}" + (f" (rank {r['truth_rank']})" if r.get("truth_rank") else "")
            + f" from {r['truth_source']}")
        print(f"{r['method']}: {r['arch']}  {truth_text}")
    print(f"search cost: {out.seconds:.0f} s of training")
    print(f"run {run_id}: selections and diagnostics in {args.store}, checkpoint in {run_dir}")
    return 0


def _study(args: argparse.Namespace, tensorboard) -> int:
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
    check_run_dir(args.study_dir, "--study-dir")
    device = device_from_args(args)
    data = data_from_args(args, device)
    paths = search_study(space, data, cfg, study_dir=args.study_dir, progress=not args.no_progress,
                         executor=executor_from_args(args), tensorboard=tensorboard)
    print(f"report: {paths['html']} and {paths['md']}")
    for line in paths["findings"]:
        print(f"  {line}")
    return 0
