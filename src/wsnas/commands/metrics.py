"""Ranking metrics of predicted scores against a ground truth.

Reads a predictions CSV (header: an empty or 'step'/'epoch'/'checkpoint' cell, then one
column per architecture, named by canonical string or integer index; one row per ranking
instance, e.g. per global step) and compares every row with the ground-truth accuracies:
GT-Tau (Kendall tau-b), Spearman rho, T1R/T3R (best true rank among the top-1/top-3
predicted children; 1 = best) and precision@5. The summary gives GT-Tau-Mean-K +/- Std-K
(population std) and T1R/T3R of the last row and their mean over the last K rows.

The ground truth is a built-in table (tiny64-cifar10), a CSV file with 'index' and/or 'arch'
columns and an accuracy column, or a results store (.db/.sqlite/.sqlite3). Accuracies in
percent are accepted. If the predictions cover only part of the ground truth, the metrics
use the common architectures (ranks are then ranks within that subset).

example:
  wsnas metrics --pred tiny64_cifar10_supernet_last128.csv --truth tiny64-cifar10 --last 64
  wsnas metrics --pred preds.csv --truth results.db --dataset cifar10 --rows summary --json
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from wsnas.core.errors import WsnasError
from wsnas.groundtruth.truth import score_predictions
from wsnas.metrics import EvaluationResult

TOP_N = (1, 3)
PRECISION_K = (5,)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``wsnas metrics``."""
    parser.add_argument("--pred", required=True, metavar="PRED.csv",
                        help="predictions CSV: rows = instances (e.g. steps), "
                             "columns = architectures")
    parser.add_argument("--truth", required=True, metavar="TRUTH",
                        help="ground truth: a built-in name (tiny64-cifar10), a CSV file, "
                             "or a results store (.db/.sqlite/.sqlite3)")
    parser.add_argument("--metric", metavar="COLUMN", default=None,
                        help="ground-truth value column (CSV default: the first of "
                             "test_acc_mean, test_acc, accuracy, valid_acc; store: test_acc)")
    parser.add_argument("--dataset", metavar="NAME", default=None,
                        help="dataset to read from a results store")
    parser.add_argument("--last", metavar="K", type=int, default=64,
                        help="summarise over the last K rows (default: 64; fewer if the "
                             "file has fewer rows)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON instead of a table")
    parser.add_argument("--rows", choices=("all", "summary"), default="all",
                        help="'all': one line per row, then the summary (default); "
                             "'summary': the summary only")


def _fmt(value: float, digits: int = 4) -> str:
    return "nan" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _row_table(result: EvaluationResult) -> list[str]:
    headers = ["row", "GT-Tau", "Spearman", *(f"T{n}R" for n in result.top_rank),
               *(f"P@{k}" for k in result.precision)]
    body = []
    for i, label in enumerate(result.row_labels):
        body.append([
            label,
            _fmt(result.gt_tau[i]),
            _fmt(result.spearman[i]),
            *(str(int(v[i])) for v in result.top_rank.values()),
            *(_fmt(v[i], 2) for v in result.precision.values()),
        ])
    widths = [max(len(h), *(len(r[j]) for r in body)) for j, h in enumerate(headers)]
    lines = []
    for cells in [headers, *body]:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]))
    return lines


def _summary_lines(result: EvaluationResult, truth_desc: str, n_truth: int) -> list[str]:
    k = result.k
    tail = f"the last {k} rows"
    entries = [
        ("ground truth", truth_desc),
        ("rows", str(result.n_rows)),
        ("architectures", f"{result.n_archs} of {n_truth} matched"),
    ]
    if result.n_archs < n_truth:
        entries.append(("note", f"metrics use the {result.n_archs} common architectures "
                                "(ranks are within that subset)"))
    entries.append((f"GT-Tau-Mean-{k} +/- Std-{k}",
                    f"{_fmt(result.gt_tau_mean)} +/- {_fmt(result.gt_tau_std)} "
                    f"(over {tail}; population std, ddof=0)"))
    entries.append((f"Spearman mean-{k}", _fmt(result.spearman_mean)))
    for n in result.top_rank:
        entries.append((f"T{n}R", f"last row {result.top_rank_last[n]}, "
                                  f"mean over {tail} {_fmt(result.top_rank_mean[n], 2)}"))
    for pk in result.precision:
        entries.append((f"P@{pk}", f"last row {_fmt(result.precision_last[pk], 2)}, "
                                   f"mean over {tail} {_fmt(result.precision_mean[pk], 2)}"))
    width = max(len(label) for label, _ in entries) + 1
    return [f"{(label + ':').ljust(width)}  {text}" for label, text in entries]


def run(args: argparse.Namespace) -> int:
    """Compute the metrics and print them (table or JSON). Returns the exit status."""
    if args.last < 1:
        raise WsnasError(f"--last {args.last} is not accepted; K must be a positive integer")
    scores = score_predictions(args.pred, args.truth, metric=args.metric, dataset=args.dataset, k=args.last,
                               top=TOP_N, precision_k=PRECISION_K)
    result, truth = scores.result, scores.truth

    if args.json:
        out: dict[str, Any] = {
            "predictions": str(args.pred),
            "truth": {
                "source": truth.source,
                "space": truth.space,
                "dataset": truth.dataset,
                "architectures": len(truth),
            },
            "matched": scores.matched,
        }
        out.update(result.to_dict(include_rows=args.rows == "all"))
        print(json.dumps(out, indent=2))
        return 0

    if args.rows == "all":
        for line in _row_table(result):
            print(line)
        print()
    truth_desc = f"{truth.source or '-'} (space {truth.space}, dataset {truth.dataset})"
    for line in _summary_lines(result, truth_desc, len(truth)):
        print(line)
    return 0
