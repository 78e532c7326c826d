"""Convert the official NAS-Bench-201 / NATS-Bench results once, then query the compact table.

actions:
  convert  read SOURCE (a NAS-Bench-201 .pth file or a NATS-Bench topology directory) and
           write the compact table (CSV; gzip-compressed when the name ends in .gz)
  query    print the rows of one architecture (official string or index)

Getting the official files (from the authors' release pages; they are not redistributed):
  * NAS-Bench-201: NAS-Bench-201-v1_0-e61699.pth (2.1 GB) or NAS-Bench-201-v1_1-096897.pth
    (4.7 GB; more seeds). Converting a .pth unpickles it whole: expect roughly 6x the file
    size in memory (about 12 GB for v1.0, 25-30 GB for v1.1).
  * NATS-Bench topology: NATS-tss-v1_0-3ffb9-simple.tar, unpacked to the directory
    NATS-tss-v1_0-3ffb9-simple/ (meta.pickle.pbz2 plus one <index>.pickle.pbz2 per cell).
    It is read one cell at a time and needs little memory: prefer it.
  Every pickle is loaded with an allow-list (plain containers, OrderedDict, numpy scalars and
  dtypes); a file that references anything else is refused.

The converted table has one row per (architecture, dataset, training epochs):
  index,arch,dataset,hp,valid_acc,test_acc,params_m,flops_m,latency,seeds
  0,|avg_pool_3x3~0|+|nor_conv_1x1~0|...|,cifar10,200,,0.8586,0.129306,15.64737,0.0139,3
  * index, arch: the official index and architecture string from the file;
  * dataset: cifar10-valid, cifar10, cifar100, ImageNet16-120; hp: 12 or 200 epochs;
  * valid_acc / test_acc: final-epoch top-1 accuracy as a fraction, mean over the seeds:
    cifar10-valid x-valid / ori-test; cifar10 (trained on train+valid) no valid / ori-test;
    cifar100 and ImageNet16-120 x-valid / x-test; an empty cell is a missing value;
  * params_m, flops_m: millions; latency: seconds per batch; seeds: trials averaged.
  For all 15,625 cells it has up to 125,000 rows (4 datasets x 2 schedules per cell).

A converted table is a ground truth: --truth nb201-DATASET[@EPOCHS]:TABLE, e.g.
  wsnas metrics --pred preds.csv --truth nb201-cifar10:nb201.csv.gz
  wsnas metrics --pred preds.csv --truth nb201-cifar100@12:nb201.csv.gz --metric valid_acc

examples:
  wsnas benchmark convert ~/data/NAS-Bench-201-v1_0-e61699.pth --out nb201.csv.gz
  wsnas benchmark convert ~/data/NATS-tss-v1_0-3ffb9-simple --out nb201.csv.gz
  wsnas benchmark query nb201.csv.gz --arch 123 --dataset cifar10
  wsnas benchmark query nb201.csv.gz --hp 0 --arch \
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from wsnas.core.files import check_output
from wsnas.groundtruth.benchmarks.nb201 import (
    BENCHMARK_COLUMNS,
    convert_benchmark,
    default_table_path,
    query_benchmark,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``convert`` and ``query`` actions."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    convert = actions.add_parser(
        "convert", help="convert a .pth file or NATS-Bench directory to a compact table",
        description="Convert the official NAS-Bench-201 .pth file or the NATS-Bench topology "
                    "directory (NATS-tss-v1_0-3ffb9-simple/) into a compact CSV table.")
    convert.add_argument("source", metavar="SOURCE",
                         help="the NAS-Bench-201 .pth file or the NATS-Bench topology directory")
    convert.add_argument("--out", default=None, metavar="TABLE.csv.gz",
                         help="the table to write (gzip-compressed when it ends in .gz; its folder "
                              "must exist; default $WSNAS_HOME/benchmarks/nb201.csv.gz, where --truth "
                              "nb201-DATASET finds it)")
    convert.add_argument("--no-progress", action="store_true", help="no progress bar")
    query = actions.add_parser(
        "query", help="print the rows of one architecture",
        description="Print the rows of one architecture of a converted table.")
    query.add_argument("table", metavar="TABLE", nargs="?", default=None,
                       help="a table written by `benchmark convert` (default: the default table)")
    query.add_argument("--arch", required=True, metavar="STRING_OR_INDEX",
                       help="the official architecture string or index")
    query.add_argument("--dataset", metavar="NAME",
                       help="only this dataset (cifar10-valid, cifar10, cifar100, ImageNet16-120)")
    query.add_argument("--hp", type=int, default=200, metavar="EPOCHS",
                       help="training epochs: 200 (default) or 12; 0 for all")
    query.add_argument("--json", action="store_true", help="print the rows as JSON")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _convert(args: argparse.Namespace) -> int:
    if args.out is not None:  # as cp does: no folder is created for a path the user gave
        args.out = check_output(args.out)
    args.out = args.out or default_table_path()
    summary = convert_benchmark(args.source, args.out, progress=not args.no_progress)
    print(f"wrote {summary.out}: {summary.rows} rows for {summary.archs} architectures")
    for name, count in summary.datasets.items():
        print(f"  {name}: {count} rows")
    for hp, count in sorted(summary.hps.items()):
        print(f"  {hp} epochs: {count} rows")
    return 0


def _query(args: argparse.Namespace) -> int:
    args.table = str(args.table or default_table_path())
    rows = query_benchmark(args.table, args.arch, dataset=args.dataset, hp=args.hp)
    if args.json:
        out = [{c: (None if isinstance(v, float) and math.isnan(v) else v)
                for c, v in zip(BENCHMARK_COLUMNS, (getattr(r, c) for c in BENCHMARK_COLUMNS))}
               for r in rows]
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    print(f"arch {rows[0].arch} (index {rows[0].index})")
    columns = [c for c in BENCHMARK_COLUMNS if c not in ("index", "arch")]
    table = [columns] + [[_fmt(getattr(r, c)) for c in columns] for r in rows]
    widths = [max(len(row[j]) for row in table) for j in range(len(columns))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def run(args: argparse.Namespace) -> int:
    """Execute ``wsnas benchmark``; returns the exit status."""
    if args.action == "convert":
        return _convert(args)
    return _query(args)
