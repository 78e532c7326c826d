"""Inspect and export the results store (an SQLite file: $WSNAS_STORE, else wsnas.db).

The store holds every run, ground-truth training and prediction that wsnas produced. These
commands only read it, and open it read-only: they never create a store or write to one (an
empty file stays empty; another program's database is refused untouched).

actions:
  info     the file, its schema version, each table with its row count, the ground-truth
           sets (space, dataset, config hash, epochs) and the runs
  export   write one table to a CSV file; --run keeps one run's rows; --wide writes a run's
           predictions as a matrix (checkpoints x architecture indices), the format that
           `wsnas metrics --pred` reads
  config   print the configuration a run was made with, as the YAML file that `--config` of
           the command that made it reads (a comment names the command): feeding it back
           finds the run again, or with --store and --run-dir elsewhere trains it again

examples:
  wsnas store info
  wsnas store --store runs/study.db info
  wsnas store export groundtruth --out groundtruth.csv
  wsnas store export predictions --run uniform-s0 --out preds.csv
  wsnas store export predictions --run uniform-s0 --wide --out matrix.csv
  wsnas store config supernet/uniform/0 > run.yaml
  wsnas supernet --config run.yaml --store fresh.db --run-dir elsewhere
"""

from __future__ import annotations

import argparse
import os

from wsnas.commands.configfile import to_yaml
from wsnas.core.errors import WsnasError
from wsnas.core.files import check_output
from wsnas.store import Store

DEFAULT_STORE = "wsnas.db"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``--store`` and the ``info`` and ``export`` actions."""
    parser.add_argument("--store", default=os.environ.get("WSNAS_STORE", DEFAULT_STORE),
                        metavar="PATH", help="the results store (default: $WSNAS_STORE, else "
                                             f"{DEFAULT_STORE} in this folder)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    actions.add_parser("info", help="show the tables, ground-truth sets and runs",
                       description="Show the store's file, schema version, tables with row "
                                   "counts, ground-truth sets and runs.")
    export = actions.add_parser(
        "export", help="write a table to a CSV file",
        description="Write one table of the store to a CSV file (a header line, then rows).")
    export.add_argument("table", metavar="TABLE",
                        help="the table to export: runs, groundtruth or predictions")
    export.add_argument("--out", required=True, metavar="FILE.csv",
                        help="the CSV file to write (its folder must exist; never the store itself)")
    export.add_argument("--run", metavar="RUN_ID", help="only this run's rows")
    export.add_argument("--wide", action="store_true",
                        help="predictions only, with --run: one line per checkpoint, one column "
                             "per architecture index")
    config = actions.add_parser(
        "config", help="print a run's configuration as a --config file",
        description="Print the configuration a run was made with (the command and its effective "
                    "options) as YAML, the file that `--config` of that command reads: `wsnas store "
                    "config RUN > run.yaml`, then `wsnas COMMAND --config run.yaml` (with --store and "
                    "--run-dir elsewhere to make the run again from scratch).")
    config.add_argument("run", metavar="RUN_ID", help="the run (wsnas store info lists them)")


def run(args: argparse.Namespace) -> int:
    """Execute ``wsnas store``; returns the exit status."""
    if args.action == "export" and args.wide and (args.table != "predictions" or not args.run):
        raise WsnasError(f"--wide writes the prediction matrix of one run, so it needs the "
                         f"predictions table and --run RUN_ID (got table {args.table!r}, run "
                         f"{args.run!r})")
    if args.action == "export":  # before any work: never over the store, no folder created
        check_output(args.out, stores=[args.store])
    with Store(args.store, read_only=True) as store:
        if args.action == "info":
            _print_overview(store.overview())
        elif args.action == "config":
            print(run_config(store, args.run), end="")
        elif args.wide:
            n = store.export_prediction_matrix_csv(args.run, args.out)
            print(f"wrote {n} checkpoint{'s' if n != 1 else ''} of run {args.run!r} to {args.out}")
        else:
            n = store.export_csv(args.table, args.out, run_id=args.run)
            print(f"wrote {n} row{'s' if n != 1 else ''} of {args.table} to {args.out}")
    return 0


def run_config(store: Store, run_id: str) -> str:
    """The YAML of the command that made ``run_id`` and its options, headed by a comment naming it."""
    run = store.get_run(run_id)
    if run is None:
        runs = [r["run_id"] for r in store.list_runs()]
        listed = ", ".join(runs[:5]) + (", ..." if len(runs) > 5 else "") if runs else "the store has none"
        raise WsnasError(f"run {run_id!r} is not in the results store {str(store.path)!r}; accepted: its runs "
                         f"({listed}; `wsnas store info` lists them)")
    if run["command"] is None:
        raise WsnasError(f"run {run_id!r} ({run['kind']}) has no recorded command: it was made through the Python "
                         "API or by a wsnas that did not record commands (before store schema 6); accepted: a run "
                         "made by a wsnas command")
    command = run["command"]["command"]
    header = [f"run {run_id} ({run['kind']}, {run['status']}), made by `wsnas {command}`: run it again with",
              f"  wsnas {command} --config FILE",
              "(add --store and --run-dir to make it again elsewhere rather than find it in this store)"]
    return to_yaml(run["command"]["options"], header)


def _columns(rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Rows of cells as left-aligned columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def _print_overview(info: dict) -> None:
    meta = info["meta"]
    lines = [
        f"store: {info['path']}",
        f"schema version: {info['schema_version']} (created by {meta.get('created_by', '?')} "
        f"at {meta.get('created_at', '?')})",
        "tables:",
        *_columns([[name, str(count)] for name, count in info["tables"].items()]),
    ]
    sets = info["groundtruth"]
    if sets:
        lines.append("ground truth:")
        diverged = any(s["diverged"] for s in sets)  # trainings that diverged: no ground truth
        lines += _columns([["space", "dataset", "config_hash", "epochs", "archs", "seeds"]
                           + ["diverged"] * diverged] + [
            [s["space"], s["dataset"], s["config_hash"], str(s["epochs"]), str(s["archs"]),
             str(s["seeds"])] + [str(s["diverged"])] * diverged for s in sets])
    runs = info["runs"]
    if runs:
        lines.append("runs:")
        lines += _columns([["run_id", "kind", "status", "created"]] + [
            [r["run_id"], r["kind"], r["status"], r["created_at"]] for r in runs])
    else:
        lines.append("runs: none")
    print("\n".join(lines))
