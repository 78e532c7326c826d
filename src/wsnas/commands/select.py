"""Select an architecture from a finished search run: magnitude (argmax), perturbation (PT), or
any other registered selection method (see `wsnas.selection`).

The search run is read back from the store (its space, data, strategy and settings) and its
last checkpoint; each selection is stored in the store's selections table (replacing an earlier
one of the same method) with its ground truth when --truth has it. PT tunes the supernet in
memory only: the checkpoint is left as the search wrote it, so selecting again gives the same
architecture.

Examples:
  wsnas select --run search/tiny64/darts-softmax/0 --method pt --truth store
  wsnas select --run search/nb201/darts-gaea/0 --method magnitude --truth nb201-cifar10 --run-dir runs/s0
"""

from __future__ import annotations

import argparse

from wsnas.commands.common import (
    RUN_ID_RULE,
    add_runtime_options,
    device_from_args,
    run_dir_from_args,
    run_id_arg,
    seed_arg,
)
from wsnas.selection import get_selectors, selection_names
from wsnas.selection.search import reselect


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, type=run_id_arg,
                   help=f"the search run id (see `wsnas store info`); {RUN_ID_RULE}")
    p.add_argument("--run-dir", default=None, help="its checkpoint directory (default wsnas-runs/<run id>)")
    p.add_argument("--method", default="pt", help=f"selection methods, comma-separated: {', '.join(selection_names())}")
    p.add_argument("--pt-interval", type=int, default=5, help="PT: tuning epochs between decisions (default 5)")
    p.add_argument("--pt-seed", type=seed_arg, default=None,
                   help="PT: seed of the order edges are decided in (default: the search's --seed)")
    p.add_argument("--truth", default=None, help="ground truth: 'store', a built-in table, a CSV, nb201-DATASET")
    p.add_argument("--data-dir", default=None, help="the dataset's directory, if the search used one elsewhere")
    add_runtime_options(p)


def run(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    selectors = get_selectors(methods, {"pt": {"interval": args.pt_interval, "seed": args.pt_seed}})
    run_dir = run_dir_from_args(args, args.run)
    device = device_from_args(args)
    rows = reselect(args.store, args.run, selectors, run_dir=run_dir,
                    data_dir=args.data_dir, device=device, truth_spec=args.truth, progress=not args.no_progress)
    for r in rows:
        extra = "" if r["truth"] is None else f"  ground truth {r['truth']:.4f}" + (
            f" (rank {r['truth_rank']})" if r.get("truth_rank") else "")
        print(f"{r['method']}: {r['arch']}{extra}")
    return 0
